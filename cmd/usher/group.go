package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

const groupHelp = `Usage: usher group <command> [flags]

Commands:
  list            list an account's groups
  show            show a group: its subscriptions, exclusions and waiting members
  create          create a group
  update          rename a group or change its description
  delete          delete a group, freeing the seats only it gave
  members         list a group's members
  add-member      add users (by email) to a group; they get its seats or wait
  remove-member   remove users from a group, freeing seats only it gave
  assign          give a group a subscription's seat, with services and benefits
  unassign        take a subscription away from a group
  include         undo an exclusion made by unassigning a group-held seat

Every command works on the database directly (no server needed), as the
system, and is audited like the same change in the API. GROUP is a group's
id or name; CONTRACT a subscription's contract number.

Run "usher group <command> --help" for its flags.
`

const groupFlagsHelp = `  --account ID|NAME   the account; may be left out when there is only one
  --json              print the result as JSON, as the API answers it
` + dbFlagHelp + `  -h, --help          show this help
`

// groupCommands are the group subcommands: help text, whether they take a
// GROUP argument, and what they do.
var groupCommands = map[string]struct {
	help  string
	extra []string // valued flags beyond --account and --db
	run   func(ctx context.Context, g *groupCtx) error
}{
	"list": {`Usage: usher group list [--q TEXT] [flags]

Lists the account's groups by name with their member counts.

Flags:
  --q TEXT            only groups whose name contains TEXT
` + groupFlagsHelp, []string{"q"}, groupList},
	"show": {`Usage: usher group show GROUP [flags]

Shows a group: the subscriptions it is assigned (with seats held through it
and members waiting), the members excluded from them, and who waits.

Flags:
` + groupFlagsHelp, nil, groupShow},
	"create": {`Usage: usher group create --name NAME [--description TEXT] [flags]

Creates a group. Names are unique in the account regardless of case.

Flags:
  --name NAME          the group's name (required)
  --description TEXT   what the group is for
` + groupFlagsHelp, []string{"name", "description"}, groupCreate},
	"update": {`Usage: usher group update GROUP [--name NAME] [--description TEXT] [flags]

Renames a group or changes its description. Groups provisioned by an
identity provider (synced) are changed there, not here.

Flags:
  --name NAME          the new name
  --description TEXT   the new description
` + groupFlagsHelp, []string{"name", "description"}, groupUpdate},
	"delete": {`Usage: usher group delete GROUP [flags]

Deletes a group. Seats it alone gave are freed and go to the oldest waiters.

Flags:
` + groupFlagsHelp, nil, groupDelete},
	"members": {`Usage: usher group members GROUP [flags]

Lists a group's members by name, with when they joined.

Flags:
` + groupFlagsHelp, nil, groupMembers},
	"add-member": {`Usage: usher group add-member GROUP EMAIL... [flags]

Adds users to a group. Each gets a seat of every subscription the group is
assigned, or waits for one when none is free. All or nothing.

Flags:
` + groupFlagsHelp, nil, groupAddMember},
	"remove-member": {`Usage: usher group remove-member GROUP EMAIL... [flags]

Removes users from a group. Seats that only the group gave them are freed
and go to the oldest waiters. All or nothing.

Flags:
` + groupFlagsHelp, nil, groupRemoveMember},
	"assign": {`Usage: usher group assign GROUP --contract CONTRACT [--services A,B] [--benefits X,Y] [flags]

Gives every member of the group a seat of the subscription with the listed
services, and the listed benefits of the contract. Members already holding
a seat keep it (one seat however many ways it reaches them). Members for
whom no seat is free wait, longest-standing member first. Run again to
change the services and benefits.

Flags:
  --contract CONTRACT   the subscription's contract number (required)
  --services LIST       comma-separated service codes (see GET /api/v1/products)
  --benefits LIST       comma-separated benefit codes of the contract
` + groupFlagsHelp, []string{"contract", "services", "benefits"}, groupAssign},
	"unassign": {`Usage: usher group unassign GROUP --contract CONTRACT [flags]

Takes the subscription away from the group. Members lose the seats no other
source gives them; those seats go to the subscription's oldest waiters.

Flags:
  --contract CONTRACT   the subscription's contract number (required)
` + groupFlagsHelp, []string{"contract"}, groupUnassign},
	"include": {`Usage: usher group include GROUP --contract CONTRACT EMAIL [flags]

Ends a member's exclusion from the group's seat of the subscription (made by
unassigning the seat, e.g. from the Usage Report): they get the seat again,
or wait for one.

Flags:
  --contract CONTRACT   the subscription's contract number (required)
` + groupFlagsHelp, []string{"contract"}, groupInclude},
}

