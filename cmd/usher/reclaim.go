package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/scheduler"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

const reclaimHelp = `Usage: usher reclaim <command> [flags]

Reclaim policies give back seats nobody uses: they warn each person, wait a
grace period, and free the seats still unused and not kept. Every reclaim
can be undone within 30 days. See docs/reclaim.md.

Commands:
  list      list the account's policies
  create    create a policy
  preview   what a policy would do if it ran now
  delete    delete a policy
  history   list reclaims, newest first
  undo      give back what one reclaim removed
  run-due   run every policy that is due and send its emails, then exit (for cron)

Run "usher reclaim <command> --help" for its flags.
`

const reclaimAdminHelp = `  --admin EMAIL       act as this admin (required); primary admins manage
                      policies, secondary admins may list, preview and read
  --account ID        the admin's account; needed only when the email is a
                      user in several accounts
`

const reclaimListHelp = `Usage: usher reclaim list --admin EMAIL [flags]

Lists the account's reclaim policies with their next run.

Flags:
` + reclaimAdminHelp + dbFlagHelp + `  -h, --help          show this help
`

const reclaimCreateHelp = `Usage: usher reclaim create --admin EMAIL --name NAME (--subscriptions IDS | --products CODES) --range R --mode M [flags]

Creates a reclaim policy. It runs every day at 06:00 in the account's time
zone, from tomorrow; "usher reclaim preview" shows what it would do now.

Flags:
` + reclaimAdminHelp + `  --name NAME         the policy's name, unique in the account
  --subscriptions IDS comma-separated subscription ids (Standard or Premium)
  --products CODES    comma-separated product codes: their Standard and
                      Premium subscriptions
  --range R           inactivity range: 30d, 3m, 6m, 9m, 1y, or days (45d)
  --mode M            warn_then_reclaim, reclaim or report_only
  --grace-days N      days between the warning and the reclaim (default 14)
  --never-used V      on, off, or a range of its own for seats never used
                      since assigned (default on)
  --stopped-using V   on, off, or a range of its own for seats used before
                      (default on)
  --exempt-users E    comma-separated emails the policy never touches
  --exempt-groups G   comma-separated group names whose members it never
                      touches (as the groups are at each run)
  --exempt-roles R    comma-separated roles whose holders it never touches,
                      e.g. contract_manager
  --disabled          create the policy switched off
` + dbFlagHelp + `  -h, --help          show this help

Example:
  usher reclaim create --admin ada@acme.example --name "Idle DraftPro" --products draftpro --range 3m --mode warn_then_reclaim --grace-days 14
`

const reclaimPreviewHelp = `Usage: usher reclaim preview --admin EMAIL --policy ID [flags]

Shows what the policy would do if it ran now — whom it would warn, whom it
would reclaim from, whom it leaves alone and why, and what it would save —
by the code path of its runs. Nothing changes.

Flags:
` + reclaimAdminHelp + `  --policy ID         the policy
  --json              print the plan as JSON, as the API answers it
` + dbFlagHelp + `  -h, --help          show this help
`

const reclaimDeleteHelp = `Usage: usher reclaim delete --admin EMAIL --policy ID [flags]

Deletes a policy with its runs and open warnings; the reclaim history stays.

Flags:
` + reclaimAdminHelp + `  --policy ID         the policy
` + dbFlagHelp + `  -h, --help          show this help
`

const reclaimHistoryHelp = `Usage: usher reclaim history --admin EMAIL [flags]

Lists reclaims (policy runs and bulk unassigns), newest first, with what
each removed and saved.

Flags:
` + reclaimAdminHelp + dbFlagHelp + `  -h, --help          show this help
`

const reclaimUndoHelp = `Usage: usher reclaim undo --admin EMAIL --reclaim ID [flags]

Gives back what one reclaim removed, within 30 days: each person's seats,
services and benefits together, where seats are still free. Lists what
could not be restored and why. An undo that stopped half-way is finished by
running it again; nobody is restored twice.

Flags:
` + reclaimAdminHelp + `  --reclaim ID        the reclaim (its id in "usher reclaim history")
` + dbFlagHelp + `  -h, --help          show this help
`

