package usage_test

import (
	"context"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
)

// The dashboard counts on both engines: inactive seats per contract, and a
// year of seats held and used per product with usage data.
func TestDashboardCountsSeatsPerMonth(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		// Ada from January, Bo from March, Cy from June; Dee on Basic.
		w.seat(t, "ada@acme.test", w.std, time.Date(2025, 1, 10, 9, 0, 0, 0, w.nyc))
		w.seat(t, "bo@acme.test", w.std, time.Date(2025, 3, 5, 9, 0, 0, 0, w.nyc))
		w.seat(t, "cy@acme.test", w.std, time.Date(2025, 6, 20, 9, 0, 0, 0, w.nyc))
		w.seat(t, "dee@acme.test", w.basic, time.Date(2025, 2, 1, 9, 0, 0, 0, w.nyc))
		w.now = time.Date(2025, 12, 15, 12, 0, 0, 0, w.nyc)
		// Ada uses it in June and December, Bo in December.
		w.ingest(t, usage.FormatCSV, "user,product,at\n"+
			"ada@acme.test,draftpro,2025-06-03T15:00:00Z\n"+
			"ada@acme.test,draftpro,2025-12-01T15:00:00Z\n"+
			"ada@acme.test,draftpro,2025-12-02T15:00:00Z\n"+
			"bo@acme.test,draftpro,2025-12-03T15:00:00Z\n")
		d, err := w.use.Dashboard(context.Background(), w.admin)
		if err != nil {
			t.Fatal(err)
		}
		// Over 3 months only Cy (June, unused) is inactive on STD-1; Basic
		// plans have no usage data.
		if d.InactiveBySubscription[w.std.ID] != 1 || d.InactiveBySubscription[w.basic.ID] != 0 {
			t.Fatalf("inactive by contract: %v, want STD-1 1 and BAS-1 0", d.InactiveBySubscription)
		}
		if len(d.Months) != usage.DashboardMonths || d.Months[0].String() != "2025-01-01" || d.Months[11].String() != "2025-12-01" {
			t.Fatalf("months: %v, want January to December 2025", d.Months)
		}
		if len(d.Products) != 1 {
			t.Fatalf("products: %+v, want draftpro only (Basic has no usage data)", d.Products)
		}
		if d.WaitingBySubscription[w.std.ID] != 0 || d.Reclaimed == nil || len(d.Reclaimed) != 0 {
			t.Fatalf("waiting %v, reclaimed %+v; want none waiting and nothing reclaimed", d.WaitingBySubscription, d.Reclaimed)
		}
		p := d.Products[0]
		wantHeld := []int{1, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3}
		wantActive := []int{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2}
		for m := range wantHeld {
			if p.Held[m] != wantHeld[m] || p.Active[m] != wantActive[m] {
				t.Fatalf("month %d: held %v active %v, want held %v active %v", m+1, p.Held, p.Active, wantHeld, wantActive)
			}
		}

		// Cy's inactive seat, at EUR 600.00 a year, taken back by a bulk
		// unassign: a reclaim batch that saved its price.
		price, eur := "600.00", "EUR"
		if _, err := w.acc.UpdateSubscription(context.Background(), w.admin, w.std.ID, access.SubscriptionPatch{PricePerSeatYear: &price, Currency: &eur}); err != nil {
			t.Fatal(err)
		}
		cy := w.emails["cy@acme.test"]
		if _, err := w.acc.Unassign(context.Background(), w.admin, []access.UnassignItem{{UserID: cy.ID, SubscriptionID: w.std.ID}}); err != nil {
			t.Fatal(err)
		}
		if d, err = w.use.Dashboard(context.Background(), w.admin); err != nil {
			t.Fatal(err)
		}
		if len(d.Reclaimed) != 1 || d.Reclaimed[0].String() != "EUR 600.00" || d.Reclaimed[0].Seats != 1 || d.InactiveBySubscription[w.std.ID] != 0 {
			t.Fatalf("after unassigning Cy: reclaimed %+v, inactive %v; want one seat worth EUR 600.00 and none inactive", d.Reclaimed, d.InactiveBySubscription)
		}
	})
}
