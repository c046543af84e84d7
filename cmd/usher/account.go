package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

const accountHelp = `Usage: usher account <command> [flags]

Commands:
  create   create an account and its primary admin; prints the admin's API token
  list     list accounts

Run "usher account <command> --help" for its flags.
`

const accountCreateHelp = `Usage: usher account create --name NAME --admin-email EMAIL [flags]

Creates an account with its first primary admin, and prints the admin's API
token. The token is shown once: only its hash is stored. It also prints how
to set the admin's console password (usher user set-password).

Flags:
  --name NAME           the organisation's name (required)
  --admin-email EMAIL   the primary admin's email address (required)
  --admin-name NAME     the primary admin's name (default: the email address)
  --timezone TZ         IANA time zone for schedules and reports, e.g.
                        Europe/Berlin (default UTC)
  --allow-existing-email
                        create the account even when the admin email is a
                        user in another account already (refused without it)
` + dbFlagHelp + `  -h, --help            show this help

Example:
  usher account create --name "Acme Ltd" --admin-email ada@acme.example --timezone Europe/London
`

const accountListHelp = `Usage: usher account list [flags]

Lists every account: id, name, time zone and creation time.

Flags:
` + dbFlagHelp + `  -h, --help          show this help
`

func runAccountCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var in access.NewAccount
	fs := newFlagSet("account create")
	fs.StringVar(&in.Name, "name", "", "the organisation's name")
	fs.StringVar(&in.AdminEmail, "admin-email", "", "the primary admin's email")
	fs.StringVar(&in.AdminName, "admin-name", "", "the primary admin's name")
	fs.StringVar(&in.TimeZone, "timezone", "UTC", "IANA time zone")
	fs.BoolVar(&in.AllowExistingEmail, "allow-existing-email", false, "allow an admin email that has an account already")
	dsn := dbFlag(fs)
	if err := parse(fs, accountCreateHelp, args, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	switch {
	case in.Name == "" && in.AdminEmail == "":
		return usageErrorf("account create: --name and --admin-email are required (see usher account create --help)")
	case in.Name == "":
		return usageErrorf("account create: --name is required (see usher account create --help)")
	case in.AdminEmail == "":
		return usageErrorf("account create: --admin-email is required (see usher account create --help)")
	}
	db, err := openDB(ctx, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	acct, admin, token, err := access.New(db.Access(), nil).CreateAccount(ctx, in)
	if usher.ErrorCode(err) == usher.ECONFLICT && len(usher.ErrorFields(err)) > 0 && usher.ErrorFields(err)[0].Field == "admin_email" {
		f := usher.ErrorFields(err)[0]
		return usher.Errorf(usher.ECONFLICT, "account create: --admin-email: %s; nothing was created. To create another account for the same person anyway, add --allow-existing-email",
			strings.TrimSuffix(f.Reason, "; allow an existing email to create another account for them anyway"))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `Created account %d %q (time zone %s).
Primary admin: %s <%s>
API token:     %s
This token is shown once: only its hash is stored. Keep it somewhere safe.
Try it:        curl -H "Authorization: Bearer %s" %s/api/v1/me
Console:       set the admin's password to sign in at %s/signin:
                 usher user set-password --email %s --account %d
               or print a one-time link for them to set it:
                 usher user set-password --email %s --account %d --link
`, acct.ID, acct.Name, acct.TimeZone, admin.Name, admin.Email, token, token, serverURL(),
		serverURL(), admin.Email, acct.ID, admin.Email, acct.ID)
	return nil
}

func runAccountList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("account list")
	dsn := dbFlag(fs)
	if err := parse(fs, accountListHelp, args, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	db, err := openDB(ctx, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	accounts, err := access.New(db.Access(), nil).ListAccounts(ctx)
	if err != nil {
		return err
	}
	if len(accounts) == 0 {
		fmt.Fprintln(stdout, `No accounts yet. Create one with "usher account create" or try "usher serve --demo".`)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTIME ZONE\tCREATED")
	for _, a := range accounts {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", a.ID, a.Name, a.TimeZone, a.CreatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// serverURL guesses where "usher serve" answers, from the same environment
// serve reads, for the example curl line.
func serverURL() string {
	if u := os.Getenv("USHER_BASE_URL"); u != "" {
		return strings.TrimRight(u, "/")
	}
	addr := os.Getenv("USHER_ADDR")
	if addr == "" {
		addr = defaultAddr
	}
	return localURL(addr)
}