const reclaimRunDueHelp = `Usage: usher reclaim run-due [flags]

Plans every reclaim run that is due, carries it out and sends its emails,
then exits: what "usher serve" does on its scheduler, for those who prefer
cron. Safe beside running servers: each run and email is claimed in the
database. Without an SMTP server nothing runs, as nobody may lose a seat
without being told.

Flags (a flag wins over its environment variable):
` + dbFlagHelp + `  --smtp URL          SMTP server, as for "usher serve"      env USHER_SMTP_URL
  --mail-from ADDR    sender of the emails; required with --smtp env USHER_MAIL_FROM
  --base-url URL      public URL of the server, which starts the Keep my seat
                      links (default http://127.0.0.1:8080)     env USHER_BASE_URL
  -h, --help          show this help
`

func runReclaim(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return fail(stderr, usageErrorf("reclaim: missing subcommand (see usher reclaim --help)"))
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, reclaimHelp)
		return exitOK
	}
	c, ok := findCommand("reclaim " + args[0])
	if !ok {
		return fail(stderr, usageErrorf("reclaim: unknown subcommand %q: want list, create, preview, delete, history, undo or run-due", args[0]))
	}
	return fail(stderr, c.run(ctx, args[1:], stdout, stderr))
}

// reclaimEnv opens the database and the services for an admin command.
func reclaimEnv(ctx context.Context, af *adminFlags, cmd string) (func(), *access.Service, *reclaim.Service, usher.Actor, error) {
	db, svc, now, a, err := af.open(ctx, cmd)
	if err != nil {
		return nil, nil, nil, usher.Actor{}, err
	}
	rs, err := newReclaimService(db, svc, mailConfig{}, now, nil)
	if err != nil {
		db.Close()
		return nil, nil, nil, usher.Actor{}, err
	}
	return func() { db.Close() }, svc, rs, a, nil
}

