package access

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/usherhq/usher/internal/usher"
)

// ImportColumns are the columns of a user import file, in the order the
// documentation lists them; a file may name them in any order.
var ImportColumns = []string{"email", "name", "groups", "roles", "subscriptions"}

// ReadImportCSV reads a user import file: a header line naming columns of
// ImportColumns, then one user a line. Lists inside a cell are separated
// by ";": group names; roles as "role" or "role:CONTRACT"; seats as
// "CONTRACT" or "CONTRACT:SERVICE+SERVICE". Every bad line is named at once,
// by its line number. The command line and the console read files through
// it, so both accept exactly the same files.
func ReadImportCSV(in io.Reader) ([]ImportRow, error) {
	r := csv.NewReader(in)
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, (&usher.Problems{{Field: "file", Reason: "is empty: the first line names the columns"}}).Err()
	} else if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, (&usher.Problems{{Field: fmt.Sprintf("line %d", pe.StartLine), Reason: pe.Err.Error()}}).Err()
		}
		return nil, fmt.Errorf("read user import: %w", err)
	}
	col := map[string]int{}
	var p usher.Problems
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		switch {
		case !slices.Contains(ImportColumns, h):
			p.Add(fmt.Sprintf("line 1: column %d", i+1), fmt.Sprintf("%q is not a column; want %s", h, strings.Join(ImportColumns, ", ")))
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
	var rows []ImportRow
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
			return nil, fmt.Errorf("read user import: %w", err)
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		if len(rows) == MaxImportRows {
			p.Add("file", fmt.Sprintf("has more than %d lines; at most %d per import", MaxImportRows, MaxImportRows))
			break
		}
		row := ImportRow{Line: line, Email: cell(rec, "email"), Name: cell(rec, "name"), Groups: splitItems(cell(rec, "groups"))}
		for _, item := range splitItems(cell(rec, "roles")) {
			role, contract, _ := strings.Cut(item, ":")
			row.Roles = append(row.Roles, ImportRole{Role: usher.Role(strings.TrimSpace(role)), Contract: strings.TrimSpace(contract)})
		}
		for _, item := range splitItems(cell(rec, "subscriptions")) {
			contract, services, _ := strings.Cut(item, ":")
			seat := ImportSeat{Contract: strings.TrimSpace(contract)}
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