// groupCtx is what a group subcommand works with.
type groupCtx struct {
	svc    *access.Service
	actor  usher.Actor
	flags  map[string]string
	args   []string // positional arguments after GROUP
	group  usher.Group
	asJSON bool
	stdout io.Writer
}

func runGroup(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return fail(stderr, usageErrorf("group: missing subcommand (see usher group --help)"))
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, groupHelp)
		return exitOK
	}
	if _, ok := groupCommands[args[0]]; !ok {
		return fail(stderr, usageErrorf("group: unknown subcommand %q (see usher group --help)", args[0]))
	}
	return fail(stderr, runGroupCommand(ctx, args[0], args[1:], stdout))
}

func runGroupCommand(ctx context.Context, name string, args []string, stdout io.Writer) error {
	c := groupCommands[name]
	fs := newFlagSet("group " + name)
	account := fs.String("account", "", "account id or name")
	asJSON := fs.Bool("json", false, "print JSON")
	dsn := dbFlag(fs)
	valued := map[string]bool{"account": true, "db": true}
	values := map[string]*string{}
	for _, f := range c.extra {
		values[f] = fs.String(f, "", f)
		valued[f] = true
	}
	flags, pos := splitArgs(args, valued)
	if err := parse(fs, c.help, flags, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	needsGroup := name != "list" && name != "create"
	if needsGroup && len(pos) == 0 {
		return usageErrorf("group %s: GROUP is missing (see usher group %s --help)", name, name)
	}
	db, err := openDB(ctx, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	g := &groupCtx{svc: access.New(db.Access(), nil), flags: map[string]string{}, asJSON: *asJSON, stdout: stdout}
	for f, v := range values {
		g.flags[f] = *v
	}
	fs.Visit(func(f *flag.Flag) { g.flags["set:"+f.Name] = "1" })
	acct, err := findAccount(ctx, g.svc, *account)
	if err != nil {
		return err
	}
	// Whoever runs the CLI has the database itself: they act as the system.
	g.actor = usher.System(acct.ID)
	if needsGroup {
		if g.group, err = findGroup(ctx, g.svc, g.actor, pos[0]); err != nil {
			return err
		}
		g.args = pos[1:]
	} else if len(pos) > 0 {
		return usageErrorf("group %s: unexpected argument %q (see usher group %s --help)", name, pos[0], name)
	}
	return c.run(ctx, g)
}

// findGroup resolves GROUP as an id or a name.
func findGroup(ctx context.Context, svc *access.Service, a usher.Actor, want string) (usher.Group, error) {
	if id, err := strconv.ParseInt(want, 10, 64); err == nil && id > 0 {
		d, err := svc.Group(ctx, a, id)
		if err == nil {
			return d.Group, nil
		}
	}
	return svc.GroupByName(ctx, a, want)
}

func (g *groupCtx) print(v any, text func(w io.Writer)) {
	if g.asJSON {
		b, _ := json.MarshalIndent(v, "", "  ")
		fmt.Fprintf(g.stdout, "%s\n", b)
		return
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	text(tw)
	tw.Flush()
}

func (g *groupCtx) contract(ctx context.Context, cmd string) (usher.Subscription, error) {
	if g.flags["contract"] == "" {
		return usher.Subscription{}, usageErrorf("group %s: --contract is required (see usher group %s --help)", cmd, cmd)
	}
	return g.svc.SubscriptionByContract(ctx, g.actor, g.flags["contract"])
}

// userIDs resolves emails to user ids, naming every unknown one.
func (g *groupCtx) userIDs(ctx context.Context, cmd string) ([]int64, error) {
	if len(g.args) == 0 {
		return nil, usageErrorf("group %s: EMAIL is missing (see usher group %s --help)", cmd, cmd)
	}
	ids := make([]int64, 0, len(g.args))
	var missing []string
	for _, e := range g.args {
		u, err := g.svc.UserByEmail(ctx, g.actor, e)
		if usher.ErrorCode(err) == usher.ENOTFOUND {
			missing = append(missing, e)
			continue
		} else if err != nil {
			return nil, err
		}
		ids = append(ids, u.ID)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("group %s: no user with email %s; nothing was changed", cmd, strings.Join(missing, ", "))
	}
	return ids, nil
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func groupList(ctx context.Context, g *groupCtx) error {
	var all []usher.Group
	cursor := ""
	for {
		page, err := g.svc.ListGroups(ctx, g.actor, g.flags["q"], cursor, access.MaxLimit)
		if err != nil {
			return err
		}
		all = append(all, page.Items...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	g.print(access.Page[usher.Group]{Items: orNone(all)}, func(w io.Writer) {
		fmt.Fprintln(w, "ID\tNAME\tMEMBERS\tSYNCED\tDESCRIPTION")
		for _, x := range all {
			fmt.Fprintf(w, "%d\t%s\t%d\t%s\t%s\n", x.ID, x.Name, x.MemberCount, yesNo(x.Synced), x.Description)
		}
	})
	return nil
}

func orNone[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func groupShow(ctx context.Context, g *groupCtx) error {
	d, err := g.svc.Group(ctx, g.actor, g.group.ID)
	if err != nil {
		return err
	}
	g.print(d, func(w io.Writer) {
		fmt.Fprintf(w, "Group %d %q: %d members, synced %s\n", d.ID, d.Name, d.MemberCount, yesNo(d.Synced))
		if d.Description != "" {
			fmt.Fprintf(w, "%s\n", d.Description)
		}
		fmt.Fprintln(w, "\nCONTRACT\tPRODUCT\tSERVICES\tBENEFITS\tSEATED\tWAITING")
		for _, s := range d.Subscriptions {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\n", s.ContractNumber, s.Product, strings.Join(s.Services, ","), strings.Join(s.Benefits, ","), s.Seated, s.Waiting)
		}
		if len(d.Exclusions) > 0 {
			fmt.Fprintln(w, "\nEXCLUDED\tSUBSCRIPTION\tSINCE")
			for _, e := range d.Exclusions {
				fmt.Fprintf(w, "%s\t%d\t%s\n", e.Email, e.SubscriptionID, e.CreatedAt.Format("2006-01-02 15:04"))
			}
		}
		if len(d.Waiting) > 0 {
			fmt.Fprintln(w, "\nWAITING\tSUBSCRIPTION\tPLACE\tSINCE")
			for _, x := range d.Waiting {
				fmt.Fprintf(w, "%s\t%d\t%d\t%s\n", x.Email, x.SubscriptionID, x.Position, x.Since.Format("2006-01-02 15:04"))
			}
		}
	})
	return nil
}

func groupCreate(ctx context.Context, g *groupCtx) error {
	in := access.GroupInput{}
	if v := g.flags["name"]; v != "" {
		in.Name = &v
	}
	if v, ok := g.flags["description"]; ok && g.flags["set:description"] != "" {
		in.Description = &v
	}
	x, err := g.svc.CreateGroup(ctx, g.actor, in)
	if err != nil {
		return err
	}
	g.print(x, func(w io.Writer) { fmt.Fprintf(w, "Created group %d %q.\n", x.ID, x.Name) })
	return nil
}

func groupUpdate(ctx context.Context, g *groupCtx) error {
	in := access.GroupInput{}
	if g.flags["set:name"] != "" {
		v := g.flags["name"]
		in.Name = &v
	}
	if g.flags["set:description"] != "" {
		v := g.flags["description"]
		in.Description = &v
	}
	if in.Name == nil && in.Description == nil {
		return usageErrorf("group update: give --name or --description (see usher group update --help)")
	}
	x, err := g.svc.UpdateGroup(ctx, g.actor, g.group.ID, in)
	if err != nil {
		return err
	}
	g.print(x, func(w io.Writer) { fmt.Fprintf(w, "Updated group %d %q.\n", x.ID, x.Name) })
	return nil
}

func groupDelete(ctx context.Context, g *groupCtx) error {
	if err := g.svc.DeleteGroup(ctx, g.actor, g.group.ID); err != nil {
		return err
	}
	g.print(map[string]any{"deleted": g.group.ID}, func(w io.Writer) { fmt.Fprintf(w, "Deleted group %d %q.\n", g.group.ID, g.group.Name) })
	return nil
}

func groupMembers(ctx context.Context, g *groupCtx) error {
	var all []usher.GroupMember
	cursor := ""
	for {
		page, err := g.svc.GroupMembers(ctx, g.actor, g.group.ID, cursor, access.MaxLimit)
		if err != nil {
			return err
		}
		all = append(all, page.Items...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	g.print(access.Page[usher.GroupMember]{Items: orNone(all)}, func(w io.Writer) {
		fmt.Fprintln(w, "ID\tEMAIL\tNAME\tSTATUS\tADDED")
		for _, m := range all {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", m.ID, m.Email, m.Name, m.Status, m.AddedAt.Format("2006-01-02 15:04"))
		}
	})
	return nil
}

func printMembersResult(g *groupCtx, res access.MembersResult) {
	g.print(res, func(w io.Writer) {
		fmt.Fprintf(w, "Group %q: %d added, %d removed; %d seated, %d waiting, %d seats freed.\n",
			g.group.Name, res.Added, res.Removed, res.Seated, res.Waiting, res.Freed)
	})
}

func groupAddMember(ctx context.Context, g *groupCtx) error {
	ids, err := g.userIDs(ctx, "add-member")
	if err != nil {
		return err
	}
	res, err := g.svc.AddMembers(ctx, g.actor, g.group.ID, ids)
	if err != nil {
		return err
	}
	printMembersResult(g, res)
	return nil
}

func groupRemoveMember(ctx context.Context, g *groupCtx) error {
	ids, err := g.userIDs(ctx, "remove-member")
	if err != nil {
		return err
	}
	res, err := g.svc.RemoveMembers(ctx, g.actor, g.group.ID, ids)
	if err != nil {
		return err
	}
	printMembersResult(g, res)
	return nil
}

func groupAssign(ctx context.Context, g *groupCtx) error {
	sub, err := g.contract(ctx, "assign")
	if err != nil {
		return err
	}
	d, err := g.svc.AssignGroup(ctx, g.actor, g.group.ID, sub.ID, access.GroupAssignmentInput{
		Services: splitList(g.flags["services"]), Benefits: splitList(g.flags["benefits"]),
	})
	if err != nil {
		return err
	}
	g.print(d, func(w io.Writer) {
		for _, s := range d.Subscriptions {
			if s.SubscriptionID == sub.ID {
				fmt.Fprintf(w, "Group %q holds contract %s: %d members seated, %d waiting.\n", d.Name, sub.ContractNumber, s.Seated, s.Waiting)
			}
		}
	})
	return nil
}

func groupUnassign(ctx context.Context, g *groupCtx) error {
	sub, err := g.contract(ctx, "unassign")
	if err != nil {
		return err
	}
	if err := g.svc.UnassignGroup(ctx, g.actor, g.group.ID, sub.ID); err != nil {
		return err
	}
	g.print(map[string]any{"group_id": g.group.ID, "subscription_id": sub.ID}, func(w io.Writer) {
		fmt.Fprintf(w, "Group %q no longer holds contract %s.\n", g.group.Name, sub.ContractNumber)
	})
	return nil
}

func groupInclude(ctx context.Context, g *groupCtx) error {
	sub, err := g.contract(ctx, "include")
	if err != nil {
		return err
	}
	ids, err := g.userIDs(ctx, "include")
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := g.svc.IncludeMember(ctx, g.actor, g.group.ID, sub.ID, id); err != nil {
			return err
		}
	}
	g.print(map[string]any{"included": ids}, func(w io.Writer) {
		fmt.Fprintf(w, "Included %d %s in group %q's seat of contract %s.\n", len(ids), plural(len(ids), "member", "members"), g.group.Name, sub.ContractNumber)
	})
	return nil
}
