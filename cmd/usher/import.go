package main

import (
	"context"
	"encoding/json"
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
	rows, err := access.ReadImportCSV(in)
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
