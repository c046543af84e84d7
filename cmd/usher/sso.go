package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/usherhq/usher/internal/sso"
	"github.com/usherhq/usher/internal/usher"
)

const ssoHelp = `Usage: usher sso <command> --account ID [flags]

Single sign-on lets an account's people sign in to the console through their
identity provider (Microsoft Entra ID, Okta, any OpenID provider) with
OpenID Connect. See docs/identity.md.

Commands:
  show   show the account's single sign-on settings (never the client secret)
  set    set single sign-on up, or edit it
  off    turn single sign-on off: everyone signs in with a password again

Run "usher sso <command> --help" for its flags.
`

const ssoAccountFlagHelp = `  --account ID        the account (required; see usher account list)
`

const ssoBaseURLFlagHelp = `  --base-url URL      the server's public URL, which starts the redirect URI
                      (default http://<addr>)                  env USHER_BASE_URL
`

const ssoShowHelp = `Usage: usher sso show --account ID [flags]

Shows the account's single sign-on settings, the redirect URI to register
with the identity provider and the sign-in link to hand out. The client
secret is only said to be set.

Flags:
` + ssoAccountFlagHelp + ssoBaseURLFlagHelp + dbFlagHelp + `  -h, --help          show this help
`

const ssoSetHelp = `Usage: usher sso set --account ID [flags]

Sets single sign-on up for the account, or edits it. Setting it up needs
--provider-name, --issuer, --client-id and the client secret; an edit
changes only the flags given. The client secret is read from the first line
of standard input with --client-secret-stdin, so it stays out of the
process list and the shell history.

Flags:
` + ssoAccountFlagHelp + `  --provider-name N   shown on the sign-in button, e.g. Okta
  --issuer URL        the provider's issuer, exactly as its discovery document
                      says (https; http only on a loopback address)
  --client-id ID      the client (application) id registered with the provider
  --client-secret-stdin
                      read the client secret from standard input
  --allowed-domains D comma-separated email domains that may sign in, e.g.
                      acme.com,acme.co.uk; "" allows any verified email
  --create-users=B    true: create users at their first sign-in; false: only
                      existing users may sign in (default false)
  --require-sso=B     true: password sign-in off for everyone but primary
                      admins (default false)
` + ssoBaseURLFlagHelp + dbFlagHelp + `  -h, --help          show this help

Example:
  printf '%s\n' "$SECRET" | usher sso set --account 1 --provider-name Okta \
      --issuer https://acme.okta.com --client-id 0oa1b2c3 --client-secret-stdin \
      --allowed-domains acme.com --require-sso=true
`

const ssoOffHelp = `Usage: usher sso off --account ID [flags]

Turns single sign-on off for the account: everyone signs in with a password
again, and sign-ins in progress stop working. This is also the way back in
when the identity provider is misconfigured and no primary admin has a
password.

Flags:
` + ssoAccountFlagHelp + dbFlagHelp + `  -h, --help          show this help
`

func runSSO(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return fail(stderr, usageErrorf("sso: missing subcommand: show, set or off (see usher sso --help)"))
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, ssoHelp)
		return exitOK
	}
	c, ok := findCommand("sso " + args[0])
	if !ok {
		return fail(stderr, usageErrorf("sso: unknown subcommand %q: want show, set or off", args[0]))
	}
	return fail(stderr, c.run(ctx, args[1:], stdout, stderr))
}

// ssoFlags are the flags every sso subcommand shares.
type ssoFlags struct {
	account int64
	baseURL string
	dsn     *string
}

func (f *ssoFlags) register(fs *flag.FlagSet, withBase bool) {
	fs.Int64Var(&f.account, "account", 0, "the account id")
	if withBase {
		fs.StringVar(&f.baseURL, "base-url", "", "the server's public URL")
	}
	f.dsn = dbFlag(fs)
}

func (f *ssoFlags) check(name string) error {
	if f.account <= 0 {
		return usageErrorf("sso %s: --account is required: an account id from usher account list (see usher sso %s --help)", name, name)
	}
	if f.baseURL == "" {
		f.baseURL = serverURL()
	}
	if u, err := url.Parse(f.baseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErrorf("sso %s: --base-url %q: want an http:// or https:// URL", name, f.baseURL)
	}
	return nil
}

