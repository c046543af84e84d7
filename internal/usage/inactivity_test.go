package usage_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// Inactive seats say why they are inactive, new seats within the account's
// grace are never inactive, and the report prices the inactive seats.
func TestNeverUsedStoppedUsingGraceAndCost(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		if _, err := w.acc.UpdateSubscription(ctx, w.admin, w.std.ID, access.SubscriptionPatch{
			PricePerSeatYear: ptr("1200.50"), Currency: ptr("eur")}); err != nil {
			t.Fatal(err)
		}
		// now is 2025-01-02 09:00 in New York.
		w.seat(t, "never@acme.test", w.std, w.now.AddDate(0, -2, 0))   // assigned 2 months ago, never used
		w.seat(t, "stopped@acme.test", w.std, w.now.AddDate(0, -3, 0)) // used 2 months ago, not since
		w.seat(t, "active@acme.test", w.std, w.now.AddDate(0, -3, 0))  // used yesterday
		w.seat(t, "fresh@acme.test", w.std, w.now.AddDate(0, 0, -40))  // assigned 40 days ago, never used
		w.ingest(t, usage.FormatNDJSON, `{"user":"stopped@acme.test","product":"draftpro","at":"2024-11-02T10:00:00-04:00"}
{"user":"active@acme.test","product":"draftpro","at":"2025-01-01T10:00:00-05:00"}`)

		want := map[string]usage.Inactivity{"never@acme.test": usage.NeverUsed, "stopped@acme.test": usage.StoppedUsing,
			"fresh@acme.test": usage.NeverUsed}
		r := w.report(t, usage.ReportFilter{Status: "inactive", Range: usage.Range30d})
		got := map[string]usage.Inactivity{}
		for _, row := range r.Rows {
			got[row.Email] = row.Inactivity
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("inactive with a 14-day grace: got %v, want %v", got, want)
		}
		wantTotals := usage.ReportTotals{Seats: 3, Users: 3, InactiveSeats: 3, InactiveUsers: 3, NeverUsedSeats: 2, StoppedUsingSeats: 1,
			InactiveCost: []usher.Cost{{Currency: "EUR", Seats: 3, Cents: 3 * 120050}}}
		if !reflect.DeepEqual(r.Totals, wantTotals) {
			t.Errorf("totals: got %+v, want %+v", r.Totals, wantTotals)
		}
		for status, emails := range map[string][]string{
			"never_used":    {"fresh@acme.test", "never@acme.test"},
			"stopped_using": {"stopped@acme.test"},
			"active":        {"active@acme.test", "admin@acme.test"},
		} {
			r := w.report(t, usage.ReportFilter{Status: status, Range: usage.Range30d})
			var got []string
			for _, row := range r.Rows {
				if row.Product == "draftpro" {
					got = append(got, row.Email)
				}
			}
			if status == "active" {
				emails = emails[:1] // the admin holds no draftpro seat
			}
			if !reflect.DeepEqual(got, emails) {
				t.Errorf("status=%s: got %v, want %v", status, got, emails)
			}
		}

		t.Run("GraceLongerThanRange", func(t *testing.T) {
			days := 60
			if _, err := w.acc.UpdateAccount(ctx, w.admin, access.AccountSettings{NewSeatGraceDays: &days}); err != nil {
				t.Fatal(err)
			}
			r := w.report(t, usage.ReportFilter{Status: "inactive", Range: usage.Range30d})
			var got []string
			for _, row := range r.Rows {
				got = append(got, row.Email)
			}
			// fresh (40 days) and never (2 months ≈ 61 days, before the grace) —
			// only fresh is within 60 days.
			if want := []string{"never@acme.test", "stopped@acme.test"}; !reflect.DeepEqual(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			if r.Totals.InactiveSeats != 2 || r.Totals.NeverUsedSeats != 1 {
				t.Errorf("totals: got %+v", r.Totals)
			}
			sum, err := w.use.InactiveSummary(ctx, w.admin.AccountID, usage.Range30d, 10)
			if err != nil {
				t.Fatal(err)
			}
			if sum.InactiveSeats != 2 || sum.NeverUsedSeats != 1 || sum.StoppedUsingSeats != 1 ||
				!reflect.DeepEqual(sum.InactiveCost, []usher.Cost{{Currency: "EUR", Seats: 2, Cents: 2 * 120050}}) {
				t.Errorf("summary: got %+v", sum)
			}
		})

		t.Run("ErrInvalidGrace", func(t *testing.T) {
			days := 400
			_, err := w.acc.UpdateAccount(ctx, w.admin, access.AccountSettings{NewSeatGraceDays: &days})
			if usher.ErrorCode(err) != usher.EINVALID || usher.ErrorFields(err)[0].Field != "new_seat_grace_days" {
				t.Fatalf("got %v, want invalid new_seat_grace_days", err)
			}
		})
	})
}

func TestClassify(t *testing.T) {
	utc := time.UTC
	c := usage.Range30d.CutoffsOn(usage.DayOf(time.Date(2025, 3, 31, 12, 0, 0, 0, utc), utc), utc, 14)
	day := func(m time.Month, d int) time.Time { return time.Date(2025, m, d, 12, 0, 0, 0, utc) }
	for _, tt := range []struct {
		name           string
		plan           usher.Plan
		assigned, used time.Time
		status         usage.Status
		why            usage.Inactivity
	}{
		{"NeverUsed", usher.PlanStandard, day(1, 5), time.Time{}, usage.StatusInactive, usage.NeverUsed},
		{"UsedBeforeAssignment", usher.PlanStandard, day(1, 5), day(1, 4), usage.StatusInactive, usage.NeverUsed},
		{"StoppedUsing", usher.PlanPremium, day(1, 5), day(2, 1), usage.StatusInactive, usage.StoppedUsing},
		{"UsedInRange", usher.PlanStandard, day(1, 5), day(3, 2), usage.StatusActive, ""},
		{"AssignedInRange", usher.PlanStandard, day(3, 20), time.Time{}, usage.StatusActive, ""},
		{"Basic", usher.PlanBasic, day(1, 5), time.Time{}, usage.StatusUnavailable, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, why := usage.Classify(tt.plan, tt.assigned, tt.used, c)
			if s != tt.status || why != tt.why {
				t.Fatalf("got %s/%s, want %s/%s", s, why, tt.status, tt.why)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
