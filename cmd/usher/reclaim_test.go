package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usher"
)

// TestReclaimCommands: a price is set, a policy created and previewed, a
// bulk unassign shows in the history and is undone, from the command line.
func TestReclaimCommands(t *testing.T) {
	setClock(t, time.Date(2026, 2, 2, 10, 0, 0, 0, time.UTC))
	db := tempDB(t)
	if code, _, stderr := cli(t, "account", "create", "--name", "Acme", "--admin-email", "ada@acme.test", "--timezone", "Europe/London", "--db", db); code != 0 {
		t.Fatalf("account create: %s", stderr)
	}
	// A contract with a seat held since last year, never used.
	ctx := context.Background()
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	long := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	svc := access.New(st.Access(), func() time.Time { return long })
	sys := usher.System(1)
	email := "ina@acme.test"
	ina, err := svc.CreateUser(ctx, sys, access.UserInput{Email: &email})
	if err != nil {
		t.Fatal(err)
	}
	seats, no := 3, false
	sub, err := svc.CreateSubscription(ctx, sys, access.NewSubscription{Product: "draftpro", Plan: usher.PlanStandard, Seats: &seats, ContractNumber: "DP-1",
		TermStart: usher.Date{Time: long}, TermEnd: usher.Date{Time: long.AddDate(2, 0, 0)}, ContractManagerID: 1, AssignManagerSeat: &no})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Assign(ctx, sys, ina.ID, sub.ID, nil); err != nil {
		t.Fatal(err)
	}
	st.Close()

	if code, out, stderr := cli(t, "subscription", "price", "--admin", "ada@acme.test", "--contract", "DP-1", "--price", "99.5", "--currency", "usd", "--db", db); code != 0 || !strings.Contains(out, "USD 99.50") {
		t.Fatalf("price: %d %q %q", code, out, stderr)
	}
	if code, _, stderr := cli(t, "reclaim", "create", "--admin", "ada@acme.test", "--name", "Idle", "--products", "draftpro", "--range", "45d", "--mode", "reclaim", "--db", db); code != 0 {
		t.Fatalf("create: %s", stderr)
	}
	code, out, stderr := cli(t, "reclaim", "preview", "--admin", "ada@acme.test", "--policy", "1", "--db", db)
	if code != 0 || !strings.Contains(out, "reclaim 1") || !strings.Contains(out, "ina@acme.test") || !strings.Contains(out, "USD 99.50") {
		t.Fatalf("preview: %d %q %q", code, out, stderr)
	}
	if code, out, _ := cli(t, "reclaim", "list", "--admin", "ada@acme.test", "--db", db); code != 0 || !strings.Contains(out, "Idle") {
		t.Fatalf("list: %q", out)
	}
	code, _, stderr = cli(t, "reclaim", "create", "--admin", "ada@acme.test", "--name", "Staff", "--products", "draftpro", "--range", "45d", "--mode", "reclaim",
		"--exempt-groups", "No such group", "--db", db)
	if code != 1 || !strings.Contains(stderr, "--exempt-groups") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("create with an unknown group: %d %q", code, stderr)
	}
	if code, _, stderr := cli(t, "group", "create", "--name", "Service accounts", "--db", db); code != 0 {
		t.Fatalf("group create: %s", stderr)
	}
	if code, _, stderr := cli(t, "group", "add-member", "Service accounts", "ina@acme.test", "--db", db); code != 0 {
		t.Fatalf("group add-member: %s", stderr)
	}
	if code, _, stderr := cli(t, "reclaim", "create", "--admin", "ada@acme.test", "--name", "Staff", "--products", "draftpro", "--range", "45d", "--mode", "reclaim",
		"--exempt-groups", "Service accounts", "--db", db); code != 0 {
		t.Fatalf("create with an exempt group: %s", stderr)
	}
	code, out, stderr = cli(t, "reclaim", "preview", "--admin", "ada@acme.test", "--policy", "2", "--db", db)
	if code != 0 || !strings.Contains(out, "reclaim 0") || !strings.Contains(out, "exempt as a member of the group Service accounts") {
		t.Fatalf("preview of the exempting policy: %d %q %q", code, out, stderr)
	}
	code, _, stderr = cli(t, "reclaim", "create", "--admin", "ada@acme.test", "--name", "Bad", "--products", "draftpro", "--range", "2w", "--mode", "soon", "--db", db)
	if code != 1 || !strings.Contains(stderr, "range:") || !strings.Contains(stderr, "mode:") {
		t.Fatalf("bad create: %d %q", code, stderr)
	}

	// A bulk unassign through the domain service is a reclaim batch.
	st, err = store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := access.New(st.Access(), nil).Unassign(ctx, sys, []access.UnassignItem{{UserID: ina.ID, SubscriptionID: sub.ID}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if code, out, _ := cli(t, "reclaim", "history", "--admin", "ada@acme.test", "--db", db); code != 0 || !strings.Contains(out, "unassign") || !strings.Contains(out, "USD 99.50") {
		t.Fatalf("history: %q", out)
	}
	if code, out, stderr := cli(t, "reclaim", "undo", "--admin", "ada@acme.test", "--reclaim", "1", "--db", db); code != 0 || !strings.Contains(out, "Restored ina@acme.test") {
		t.Fatalf("undo: %d %q %q", code, out, stderr)
	}
	if code, _, stderr := cli(t, "reclaim", "delete", "--admin", "ada@acme.test", "--policy", "1", "--db", db); code != 0 {
		t.Fatalf("delete: %s", stderr)
	}
	if code, out, _ := cli(t, "reclaim", "run-due", "--db", db); code != 0 || !strings.Contains(out, "no policy runs") {
		t.Fatalf("run-due without SMTP: %q", out)
	}
}
