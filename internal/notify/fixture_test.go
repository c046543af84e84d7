package notify_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usher"
)

// fixture is one account on a real database (each test runs on SQLite and
// PostgreSQL) with a primary admin, a controllable clock and a recording
// mailer.
type fixture struct {
	t      *testing.T
	db     *store.DB
	clock  *clock
	mailer *fakeMailer
	svc    *notify.Service
	acct   usher.Account
	admin  usher.Actor
	users  []int64 // every user created, for runs()
	subID  int64   // a subscription for per-subscription roles; 0 until needed
}

// start is Wednesday 14 January 2026, 10:00 in Berlin.
var start = utc("2026-01-14T09:00:00Z")

func newFixture(t *testing.T, db *store.DB, inactive int) *fixture {
	t.Helper()
	f := &fixture{t: t, db: db, clock: &clock{t: start}, mailer: &fakeMailer{}}
	f.acct = usher.Account{Name: "Demo Co", TimeZone: "Europe/Berlin", CreatedAt: start}
	f.write(func(tx *store.Tx) error { return tx.CreateAccount(context.Background(), &f.acct) })
	f.admin = f.addUser(usher.RolePrimaryAdmin)
	f.svc = f.service(f.mailer, fakeInactivity{users: inactive, seats: inactive * 2})
	return f
}

func (f *fixture) write(fn func(tx *store.Tx) error) {
	f.t.Helper()
	if err := f.db.Write(context.Background(), fn); err != nil {
		f.t.Fatalf("write: %v", err)
	}
}

func (f *fixture) service(m notify.Mailer, in notify.Inactivity) *notify.Service {
	return notify.New(f.db.Notify(), m, in, notify.Config{
		BaseURL: "https://usher.example.com/", From: "Usher <usher@example.com>", Now: f.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxAttempts: 4,
	})
}

// addUser creates an active user holding role (on the fixture's
// subscription when the role is per subscription).
func (f *fixture) addUser(role usher.Role) usher.Actor {
	f.t.Helper()
	ctx := context.Background()
	n := len(f.users) + 1
	u := usher.User{AccountID: f.acct.ID, Email: fmt.Sprintf("admin%d@example.com", n), Name: fmt.Sprintf("Admin %d", n),
		Status: usher.UserActive, CreatedAt: start, UpdatedAt: start}
	g := usher.RoleGrant{Role: role}
	f.write(func(tx *store.Tx) error {
		if err := tx.CreateUser(ctx, &u); err != nil {
			return err
		}
		if role.PerSubscription() && f.subID == 0 {
			p, err := tx.ProductByCode(ctx, "draftpro")
			if err != nil {
				return err
			}
			sub := usher.Subscription{AccountID: f.acct.ID, Product: p, Plan: usher.PlanStandard, Seats: 5, ContractNumber: "C-1",
				TermStart: date("2026-01-01"), TermEnd: date("2026-12-31"), Benefits: []string{}, CreatedAt: start}
			if err := tx.CreateSubscription(ctx, &sub); err != nil {
				return err
			}
			f.subID = sub.ID
		}
		if role.PerSubscription() {
			g.SubscriptionID = f.subID
		}
		g.UserID = u.ID
		return tx.GrantRole(ctx, f.acct.ID, g)
	})
	f.users = append(f.users, u.ID)
	return usher.Actor{AccountID: f.acct.ID, UserID: u.ID, Email: u.Email, Grants: []usher.RoleGrant{g}, Scope: usher.ScopeFull}
}

// demote takes the primary admin role away from a.
func (f *fixture) demote(a usher.Actor) {
	f.t.Helper()
	f.write(func(tx *store.Tx) error {
		return tx.RevokeRole(context.Background(), f.acct.ID, usher.RoleGrant{UserID: a.UserID, Role: usher.RolePrimaryAdmin})
	})
}

// runs returns every run of the fixture's users, oldest first.
func (f *fixture) runs() []notify.Run {
	f.t.Helper()
	var out []notify.Run
	err := f.db.Notify().Read(context.Background(), func(tx notify.Tx) error {
		for _, id := range f.users {
			rs, err := tx.RunsOf(context.Background(), f.acct.ID, id, 0, 10_000)
			if err != nil {
				return err
			}
			out = append(out, rs...)
		}
		return nil
	})
	if err != nil {
		f.t.Fatalf("runs: %v", err)
	}
	slices.SortFunc(out, func(a, b notify.Run) int { return int(a.ID - b.ID) })
	return out
}

// setting reads a's setting straight from storage.
func (f *fixture) setting(a usher.Actor) (notify.Setting, error) {
	var s notify.Setting
	err := f.db.Notify().Read(context.Background(), func(tx notify.Tx) (err error) {
		s, err = tx.SettingOf(context.Background(), a.AccountID, a.UserID)
		return err
	})
	return s, err
}

// auditEntries returns the account's audit log, oldest first.
func (f *fixture) auditEntries() []usher.AuditEntry {
	f.t.Helper()
	var out []usher.AuditEntry
	err := f.db.Read(context.Background(), func(tx *store.Tx) (err error) {
		out, err = tx.ListAudit(context.Background(), f.acct.ID, access.AuditFilter{})
		return err
	})
	if err != nil {
		f.t.Fatalf("audit log: %v", err)
	}
	slices.Reverse(out)
	return out
}

// auditActions lists the actions audited so far, oldest first.
func (f *fixture) auditActions() []string {
	var out []string
	for _, e := range f.auditEntries() {
		out = append(out, e.Action)
	}
	return out
}
