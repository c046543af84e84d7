// Command usher is the Usher seat-management server and its operator tools.
// This package only wires things together: flags and environment in, the
// domain services and the store in between, text out. The rules live in
// internal/access and friends.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/usherhq/usher/internal/usher"
)

func main() {
	// The first SIGINT or SIGTERM cancels ctx and starts a graceful
	// shutdown; stop() restores the default so a second one kills.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // the command line is wrong
)

const overview = `Usher manages software seats: who holds which product, service and benefit.

Usage:
  usher <command> [flags]

Commands:
  serve            run the HTTP server (admin console at /, REST API under /api/v1)
                   and the notification scheduler
  serve --demo     the same, with a seeded demo account; prints how to sign in
  migrate          apply database migrations and exit
  account create   create an account and its primary admin; prints an API token
  account list     list accounts
  user set-password
                   set a user's console password, or print a one-time link
  token create|list|revoke
                   make, list or revoke a user's API tokens
  user import      import users from CSV: names, groups, roles, seats; --dry-run
  group            list, create, change and delete groups, their members and the
                   subscriptions they hold (usher group --help)
  sso              show, set up, edit or turn off an account's single sign-on
                   (OpenID Connect)
  notifications    show, set up, edit or turn off an admin's usage notifications;
                   run-due sends due emails once (for cron)
  usage import     import usage events from a CSV or NDJSON file
  reclaim          list, create, preview and delete reclaim policies; history
                   and undo of reclaims; run-due runs due policies once (for cron)
  subscription price
                   set a contract's price per seat per year
  bench            measure ingest, the Usage Report and its export against raw SQL
  version          print the version
  help [command]   show help for a command

Run "usher <command> --help" for a command's flags and environment variables.
Documentation: README.md and docs/cli.md.
`

// command is one subcommand: its help text and what it does with its arguments.
type command struct {
	name string
	help string
	run  func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	out := []command{
		{"serve", serveHelp, runServe},
		{"migrate", migrateHelp, runMigrate},
		{"backup", backupHelp, runBackup},
		{"restore", restoreHelp, runRestore},
		{"account create", accountCreateHelp, runAccountCreate},
		{"account list", accountListHelp, runAccountList},
		{"notifications show", notificationsShowHelp, runNotificationsShow},
		{"notifications set", notificationsSetHelp, runNotificationsSet},
		{"notifications off", notificationsOffHelp, runNotificationsOff},
		{"notifications run-due", notificationsRunDueHelp, runNotificationsRunDue},
		{"usage import", usageImportHelp, runUsageImport},
		{"reclaim list", reclaimListHelp, runReclaimList},
		{"reclaim create", reclaimCreateHelp, runReclaimCreate},
		{"reclaim preview", reclaimPreviewHelp, runReclaimPreview},
		{"reclaim delete", reclaimDeleteHelp, runReclaimDelete},
		{"reclaim history", reclaimHistoryHelp, runReclaimHistory},
		{"reclaim undo", reclaimUndoHelp, runReclaimUndo},
		{"reclaim run-due", reclaimRunDueHelp, runReclaimRunDue},
		{"subscription price", subscriptionPriceHelp, runSubscriptionPrice},
		{"bench", benchHelp, runBench},
		{"user set-password", userSetPasswordHelp, runUserSetPassword},
		{"token create", tokenCreateHelp, runTokenCreate},
		{"token list", tokenListHelp, runTokenList},
		{"token revoke", tokenRevokeHelp, runTokenRevoke},
		{"user import", userImportHelp, runUserImport},
		{"sso show", ssoShowHelp, runSSOShow},
		{"sso set", ssoSetHelp, runSSOSet},
		{"sso off", ssoOffHelp, runSSOOff},
		{"version", versionHelp, runVersion},
	}
	for name, g := range groupCommands {
		out = append(out, command{"group " + name, g.help, func(ctx context.Context, args []string, stdout, _ io.Writer) error {
			return runGroupCommand(ctx, name, args, stdout)
		}})
	}
	return out
}

