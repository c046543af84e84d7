package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/auth"
	"github.com/usherhq/usher/internal/usher"
)

const tokenHelp = `Usage: usher token <command> [flags]

Commands:
  create   make an API token for a user; prints it once
  list     list a user's API tokens
  revoke   revoke an API token at once

Run "usher token <command> --help" for its flags.
`

const tokenCreateHelp = `Usage: usher token create --email EMAIL --name NAME [flags]

Makes an API token for a user and prints it. The token is shown once: only
its hash is stored. It acts with the user's roles as they are at each
request, narrowed by its scope. Ingest and scim tokens are for admins.

Flags:
  --email EMAIL       the token's owner (required)
  --account ID        the account, when the email is a user in several
  --name NAME         what the token is for, e.g. "nightly export" (required)
  --scope SCOPE       full (default), read (GET only), ingest (send usage
                      events only) or scim (user provisioning under /scim/v2)
  --expires-in DAYS   days until the token stops working, e.g. 90d or 90;
                      without it the token does not expire
` + dbFlagHelp + `  -h, --help          show this help

Example:
  usher token create --email mia@acme.example --name reporting --scope read --expires-in 90d
`

const tokenListHelp = `Usage: usher token list --email EMAIL [--account ID] [flags]

Lists a user's API tokens: id, name, scope, when made, last used (to the
minute) and when they expire. Secrets are never shown again.

Flags:
  --email EMAIL       the tokens' owner (required)
  --account ID        the account, when the email is a user in several
` + dbFlagHelp + `  -h, --help          show this help
`

const tokenRevokeHelp = `Usage: usher token revoke --id ID [flags]

Revokes an API token: the next request with it is refused (401). Token ids
are unique across accounts; "usher token list" shows them.

Flags:
  --id ID             the token's id (required)
` + dbFlagHelp + `  -h, --help          show this help
`

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return fail(stderr, usageErrorf("token: missing subcommand: create, list or revoke (see usher token --help)"))
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, tokenHelp)
		return exitOK
	}
	c, ok := findCommand("token " + args[0])
	if !ok {
		return fail(stderr, usageErrorf("token: unknown subcommand %q: want create, list or revoke", args[0]))
	}
	return fail(stderr, c.run(ctx, args[1:], stdout, stderr))
}

// daysFlag reads a number of days: "90" or "90d". It leaves *days nil
// unless set.
type daysFlag struct{ days **int }

func (d *daysFlag) String() string {
	if d.days == nil || *d.days == nil {
		return ""
	}
	return strconv.Itoa(**d.days) + "d"
}

func (d *daysFlag) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(s), "d"))
	if err != nil || n < 1 || n > access.MaxTokenDays {
		return fmt.Errorf("want a number of days between 1 and %d, such as 90d", access.MaxTokenDays)
	}
	*d.days = &n
	return nil
}

// tokenOwner finds the user an operator names by email (and account).
func tokenOwner(ctx context.Context, name, dsn, email string, accountID int64) (*access.Service, usher.User, func(), error) {
	if email == "" {
		return nil, usher.User{}, nil, usageErrorf("%s: --email is required (see usher %s --help)", name, name)
	}
	if accountID < 0 {
		return nil, usher.User{}, nil, usageErrorf("%s: --account %d: want an account id from usher account list", name, accountID)
	}
	db, err := openDB(ctx, dsn)
	if err != nil {
		return nil, usher.User{}, nil, err
	}
	u, err := auth.New(db.Auth(), auth.Config{}).FindUser(ctx, email, accountID)
	if err != nil {
		db.Close()
		return nil, usher.User{}, nil, fmt.Errorf("%s: %w", name, err)
	}
	return access.New(db.Access(), nil), u, func() { db.Close() }, nil
}

func runTokenCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var email, name, scope string
	var accountID int64
	var in access.TokenInput
	fs := newFlagSet("token create")
	fs.StringVar(&email, "email", "", "the token's owner")
	fs.Int64Var(&accountID, "account", 0, "the account id")
	fs.StringVar(&name, "name", "", "what the token is for")
	fs.StringVar(&scope, "scope", "full", "full, read, ingest or scim")
	fs.Var(&daysFlag{&in.ExpiresInDays}, "expires-in", "days until the token expires")
	dsn := dbFlag(fs)
	if err := parse(fs, tokenCreateHelp, args, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	if name == "" {
		return usageErrorf("token create: --name is required (see usher token create --help)")
	}
	in.Name, in.Scope = name, usher.TokenScope(scope)
	if !in.Scope.Valid() {
		return usageErrorf("token create: --scope %q: want full, read, ingest or scim", scope)
	}
	svc, u, done, err := tokenOwner(ctx, "token create", *dsn, email, accountID)
	if err != nil {
		return err
	}
	defer done()
	t, plain, err := svc.IssueToken(ctx, u.AccountID, u.ID, in)
	if err != nil {
		return fmt.Errorf("token create: %w", err)
	}
	expires := "never"
	if t.ExpiresAt != nil {
		expires = t.ExpiresAt.Format(time.RFC3339)
	}
	fmt.Fprintf(stdout, `Created token %d %q (scope %s) for %s <%s> (account %d); expires: %s.
API token: %s
This token is shown once: only its hash is stored. Keep it somewhere safe.
Revoke it with: usher token revoke --id %d
`, t.ID, t.Name, t.Scope, u.Name, u.Email, u.AccountID, expires, plain, t.ID)
	return nil
}

func runTokenList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var email string
	var accountID int64
	fs := newFlagSet("token list")
	fs.StringVar(&email, "email", "", "the tokens' owner")
	fs.Int64Var(&accountID, "account", 0, "the account id")
	dsn := dbFlag(fs)
	if err := parse(fs, tokenListHelp, args, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	svc, u, done, err := tokenOwner(ctx, "token list", *dsn, email, accountID)
	if err != nil {
		return err
	}
	defer done()
	tokens, err := svc.TokensOf(ctx, u.AccountID, u.ID)
	if err != nil {
		return fmt.Errorf("token list: %w", err)
	}
	if len(tokens) == 0 {
		fmt.Fprintf(stdout, "%s <%s> (account %d) has no API tokens.\n", u.Name, u.Email, u.AccountID)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPE\tCREATED\tLAST USED\tEXPIRES")
	for _, t := range tokens {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Scope, t.CreatedAt.Format(time.RFC3339),
			timeOr(t.LastUsedAt, "never"), timeOr(t.ExpiresAt, "never"))
	}
	return tw.Flush()
}

func timeOr(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}

func runTokenRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var id int64
	fs := newFlagSet("token revoke")
	fs.Int64Var(&id, "id", 0, "the token's id")
	dsn := dbFlag(fs)
	if err := parse(fs, tokenRevokeHelp, args, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	if id <= 0 {
		return usageErrorf("token revoke: --id is required: a token id from usher token list")
	}
	db, err := openDB(ctx, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	t, err := access.New(db.Access(), nil).RevokeTokenByID(ctx, id)
	if err != nil {
		return fmt.Errorf("token revoke: %w", err)
	}
	fmt.Fprintf(stdout, "Revoked token %d %q of %s (account %d).\n", t.ID, t.Name, t.UserEmail, t.AccountID)
	return nil
}