func runReclaimList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var af adminFlags
	fs := newFlagSet("reclaim list")
	af.register(fs)
	if err := parse(fs, reclaimListHelp, args, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	closeDB, svc, rs, a, err := reclaimEnv(ctx, &af, "reclaim list")
	if err != nil {
		return err
	}
	defer closeDB()
	acct, err := svc.Account(ctx, a)
	if err != nil {
		return err
	}
	ps, err := rs.Policies(ctx, a)
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		fmt.Fprintln(stdout, "No reclaim policies. Create one with: usher reclaim create --help")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tMODE\tRANGE\tGRACE\tNEXT RUN")
	for _, p := range ps {
		next := "off"
		if p.Enabled {
			next = p.NextRunAt.In(acct.Location()).Format("2006-01-02 15:04 MST")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d days\t%s\n", p.ID, p.Name, p.Mode, p.Range, p.GraceDays, next)
	}
	return tw.Flush()
}

// ruleFlag reads on, off or a range; the domain checks the range.
func ruleFlag(v string) (*reclaim.Rule, error) {
	switch v {
	case "", "on":
		return &reclaim.Rule{Enabled: true}, nil
	case "off":
		return &reclaim.Rule{Enabled: false}, nil
	}
	return &reclaim.Rule{Enabled: true, Range: usage.Range(v)}, nil
}

func runReclaimCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var af adminFlags
	var name, subs, products, rng, mode, never, stopped, users, groups, roles string
	var grace int
	var disabled bool
	fs := newFlagSet("reclaim create")
	af.register(fs)
	fs.StringVar(&name, "name", "", "the policy's name")
	fs.StringVar(&subs, "subscriptions", "", "subscription ids")
	fs.StringVar(&products, "products", "", "product codes")
	fs.StringVar(&rng, "range", "", "inactivity range")
	fs.StringVar(&mode, "mode", "", "warn_then_reclaim, reclaim or report_only")
	fs.IntVar(&grace, "grace-days", reclaim.DefaultGraceDays, "grace period in days")
	fs.StringVar(&never, "never-used", "on", "on, off or a range")
	fs.StringVar(&stopped, "stopped-using", "on", "on, off or a range")
	fs.StringVar(&users, "exempt-users", "", "emails")
	fs.StringVar(&groups, "exempt-groups", "", "group names")
	fs.StringVar(&roles, "exempt-roles", "", "roles")
	fs.BoolVar(&disabled, "disabled", false, "create switched off")
	if err := parse(fs, reclaimCreateHelp, args, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	if (subs == "") == (products == "") {
		return usageErrorf("reclaim create: give exactly one of --subscriptions and --products (see usher reclaim create --help)")
	}
	closeDB, svc, rs, a, err := reclaimEnv(ctx, &af, "reclaim create")
	if err != nil {
		return err
	}
	defer closeDB()
	enabled := !disabled
	in := reclaim.Input{Name: name, Enabled: &enabled, Range: rng, Mode: reclaim.Mode(mode), GraceDays: &grace,
		Exemptions: &reclaim.Exemptions{}}
	if subs != "" {
		in.Scope.Kind = reclaim.ScopeSubscriptions
		for _, s := range splitList(subs) {
			id, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return usageErrorf("reclaim create: --subscriptions: %q is not a subscription id", s)
			}
			in.Scope.SubscriptionIDs = append(in.Scope.SubscriptionIDs, id)
		}
	} else {
		in.Scope.Kind, in.Scope.Products = reclaim.ScopeProducts, splitList(products)
	}
	if in.NeverUsed, err = ruleFlag(never); err != nil {
		return err
	}
	if in.StoppedUsing, err = ruleFlag(stopped); err != nil {
		return err
	}
	for _, e := range splitList(users) {
		u, err := actorByEmail(ctx, svc, usher.NormalizeEmail(e), a.AccountID)
		if err != nil {
			return fmt.Errorf("--exempt-users: %w", err)
		}
		in.Exemptions.Users = append(in.Exemptions.Users, u.UserID)
	}
	for _, n := range splitList(groups) {
		g, err := svc.GroupByName(ctx, a, n)
		if usher.ErrorCode(err) == usher.ENOTFOUND {
			return usher.Errorf(usher.ENOTFOUND, "--exempt-groups: there is no group named %q", n)
		} else if err != nil {
			return fmt.Errorf("--exempt-groups: %w", err)
		}
		in.Exemptions.Groups = append(in.Exemptions.Groups, g.ID)
	}
	for _, r := range splitList(roles) {
		in.Exemptions.Roles = append(in.Exemptions.Roles, usher.Role(r))
	}
	p, err := rs.Create(ctx, a, in)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Created reclaim policy %d %q (%s, range %s, grace %d days).\nSee what it would do now: usher reclaim preview --admin %s --policy %d\n",
		p.ID, p.Name, p.Mode, p.Range, p.GraceDays, a.Email, p.ID)
	return nil
}

func policyFlag(fs interface {
	Int64Var(*int64, string, int64, string)
}) *int64 {
	var id int64
	fs.Int64Var(&id, "policy", 0, "the policy's id")
	return &id
}