// run is the whole program minus process concerns, so tests call it in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, overview)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			name := strings.Join(args[1:], " ")
			if c, ok := findCommand(name); ok {
				fmt.Fprint(stdout, c.help)
				return exitOK
			}
			if h, ok := groupHelps()[name]; ok {
				fmt.Fprint(stdout, h)
				return exitOK
			}
			return fail(stderr, usageErrorf("help: unknown command %q (see usher help)", name))
		}
		fmt.Fprint(stdout, overview)
		return exitOK
	case "-v", "-version", "--version":
		args = []string{"version"}
	case "account":
		return runAccount(ctx, args[1:], stdout, stderr)
	case "notifications":
		return runNotifications(ctx, args[1:], stdout, stderr)
	case "usage":
		return runUsage(ctx, args[1:], stdout, stderr)
	case "user":
		return runUser(ctx, args[1:], stdout, stderr)
	case "reclaim":
		return runReclaim(ctx, args[1:], stdout, stderr)
	case "subscription":
		return runSubscription(ctx, args[1:], stdout, stderr)
	case "token":
		return runToken(ctx, args[1:], stdout, stderr)
	case "sso":
		return runSSO(ctx, args[1:], stdout, stderr)
	case "group":
		return runGroup(ctx, args[1:], stdout, stderr)
	}
	c, ok := findCommand(args[0])
	if !ok {
		return fail(stderr, usageErrorf("unknown command %q (see usher help)", args[0]))
	}
	return fail(stderr, c.run(ctx, args[1:], stdout, stderr))
}

// groupHelps is the help of each command group, for "usher help GROUP".
func groupHelps() map[string]string {
	return map[string]string{
		"account": accountHelp, "notifications": notificationsHelp, "usage": usageHelp, "user": userHelp,
		"reclaim": reclaimHelp, "subscription": subscriptionHelp, "token": tokenHelp, "group": groupHelp, "sso": ssoHelp,
	}
}

func runAccount(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return fail(stderr, usageErrorf("account: missing subcommand: create or list (see usher account --help)"))
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, accountHelp)
		return exitOK
	}
	c, ok := findCommand("account " + args[0])
	if !ok {
		return fail(stderr, usageErrorf("account: unknown subcommand %q: want create or list", args[0]))
	}
	return fail(stderr, c.run(ctx, args[1:], stdout, stderr))
}

func findCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// errHelp says --help was asked for and the help was printed.
var errHelp = errors.New("help shown")

// usageError is a wrong command line; it exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// fail prints err as one line on stderr and returns the exit code for it.
// Domain errors show their message and every field problem; others show the
// wrapped chain, which names the operation.
func fail(stderr io.Writer, err error) int {
	if err == nil || errors.Is(err, errHelp) {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "usher: %s\n", oneLine(ue.msg))
		return exitUsage
	}
	var de *usher.Error
	if errors.As(err, &de) {
		fmt.Fprintf(stderr, "usher: %s\n", oneLine(de.Error()))
		return exitError
	}
	fmt.Fprintf(stderr, "usher: %s\n", oneLine(err.Error()))
	return exitError
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// newFlagSet returns a flag set that reports problems through parse rather
// than printing them, so every error is one line.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// flagSetParsed, when a test sets it, is shown every flag set parse reads
// and the environment variables bound to its flags: the documentation test
// holds docs/configuration.md to the real flags this way.
var flagSetParsed func(fs *flag.FlagSet, env map[string]string)

// parse parses args into fs, prints help to stdout on -h/--help, applies the
// environment to flags not given on the command line (flags win over env),
// and refuses positional arguments.
func parse(fs *flag.FlagSet, help string, args []string, stdout io.Writer, env map[string]string) error {
	if flagSetParsed != nil {
		flagSetParsed(fs, env)
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, help)
		return errHelp
	} else if err != nil {
		return usageErrorf("%s: %v (see usher %s --help)", fs.Name(), err, fs.Name())
	}
	if fs.NArg() > 0 {
		return usageErrorf("%s: unexpected argument %q (see usher %s --help)", fs.Name(), fs.Arg(0), fs.Name())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, key := range env {
		v, ok := os.LookupEnv(key)
		if !ok || set[name] {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return usageErrorf("%s: environment %s=%q: %v", fs.Name(), key, v, err)
		}
	}
	// The text rules of every other input (usher.TextProblem) hold for
	// flags and the environment too.
	var bad error
	fs.Visit(func(f *flag.Flag) {
		if reason := usher.TextProblem(f.Value.String()); reason != "" && bad == nil {
			bad = usageErrorf("%s: --%s %s", fs.Name(), f.Name, reason)
		}
	})
	return bad
}
