package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

const userImportHelp = `Usage: usher user import [--account ID|NAME] [--dry-run] [flags] FILE

Imports users from a CSV file, straight into the database (no server needed),
acting as the system. The first line names the columns, in any order:

  email           the user's email address (required)
  name            their name (default: the email); changes an existing user's name
  groups          group names separated by ";" — groups that do not exist are created
  roles           roles separated by ";": primary_admin, secondary_admin,
                  contract_manager:CONTRACT, software_coordinator:CONTRACT
  subscriptions   direct seats separated by ";": CONTRACT, or CONTRACT:SERVICE+SERVICE

An import only adds: users, memberships, roles and seats that exist are kept.
Joining a group gives its seats, or a place in its subscriptions' waiting
lists. All or nothing: every line is checked, and any problem (listed with
its line number) changes nothing. With --dry-run the import runs and is
rolled back, listing exactly what would change. "-" reads standard input.

Flags:
  --account ID|NAME   the account; may be left out when there is only one
  --dry-run           list what would change, change nothing
  --json              print the result as JSON
` + dbFlagHelp + `  -h, --help          show this help

Progress is written to standard error; the summary (and with --dry-run the
changes) to standard output. Exit status 0 when imported (or when a dry run
found no problem), 1 with the problems otherwise.

Example:
  usher user import --account "Acme Ltd" --dry-run people.csv

  email,name,groups,roles,subscriptions
  ada@acme.example,Ada Lovelace,Design;CAD,secondary_admin,C-100:cloud_storage+rendering
  bob@acme.example,Bob,Design,,
`

func runUserImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("user import")
	account := fs.String("account", "", "account id or name")
	dryRun := fs.Bool("dry-run", false, "change nothing")
	asJSON := fs.Bool("json", false, "print JSON")
	dsn := dbFlag(fs)
	flags, files := splitArgs(args, map[string]bool{"account": true, "db": true})
	if err := parse(fs, userImportHelp, flags, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	if len(files) != 1 {
		return usageErrorf("user import: give one FILE (see usher user import --help)")
	}
	in := stdin
	if files[0] != "-" {
		f, err := os.Open(files[0])
		if err != nil {
			return fmt.Errorf("user import: %w", err)
		}
		defer f.Close()
		in = f
	}
	rows, err := readImportCSV(in)
	if err != nil {
		return err
	}
	db, err := openDB(ctx, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	svc := access.New(db.Access(), nil)
	acct, err := findAccount(ctx, svc, *account)
	if err != nil {
		return err
	}
	p := &importProgress{w: stderr, every: time.Second}
	if isTerminal(stderr) {
		p.every = 100 * time.Millisecond
	}
	res, err := svc.ImportUsers(ctx, usher.System(acct.ID), rows, *dryRun, p.report)
	p.finish()
	if err != nil {
		return err
	}
	if *asJSON {
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
		return nil
	}
	head := fmt.Sprintf("Imported %d %s into account %d %q", res.Lines, plural(res.Lines, "line", "lines"), acct.ID, acct.Name)
	if res.DryRun {
		for _, c := range res.Changes {
			fmt.Fprintf(stdout, "line %d %s: %s\n", c.Line, c.Email, strings.Join(c.Changes, "; "))
		}
		head = fmt.Sprintf("Dry run of %d %s into account %d %q, nothing was changed; the import would make", res.Lines, plural(res.Lines, "line", "lines"), acct.ID, acct.Name)
	}
	fmt.Fprintf(stdout, "%s: %d users created, %d updated, %d groups created, %d memberships, %d roles, %d seats, %d waiting.\n",
		head, res.UsersCreated, res.UsersUpdated, res.GroupsCreated, res.MembersAdded, res.RolesGranted, res.SeatsAssigned, res.Waiting)
	return nil
}

// importProgress writes "imported N of M lines" to stderr now and then.
type importProgress struct {
	w     io.Writer
	every time.Duration
	last  time.Time
	done  int
	total int
}

func (p *importProgress) report(done, total int) {
	p.done, p.total = done, total
	if time.Since(p.last) < p.every && done < total {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "usher: user import: %d of %d lines\n", done, total)
}

func (p *importProgress) finish() {
	if p.total > 0 && p.done < p.total {
		fmt.Fprintf(p.w, "usher: user import: stopped at line %d of %d\n", p.done, p.total)
	}
}

// importColumns are the columns a user import reads.
var importColumns = []string{"email", "name", "groups", "roles", "subscriptions"}

// readImportCSV reads the file into rows, naming every bad line at once.
func readImportCSV(in io.Reader) ([]access.ImportRow, error) {
	r := csv.NewReader(in)
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, (&usher.Problems{{Field: "file", Reason: "is empty: the first line names the columns"}}).Err()
	} else if err != nil {
		return nil, fmt.Errorf("user import: %w", err)
	}
	col := map[string]int{}
	var p usher.Problems
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		switch {
		case !contains(importColumns, h):
			p.Add(fmt.Sprintf("line 1: column %d", i+1), fmt.Sprintf("%q is not a column; want %s", h, strings.Join(importColumns, ", ")))
		case col[h] != 0:
			p.Add(fmt.Sprintf("line 1: column %d", i+1), fmt.Sprintf("%q is named twice", h))
		}
		col[h] = i + 1
	}
	if col["email"] == 0 {
		p.Add("line 1", "the email column is required")
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	cell := func(rec []string, name string) string {
		if i := col[name]; i > 0 && i <= len(rec) {
			return strings.TrimSpace(rec[i-1])
		}
		return ""
	}
	var rows []access.ImportRow
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				p.Add(fmt.Sprintf("line %d", pe.StartLine), pe.Err.Error())
				continue
			}
			return nil, fmt.Errorf("user import: %w", err)
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		row := access.ImportRow{Line: line, Email: cell(rec, "email"), Name: cell(rec, "name"), Groups: splitItems(cell(rec, "groups"))}
		for _, item := range splitItems(cell(rec, "roles")) {
			role, contract, _ := strings.Cut(item, ":")
			row.Roles = append(row.Roles, access.ImportRole{Role: usher.Role(strings.TrimSpace(role)), Contract: strings.TrimSpace(contract)})
		}
		for _, item := range splitItems(cell(rec, "subscriptions")) {
			contract, services, _ := strings.Cut(item, ":")
			seat := access.ImportSeat{Contract: strings.TrimSpace(contract)}
			for _, s := range strings.Split(services, "+") {
				if s = strings.TrimSpace(s); s != "" {
					seat.Services = append(seat.Services, s)
				}
			}
			row.Subscriptions = append(row.Subscriptions, seat)
		}
		rows = append(rows, row)
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return rows, nil
}

func splitItems(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ";") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
