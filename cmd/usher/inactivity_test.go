package main

import (
	"context"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// TestSeatInactivityAppliesTheRuleToAssignments checks the stand-in for the
// usage service: with no usage recorded, a seat on a Standard or Premium
// plan is inactive when it was assigned before the range began.
func TestSeatInactivityAppliesTheRuleToAssignments(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 5, 31, 10, 0, 0, 0, time.UTC)
		at := now
		svc := access.New(db.Access(), func() time.Time { return at })
		acct, _, _, err := svc.CreateAccount(ctx, access.NewAccount{Name: "Acme", AdminEmail: "ada@acme.test", TimeZone: "UTC"})
		if err != nil {
			t.Fatal(err)
		}
		sys := usher.System(acct.ID)
		// contract creates a contract whose manager gets a seat at the given time.
		contract := func(number, product, email string, plan usher.Plan, assigned time.Time) {
			t.Helper()
			at = assigned
			u, err := svc.CreateUser(ctx, sys, access.UserInput{Email: &email, Name: &email})
			if err != nil {
				t.Fatal(err)
			}
			seats := 3
			_, err = svc.CreateSubscription(ctx, sys, access.NewSubscription{Product: product, Plan: plan, Seats: &seats, ContractNumber: number,
				TermStart: usher.DateOf(assigned), TermEnd: usher.DateOf(now.AddDate(1, 0, 0)), Benefits: []string{}, ContractManagerID: u.ID})
			if err != nil {
				t.Fatal(err)
			}
		}
		// 3 months back from 31 May is 28 February: the first day inside the range.
		contract("C-1", "draftpro", "idle@acme.test", usher.PlanStandard, time.Date(2026, 2, 27, 23, 0, 0, 0, time.UTC))
		contract("C-2", "draftpro", "fresh@acme.test", usher.PlanPremium, time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC))
		contract("C-3", "animator", "basic@acme.test", usher.PlanBasic, now.AddDate(-1, 0, 0))
		contract("C-4", "animator", "yesterday@acme.test", usher.PlanStandard, now.AddDate(0, 0, -1))

		got, err := newInactivity(db, func() time.Time { return now }).InactiveSummary(ctx, acct.ID, usage.Range3m, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got.InactiveUsers != 1 || got.InactiveSeats != 1 || len(got.FirstUsers) != 1 || got.FirstUsers[0].Email != "idle@acme.test" {
			t.Fatalf("got %+v, want only idle@acme.test", got)
		}
		if len(got.ByProduct) != 1 || got.ByProduct[0] != (usage.ProductSummary{Product: "draftpro", ProductName: "DraftPro", InactiveSeats: 1, InactiveUsers: 1}) {
			t.Fatalf("by product: got %+v", got.ByProduct)
		}
		if got, err := newInactivity(db, func() time.Time { return now }).InactiveSummary(ctx, acct.ID, usage.Range1y, 10); err != nil || got.InactiveUsers != 0 {
			t.Fatalf("over a year: got %+v %v, want nobody (Basic plans are not counted)", got, err)
		}
	})
}