func runReclaimPreview(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var af adminFlags
	var asJSON bool
	fs := newFlagSet("reclaim preview")
	af.register(fs)
	id := policyFlag(fs)
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	if err := parse(fs, reclaimPreviewHelp, args, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	if *id <= 0 {
		return usageErrorf("reclaim preview: --policy is required (see usher reclaim list)")
	}
	closeDB, _, rs, a, err := reclaimEnv(ctx, &af, "reclaim preview")
	if err != nil {
		return err
	}
	defer closeDB()
	pl, err := rs.Preview(ctx, a, *id)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(pl)
	}
	fmt.Fprintf(stdout, "If policy %d ran now (%s): warn %d, reclaim %d, report %d, waiting %d, warnings closing %d, left alone %d.\n",
		pl.PolicyID, pl.Mode, pl.Warn, pl.Reclaim, pl.Report, pl.Waiting, pl.Kept, len(pl.Skipped))
	for _, c := range pl.Savings {
		fmt.Fprintf(stdout, "Reclaiming saves %s a year (%d seats).\n", c, c.Seats)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tUSER\tCONTRACT\tWHY\tLAST USED\tRECLAIM ON")
	for _, it := range pl.Items {
		last, on := "never", ""
		if !it.LastUsedAt.IsZero() {
			last = it.LastUsedAt.Format(time.DateOnly)
		}
		if !it.ReclaimAt.IsZero() {
			on = it.ReclaimAt.Format(time.DateOnly)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", it.Action, it.Email, it.ContractNumber, it.Inactivity, last, on)
	}
	for _, sk := range pl.Skipped {
		fmt.Fprintf(tw, "skip\t%s\tsubscription %d\t%s\t\t\n", sk.Email, sk.SubscriptionID, sk.Reason)
	}
	return tw.Flush()
}

func runReclaimDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var af adminFlags
	fs := newFlagSet("reclaim delete")
	af.register(fs)
	id := policyFlag(fs)
	if err := parse(fs, reclaimDeleteHelp, args, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	if *id <= 0 {
		return usageErrorf("reclaim delete: --policy is required (see usher reclaim list)")
	}
	closeDB, _, rs, a, err := reclaimEnv(ctx, &af, "reclaim delete")
	if err != nil {
		return err
	}
	defer closeDB()
	if err := rs.Delete(ctx, a, *id); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Deleted reclaim policy %d.\n", *id)
	return nil
}

func runReclaimHistory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var af adminFlags
	fs := newFlagSet("reclaim history")
	af.register(fs)
	if err := parse(fs, reclaimHistoryHelp, args, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	closeDB, svc, _, a, err := reclaimEnv(ctx, &af, "reclaim history")
	if err != nil {
		return err
	}
	defer closeDB()
	acct, err := svc.Account(ctx, a)
	if err != nil {
		return err
	}
	page, err := svc.Batches(ctx, a, "", access.MaxLimit)
	if err != nil {
		return err
	}
	if len(page.Items) == 0 {
		fmt.Fprintln(stdout, "Nothing has been reclaimed.")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWHEN\tSOURCE\tBY\tSEATS\tSAVED/YEAR\tUNDONE")
	for _, b := range page.Items {
		var who []string
		for _, it := range b.Items {
			who = append(who, it.Email)
		}
		var saved []string
		for _, c := range b.Saved {
			saved = append(saved, c.String())
		}
		undone := ""
		if !b.UndoneAt.IsZero() {
			undone = b.UndoneAt.In(acct.Location()).Format("2006-01-02 15:04")
		}
		if b.UndoUnfinished {
			undone += " (unfinished: undo again to finish)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", b.ID, b.CreatedAt.In(acct.Location()).Format("2006-01-02 15:04"), b.Source,
			b.ActorEmail, strings.Join(who, ", "), strings.Join(saved, " + "), undone)
	}
	return tw.Flush()
}

func runReclaimUndo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var af adminFlags
	var id int64
	fs := newFlagSet("reclaim undo")
	af.register(fs)
	fs.Int64Var(&id, "reclaim", 0, "the reclaim's id")
	if err := parse(fs, reclaimUndoHelp, args, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	if id <= 0 {
		return usageErrorf("reclaim undo: --reclaim is required (see usher reclaim history)")
	}
	closeDB, svc, _, a, err := reclaimEnv(ctx, &af, "reclaim undo")
	if err != nil {
		return err
	}
	defer closeDB()
	res, err := svc.Undo(ctx, a, id)
	if err != nil {
		return err
	}
	for _, o := range res.Restored {
		fmt.Fprintf(stdout, "Restored %s (%d %s).\n", o.Email, len(o.Items), plural(len(o.Items), "seat", "seats"))
	}
	for _, o := range res.Failed {
		fmt.Fprintf(stdout, "Could not restore %s: %s.\n", o.Email, o.Reason)
	}
	return nil
}

func runReclaimRunDue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	db, mc, now, log, err := runDueSetup(ctx, "reclaim run-due", reclaimRunDueHelp, args, stdout, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	rs, err := newReclaimService(db, access.New(db.Access(), now), mc, now, log)
	if err != nil {
		return err
	}
	res, err := scheduler.RunOnce(ctx, rs, scheduler.Owner())
	if err != nil {
		return fmt.Errorf("run due reclaims (planned %d, done %d): %w", res.Planned, res.Delivered, err)
	}
	fmt.Fprintf(stdout, "Planned %d %s; finished %d runs and emails.\n", res.Planned, plural(res.Planned, "run", "runs"), res.Delivered)
	if !rs.CanDeliver() {
		fmt.Fprintln(stdout, "No SMTP server configured (--smtp or USHER_SMTP_URL): no policy runs until one is.")
	}
	return nil
}

const subscriptionHelp = `Usage: usher subscription <command> [flags]

Commands:
  price     set or remove a subscription's price per seat per year

Run "usher subscription <command> --help" for its flags.
`

const subscriptionPriceHelp = `Usage: usher subscription price --admin EMAIL --contract NUMBER --price AMOUNT --currency CODE [flags]

Sets the price per seat per year of a contract, which the Usage Report, the
notification emails and reclaims use to say what inactive seats cost and
what reclaims save. --price "" --currency "" removes it.

Flags:
` + reclaimAdminHelp + `  --contract NUMBER   the contract number
  --price AMOUNT      per seat per year, at most two decimals, e.g. 1200.00
  --currency CODE     ISO 4217 code, e.g. EUR
` + dbFlagHelp + `  -h, --help          show this help
`

func runSubscription(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return fail(stderr, usageErrorf("subscription: missing subcommand: price (see usher subscription --help)"))
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, subscriptionHelp)
		return exitOK
	}
	c, ok := findCommand("subscription " + args[0])
	if !ok {
		return fail(stderr, usageErrorf("subscription: unknown subcommand %q: want price", args[0]))
	}
	return fail(stderr, c.run(ctx, args[1:], stdout, stderr))
}

func runSubscriptionPrice(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var af adminFlags
	var contract, price, currency string
	fs := newFlagSet("subscription price")
	af.register(fs)
	fs.StringVar(&contract, "contract", "", "the contract number")
	fs.StringVar(&price, "price", "", "per seat per year")
	fs.StringVar(&currency, "currency", "", "ISO 4217 code")
	if err := parse(fs, subscriptionPriceHelp, args, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	if contract == "" {
		return usageErrorf("subscription price: --contract is required")
	}
	db, svc, _, a, err := af.open(ctx, "subscription price")
	if err != nil {
		return err
	}
	defer db.Close()
	var id int64
	cursor := ""
	for id == 0 {
		page, err := svc.ListSubscriptions(ctx, a, cursor, access.MaxLimit)
		if err != nil {
			return err
		}
		for _, sub := range page.Items {
			if sub.ContractNumber == contract {
				id = sub.ID
			}
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if id == 0 {
		return usher.Errorf(usher.ENOTFOUND, "no contract %s that %s may see", contract, a.Email)
	}
	sub, err := svc.UpdateSubscription(ctx, a, id, access.SubscriptionPatch{PricePerSeatYear: &price, Currency: &currency})
	if err != nil {
		return err
	}
	if sub.Price == nil {
		fmt.Fprintf(stdout, "Contract %s has no price now.\n", contract)
		return nil
	}
	fmt.Fprintf(stdout, "Contract %s: %s %s per seat per year.\n", contract, sub.Price.Currency, usher.FormatCents(sub.Price.Cents))
	return nil
}
