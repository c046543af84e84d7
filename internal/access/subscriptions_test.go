package access_test

import (
	"context"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

func TestUpdateSubscriptionSeatsAndTerm(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		sub := f.sub1 // 10 seats; its manager holds one
		must(t, f.svc.Assign(ctx, f.primary, f.target.ID, sub.ID, nil))
		must(t, f.svc.Assign(ctx, f.primary, f.plain.UserID, sub.ID, nil))
		seats := func(n int) *int { return &n }
		day := func(s string) *usher.Date { d, _ := usher.ParseDate(s); return &d }
		stored := func(t *testing.T) usher.Subscription {
			t.Helper()
			s, err := f.svc.Subscription(ctx, f.primary, sub.ID)
			must(t, err)
			return s
		}

		t.Run("ContractManagerMayNot", func(t *testing.T) {
			_, err := f.svc.UpdateSubscription(ctx, f.manager, sub.ID, access.SubscriptionPatch{Seats: seats(20)})
			wantCode(t, err, usher.EFORBIDDEN)
		})
		t.Run("AdminChangesSeatsAndTerm", func(t *testing.T) {
			got, err := f.svc.UpdateSubscription(ctx, f.secondary, sub.ID, access.SubscriptionPatch{Seats: seats(5), TermEnd: day("2027-06-30")})
			must(t, err)
			s := stored(t)
			if s.Seats != 5 || s.TermEnd.String() != "2027-06-30" || s.TermStart.String() != "2026-01-01" || got.Seats != 5 || s.SeatsUsed != 3 {
				t.Fatalf("got %+v, stored %+v; want 5 seats, term 2026-01-01 to 2027-06-30", got, s)
			}
			log, err := f.svc.AuditLog(ctx, f.primary, 0, "subscription.update", "", 10)
			must(t, err)
			if len(log.Items) != 1 || !strings.Contains(string(log.Items[0].After), `"seats":5`) || !strings.Contains(string(log.Items[0].Before), `"seats":10`) {
				t.Fatalf("audit: got %+v, want one subscription.update from 10 to 5 seats", log.Items)
			}
		})
		t.Run("SeatsBelowThoseInUseAreRefusedNamingWhoMustGo", func(t *testing.T) {
			_, err := f.svc.UpdateSubscription(ctx, f.primary, sub.ID, access.SubscriptionPatch{Seats: seats(1), TermEnd: day("2028-01-01")})
			wantCode(t, err, usher.EINVALID)
			fields := usher.ErrorFields(err)
			if len(fields) != 1 || fields[0].Field != "seats" {
				t.Fatalf("got %v, want one problem naming seats", err)
			}
			// All were assigned at the same time and never used: ties go
			// by user id (mgr, then plain, then target), as many as must go.
			reason := fields[0].Reason
			for _, want := range []string{"cannot be 1 while 3 seats are in use", "unassign 2 seats first", "mgr@acme.test (never used", "plain@acme.test (never used"} {
				if !strings.Contains(reason, want) {
					t.Errorf("reason %q does not say %q", reason, want)
				}
			}
			if strings.Contains(reason, "target@acme.test") {
				t.Errorf("reason %q names more holders than must go", reason)
			}
			if s := stored(t); s.Seats != 5 || s.TermEnd.String() != "2027-06-30" {
				t.Fatalf("a refused change changed the contract: %+v", s)
			}
		})
		t.Run("SeatsEqualToThoseInUseAreFine", func(t *testing.T) {
			_, err := f.svc.UpdateSubscription(ctx, f.primary, sub.ID, access.SubscriptionPatch{Seats: seats(3)})
			must(t, err)
			if s := stored(t); s.Seats != 3 || s.SeatsAvailable() != 0 {
				t.Fatalf("got %+v, want 3 seats, none available", s)
			}
		})
		t.Run("BadInputNamesEveryField", func(t *testing.T) {
			empty, bad := "", "12.345"
			cases := []struct {
				name  string
				in    access.SubscriptionPatch
				field []string
			}{
				{"Nothing", access.SubscriptionPatch{}, []string{"seats"}},
				{"PriceWithoutCurrency", access.SubscriptionPatch{PricePerSeatYear: &bad}, []string{"price_per_seat_year"}},
				{"ZeroSeatsAndBadPrice", access.SubscriptionPatch{Seats: seats(0), PricePerSeatYear: &bad, Currency: &empty}, []string{"seats", "price_per_seat_year", "currency"}},
				{"EndBeforeStart", access.SubscriptionPatch{TermEnd: day("2025-12-31")}, []string{"term_end"}},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					_, err := f.svc.UpdateSubscription(ctx, f.primary, sub.ID, tc.in)
					wantCode(t, err, usher.EINVALID)
					var got []string
					for _, fe := range usher.ErrorFields(err) {
						got = append(got, fe.Field)
					}
					if strings.Join(got, ",") != strings.Join(tc.field, ",") {
						t.Fatalf("got %v, want fields %v", err, tc.field)
					}
				})
			}
		})
	})
}

func TestSetUsersStatusIsAllOrNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		status := func(id int64) usher.UserStatus {
			t.Helper()
			u, err := f.svc.User(ctx, f.primary, id)
			must(t, err)
			return u.Status
		}
		// The secondary admin may not disable a primary admin: nobody is.
		_, err := f.svc.SetUsersStatus(ctx, f.secondary, []int64{f.target.ID, f.primary.UserID}, usher.UserDisabled)
		wantCode(t, err, usher.EFORBIDDEN)
		if !strings.Contains(usher.ErrorMessage(err), "admin@acme.test") {
			t.Errorf("the refusal %q does not name whom it is about", usher.ErrorMessage(err))
		}
		if status(f.target.ID) != usher.UserActive {
			t.Fatal("a refused bulk change disabled someone")
		}
		_, err = f.svc.SetUsersStatus(ctx, f.manager, []int64{f.target.ID}, usher.UserDisabled)
		wantCode(t, err, usher.EFORBIDDEN)

		n, err := f.svc.SetUsersStatus(ctx, f.secondary, []int64{f.target.ID, f.plain.UserID}, usher.UserDisabled)
		must(t, err)
		if n != 2 || status(f.target.ID) != usher.UserDisabled || status(f.plain.UserID) != usher.UserDisabled {
			t.Fatalf("changed %d, want both disabled", n)
		}
		n, err = f.svc.SetUsersStatus(ctx, f.secondary, []int64{f.target.ID}, usher.UserDisabled)
		if must(t, err); n != 0 {
			t.Fatalf("disabling a disabled user changed %d, want 0", n)
		}
		_, err = f.svc.SetUsersStatus(ctx, f.secondary, []int64{f.target.ID, f.target.ID}, usher.UserActive)
		wantCode(t, err, usher.EINVALID)
	})
}