func printSSO(w io.Writer, svc *sso.Service, st sso.Settings) {
	domains := strings.Join(st.AllowedDomains, ", ")
	if domains == "" {
		domains = "any (emails the provider says are verified)"
	}
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	fmt.Fprintf(w, "Single sign-on for account %d: on\n", st.AccountID)
	fmt.Fprintf(w, "  Provider:         %s\n", st.ProviderName)
	fmt.Fprintf(w, "  Issuer:           %s\n", st.Issuer)
	fmt.Fprintf(w, "  Client ID:        %s\n", st.ClientID)
	fmt.Fprintf(w, "  Client secret:    set\n")
	fmt.Fprintf(w, "  Allowed domains:  %s\n", domains)
	fmt.Fprintf(w, "  Create users:     %s\n", yesNo(st.CreateUsers))
	fmt.Fprintf(w, "  Require SSO:      %s\n", yesNo(st.RequireSSO))
	fmt.Fprintf(w, "  Redirect URI:     %s\n", svc.RedirectURL())
	fmt.Fprintf(w, "  Sign-in link:     %s\n", svc.SignInURL(st.AccountID))
}

func runSSOShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f ssoFlags
	fs := newFlagSet("sso show")
	f.register(fs, true)
	if err := parse(fs, ssoShowHelp, args, stdout, map[string]string{"db": "USHER_DB", "base-url": "USHER_BASE_URL"}); err != nil {
		return err
	}
	if err := f.check("show"); err != nil {
		return err
	}
	db, err := openDB(ctx, *f.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	svc := sso.New(db.SSO(), sso.Config{BaseURL: f.baseURL})
	st, err := svc.Settings(ctx, usher.System(f.account))
	if usher.ErrorCode(err) == usher.ENOTFOUND {
		fmt.Fprintf(stdout, "Single sign-on for account %d: off\n  Redirect URI to register: %s\n", f.account, svc.RedirectURL())
		return nil
	} else if err != nil {
		return err
	}
	printSSO(stdout, svc, st)
	return nil
}

func runSSOSet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f ssoFlags
	var name, issuer, clientID, domains string
	var secretStdin, createUsers, requireSSO bool
	fs := newFlagSet("sso set")
	f.register(fs, true)
	fs.StringVar(&name, "provider-name", "", "shown on the sign-in button")
	fs.StringVar(&issuer, "issuer", "", "the provider's issuer URL")
	fs.StringVar(&clientID, "client-id", "", "the client id")
	fs.BoolVar(&secretStdin, "client-secret-stdin", false, "read the client secret from standard input")
	fs.StringVar(&domains, "allowed-domains", "", "comma-separated email domains")
	fs.BoolVar(&createUsers, "create-users", false, "create users at their first sign-in")
	fs.BoolVar(&requireSSO, "require-sso", false, "password sign-in off for all but primary admins")
	if err := parse(fs, ssoSetHelp, args, stdout, map[string]string{"db": "USHER_DB", "base-url": "USHER_BASE_URL"}); err != nil {
		return err
	}
	if err := f.check("set"); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	var secret string
	if secretStdin {
		line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read client secret from standard input: %w", err)
		}
		if secret = strings.TrimRight(line, "\r\n"); secret == "" {
			return usageErrorf("sso set: --client-secret-stdin: no secret on standard input")
		}
	}

	db, err := openDB(ctx, *f.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	svc := sso.New(db.SSO(), sso.Config{BaseURL: f.baseURL})
	sys := usher.System(f.account)
	prev, err := svc.Settings(ctx, sys)
	if err != nil && usher.ErrorCode(err) != usher.ENOTFOUND {
		return err
	}
	in := sso.Input{ProviderName: prev.ProviderName, Issuer: prev.Issuer, ClientID: prev.ClientID, ClientSecret: secret,
		AllowedDomains: prev.AllowedDomains, CreateUsers: prev.CreateUsers, RequireSSO: prev.RequireSSO}
	if given["provider-name"] {
		in.ProviderName = name
	}
	if given["issuer"] {
		in.Issuer = issuer
	}
	if given["client-id"] {
		in.ClientID = clientID
	}
	if given["allowed-domains"] {
		in.AllowedDomains = strings.Split(domains, ",")
	}
	if given["create-users"] {
		in.CreateUsers = createUsers
	}
	if given["require-sso"] {
		in.RequireSSO = requireSSO
	}
	st, created, err := svc.Set(ctx, sys, in)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintln(stdout, "Single sign-on has been set up.")
	} else {
		fmt.Fprintln(stdout, "Your changes have been saved.")
	}
	printSSO(stdout, svc, st)
	return nil
}

func runSSOOff(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f ssoFlags
	fs := newFlagSet("sso off")
	f.register(fs, false)
	if err := parse(fs, ssoOffHelp, args, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	if err := f.check("off"); err != nil {
		return err
	}
	db, err := openDB(ctx, *f.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := sso.New(db.SSO(), sso.Config{}).TurnOff(ctx, usher.System(f.account)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Single sign-on has been turned off for account %d. Everyone signs in with a password again.\n", f.account)
	return nil
}
