package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/usherhq/usher/internal/auth"
)

const userHelp = `Usage: usher user <command> [flags]

Commands:
  set-password   set a user's console password, or print a one-time link
                 with which they set it themselves
  import         import users from a CSV file (email, name, groups, roles,
                 subscriptions), all or nothing; --dry-run lists the changes

Run "usher user <command> --help" for its flags.
`

const userSetPasswordHelp = `Usage: usher user set-password --email EMAIL [--account ID] [--link] [flags]

Sets the password with which a user signs in to the admin console. The
password is read from standard input (the first line), or asked for twice
without echo when standard input is a terminal. Setting a password signs the
user out of every browser.

With --link, no password is read: a one-time link is printed instead, which
the user opens to choose their password. It works once, for 24 hours.

Flags:
  --email EMAIL       the user's email address (required)
  --account ID        the account, when the email is a user in several
  --link              print a one-time set-password link instead
  --base-url URL      the server's public URL, which starts the link
                      (default http://<addr>)                  env USHER_BASE_URL
` + dbFlagHelp + `  -h, --help          show this help

Examples:
  usher user set-password --email ada@acme.example
  printf '%s\n' "$PASSWORD" | usher user set-password --email ada@acme.example --account 2
  usher user set-password --email ada@acme.example --link --base-url https://usher.acme.example
`

// stdin is where commands read input; tests replace it.
var stdin io.Reader = os.Stdin

func runUser(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return fail(stderr, usageErrorf("user: missing subcommand: set-password or import (see usher user --help)"))
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, userHelp)
		return exitOK
	}
	c, ok := findCommand("user " + args[0])
	if !ok {
		return fail(stderr, usageErrorf("user: unknown subcommand %q: want set-password or import", args[0]))
	}
	return fail(stderr, c.run(ctx, args[1:], stdout, stderr))
}

func runUserSetPassword(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var email, baseURL string
	var accountID int64
	var link bool
	fs := newFlagSet("user set-password")
	fs.StringVar(&email, "email", "", "the user's email")
	fs.Int64Var(&accountID, "account", 0, "the account id")
	fs.BoolVar(&link, "link", false, "print a one-time link")
	fs.StringVar(&baseURL, "base-url", "", "the server's public URL")
	dsn := dbFlag(fs)
	if err := parse(fs, userSetPasswordHelp, args, stdout, map[string]string{"db": "USHER_DB", "base-url": "USHER_BASE_URL"}); err != nil {
		return err
	}
	if email == "" {
		return usageErrorf("user set-password: --email is required (see usher user set-password --help)")
	}
	if accountID < 0 {
		return usageErrorf("user set-password: --account %d: want an account id from usher account list", accountID)
	}
	if baseURL == "" {
		baseURL = serverURL()
	}
	if u, err := url.Parse(baseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErrorf("user set-password: --base-url %q: want an http:// or https:// URL", baseURL)
	}

	db, err := openDB(ctx, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	svc := auth.New(db.Auth(), auth.Config{})
	u, err := svc.FindUser(ctx, email, accountID)
	if err != nil {
		return err
	}
	if link {
		token, l, err := svc.CreatePasswordLink(ctx, u.AccountID, u.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "One-time link for %s <%s> (account %d), valid until %s:\n%s/set-password?token=%s\n",
			u.Name, u.Email, u.AccountID, l.ExpiresAt.Format("2006-01-02 15:04 MST"), strings.TrimRight(baseURL, "/"), token)
		return nil
	}
	password, err := readPassword(stderr, u.Email)
	if err != nil {
		return err
	}
	if err := svc.SetPassword(ctx, u.AccountID, u.ID, password); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Password set for %s <%s> (account %d). Sign in at %s/signin\n",
		u.Name, u.Email, u.AccountID, strings.TrimRight(baseURL, "/"))
	return nil
}

// readPassword reads the new password: asked twice without echo on a
// terminal, else the first line of standard input, so scripts can pipe it.
func readPassword(prompt io.Writer, email string) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(prompt, "New password for %s: ", email)
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(prompt, "Repeat it: ")
		second, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(first) != string(second) {
			return "", errors.New("the two passwords differ; nothing was changed")
		}
		return string(first), nil
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, auth.MaxPasswordLen+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usageErrorf("user set-password: no password on standard input (pipe it in, or run on a terminal, or use --link)")
	}
	return line, nil
}
