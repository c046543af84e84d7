package main

import (
	"context"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usher"
)

func TestGroupCommands(t *testing.T) {
	db := tempDB(t)
	must := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := cli(t, append(args, "--db", db)...)
		if code != 0 {
			t.Fatalf("%v: exit %d, stderr %q", args, code, stderr)
		}
		return stdout
	}
	must("account", "create", "--name", "Acme", "--admin-email", "ada@acme.test")
	// A contract of 2 seats; the admin holds one as its contract manager.
	seedSubscription(t, db, "C-7", 2)
	for _, e := range []string{"bob@acme.test", "cy@acme.test"} {
		seedUser(t, db, e)
	}
	if out := must("group", "create", "--name", "Design", "--description", "CAD people"); !strings.Contains(out, `Created group 1 "Design"`) {
		t.Fatalf("create: %q", out)
	}
	if out := must("group", "assign", "Design", "--contract", "C-7", "--services", "cloud_storage"); !strings.Contains(out, "0 members seated, 0 waiting") {
		t.Fatalf("assign: %q", out)
	}
	out := must("group", "add-member", "design", "bob@acme.test", "cy@acme.test")
	if !strings.Contains(out, "2 added, 0 removed; 1 seated, 1 waiting") {
		t.Fatalf("add-member: %q", out)
	}
	out = must("group", "show", "1")
	for _, want := range []string{"C-7", "cloud_storage", "cy@acme.test"} {
		if !strings.Contains(out, want) {
			t.Errorf("show does not mention %q:\n%s", want, out)
		}
	}
	out = must("group", "remove-member", "Design", "bob@acme.test")
	if !strings.Contains(out, "1 removed; 0 seated, 0 waiting, 1 seats freed") {
		t.Fatalf("remove-member: %q", out)
	}
	if out := must("group", "show", "Design", "--json"); !strings.Contains(out, `"waiting": []`) || !strings.Contains(out, `"seated": 1`) {
		t.Fatalf("after removal the waiter should hold the seat:\n%s", out)
	}
	if out := must("group", "list"); !strings.Contains(out, "Design") || !strings.Contains(out, "CAD people") {
		t.Fatalf("list: %q", out)
	}
	code, _, stderr := cli(t, "group", "add-member", "Design", "nobody@acme.test", "--db", db)
	if code != 1 || !strings.Contains(oneErrorLine(t, stderr), "nobody@acme.test") {
		t.Fatalf("unknown member: exit %d, %q", code, stderr)
	}
	code, _, stderr = cli(t, "group", "assign", "Design", "--db", db)
	if code != 2 || !strings.Contains(stderr, "--contract is required") {
		t.Fatalf("assign without --contract: exit %d, %q", code, stderr)
	}
	must("group", "unassign", "Design", "--contract", "C-7")
	must("group", "delete", "Design")
	if out := must("group", "list"); strings.Contains(out, "Design") {
		t.Fatalf("deleted group listed: %q", out)
	}
	if code, out, _ := cli(t, "help", "group", "assign"); code != 0 || !strings.Contains(out, "--contract CONTRACT") {
		t.Fatalf("help group assign: %d %q", code, out)
	}
}

// seedSubscription records a draftpro contract in account 1, managed by user 1.
func seedSubscription(t *testing.T, dsn, number string, seats int) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start, _ := usher.ParseDate("2026-01-01")
	end, _ := usher.ParseDate("2027-01-01")
	_, err = access.New(db.Access(), nil).CreateSubscription(ctx, usher.System(1), access.NewSubscription{Product: "draftpro", Plan: usher.PlanStandard,
		Seats: &seats, ContractNumber: number, TermStart: start, TermEnd: end, ContractManagerID: 1})
	if err != nil {
		t.Fatal(err)
	}
}

func seedUser(t *testing.T, dsn, email string) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := access.New(db.Access(), nil).CreateUser(ctx, usher.System(1), access.UserInput{Email: &email}); err != nil {
		t.Fatal(err)
	}
}
