package web_test

import (
	"context"
	"encoding/csv"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// TestUsageReportAsOfSnapshot records a snapshot of three seats as an email
// would, then one holder uses the product and another loses the seat: the
// report as of the snapshot lists the three with what changed, in JSON and
// CSV; an unassign that names when the seats were reported inactive refuses
// the seat used since.
func TestUsageReportAsOfSnapshot(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		u := newUsageEnv(t, db, 0)
		c := u.admin
		for _, e := range []string{"ada@acme.test", "bob@acme.test", "cy@acme.test"} {
			u.seat(e, u.std)
		}
		var now usage.Report
		c.ok(http.StatusOK, "GET", "/api/v1/reports/usage?subscription="+itoa(u.std.ID)+"&q=acme.test&sort=email", nil, &now)
		var seats []usage.SnapshotSeat
		for _, r := range now.Rows {
			if r.Email != "admin@acme.test" {
				seats = append(seats, usage.SnapshotSeat{UserID: r.UserID, SubscriptionID: r.SubscriptionID, Email: r.Email,
					AssignedAt: r.AssignedAt, Inactivity: usage.NeverUsed})
			}
		}
		if len(seats) != 3 {
			t.Fatalf("got %d seats, want 3", len(seats))
		}
		taken := testNow
		err := db.Write(context.Background(), func(tx *store.Tx) error {
			return tx.InsertSnapshot(context.Background(), usage.NewSnapshot(usage.SnapshotNotification, 7, u.adminU.AccountID, usage.Range3m, taken, seats))
		})
		if err != nil {
			t.Fatal(err)
		}
		// Ada uses the product after the email; Cy loses the seat.
		if _, res := c.ingest("text/csv", "user,product,at\nada@acme.test,draftpro,"+testNow.Format(time.RFC3339)+"\n"); res.Accepted != 1 {
			t.Fatalf("ingest: %+v", res)
		}
		c.ok(http.StatusOK, "POST", "/api/v1/unassign", map[string]any{"items": []map[string]any{{"user_id": seats[2].UserID, "subscription_id": u.std.ID}}}, nil)

		t.Run("RowsMarkedWithTheirChange", func(t *testing.T) {
			var rep usage.Report
			c.ok(http.StatusOK, "GET", "/api/v1/reports/usage?snapshot=notification-7&limit=2", nil, &rep)
			if rep.Snapshot == nil || rep.Snapshot.ID != "notification-7" || !rep.Snapshot.TakenAt.Equal(taken) || rep.Range != usage.Range3m {
				t.Fatalf("snapshot: got %+v", rep.Snapshot)
			}
			if rep.Totals.Seats != 3 || rep.Totals.ChangedSeats == nil || *rep.Totals.ChangedSeats != 2 || rep.NextCursor == "" {
				t.Fatalf("totals: got %+v, next %q", rep.Totals, rep.NextCursor)
			}
			var next usage.Report
			c.ok(http.StatusOK, "GET", "/api/v1/reports/usage?snapshot=notification-7&limit=2&cursor="+rep.NextCursor, nil, &next)
			rows := append(rep.Rows, next.Rows...)
			got := map[string]usage.Change{}
			for _, r := range rows {
				got[r.Email] = r.Change
			}
			want := map[string]usage.Change{"ada@acme.test": usage.UsedSince, "bob@acme.test": usage.Unchanged, "cy@acme.test": usage.Unassigned}
			if len(rows) != 3 || got["ada@acme.test"] != want["ada@acme.test"] || got["bob@acme.test"] != want["bob@acme.test"] || got["cy@acme.test"] != want["cy@acme.test"] {
				t.Fatalf("changes: got %v, want %v", got, want)
			}
			if rows[0].Email != "ada@acme.test" || rows[0].LastUsedNow == nil || rows[0].LastUsedNow.String() != "2026-03-15" {
				t.Fatalf("ada: got %+v", rows[0])
			}
		})
		t.Run("CSVCarriesTheChange", func(t *testing.T) {
			r := c.do("GET", "/api/v1/reports/usage?snapshot=notification-7", nil, "Accept", "text/csv")
			if r.Status != http.StatusOK || r.Header.Get("Usher-Report-Snapshot") != "notification-7" {
				t.Fatalf("got %d %v", r.Status, r.Header)
			}
			recs, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 4 || recs[0][len(recs[0])-1] != "change" || recs[1][len(recs[1])-1] != "used_since" || recs[3][len(recs[3])-1] != "unassigned" {
				t.Fatalf("got %q", recs)
			}
		})
		t.Run("UnknownOrForeignSnapshotIs404", func(t *testing.T) {
			c.fail(http.StatusNotFound, usher.ENOTFOUND, "GET", "/api/v1/reports/usage?snapshot=notification-8", nil, "snapshot")
			other, _ := u.account("Other", "admin@other.test")
			other.fail(http.StatusNotFound, usher.ENOTFOUND, "GET", "/api/v1/reports/usage?snapshot=notification-7", nil, "snapshot")
		})
		t.Run("BadSnapshotFiltersName422", func(t *testing.T) {
			c.fail(http.StatusUnprocessableEntity, usher.EINVALID, "GET", "/api/v1/reports/usage?snapshot=email-7", nil, "snapshot")
			c.fail(http.StatusUnprocessableEntity, usher.EINVALID, "GET", "/api/v1/reports/usage?snapshot=notification-7&status=active&sort=email", nil, "status", "sort")
			c.fail(http.StatusUnprocessableEntity, usher.EINVALID, "GET", "/api/v1/reports/usage?snapshot=notification-7&range=1y", nil, "range")
		})
		t.Run("UnassignRefusesASeatUsedSince", func(t *testing.T) {
			since := taken.Format(time.RFC3339Nano)
			p := c.fail(http.StatusConflict, usher.ECONFLICT, "POST", "/api/v1/unassign", map[string]any{"items": []map[string]any{
				{"user_id": seats[1].UserID, "subscription_id": u.std.ID, "unused_since": since},
				{"user_id": seats[0].UserID, "subscription_id": u.std.ID, "unused_since": since},
			}}, "items[1]")
			if !strings.Contains(p.Detail, "has used DraftPro since the seat was reported inactive") {
				t.Fatalf("detail: %s", p.Detail)
			}
			// Nothing changed: Bob still holds his seat, and goes alone.
			c.ok(http.StatusOK, "POST", "/api/v1/unassign", map[string]any{"items": []map[string]any{
				{"user_id": seats[1].UserID, "subscription_id": u.std.ID, "unused_since": since}}}, nil)
		})
	})
}

// TestUsageReportSeatsUnassignedInTheRange unassigns two seats and gives
// one back: status=unassigned lists the other with the day it was freed,
// in JSON and CSV, and the held seats carry their days inactive.
func TestUsageReportSeatsUnassignedInTheRange(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		u := newUsageEnv(t, db, 0)
		c := u.admin
		bob, cy := u.seat("bob@acme.test", u.std), u.seat("cy@acme.test", u.std)
		c.ok(http.StatusOK, "POST", "/api/v1/unassign", map[string]any{"items": []map[string]any{
			{"user_id": bob.ID, "subscription_id": u.std.ID}, {"user_id": cy.ID, "subscription_id": u.std.ID}}}, nil)
		c.ok(http.StatusOK, "PUT", "/api/v1/users/"+itoa(cy.ID)+"/access", map[string]any{"subscriptions": []map[string]any{{"subscription_id": u.std.ID, "assigned": true}}}, nil)

		var rep usage.Report
		c.ok(http.StatusOK, "GET", "/api/v1/reports/usage?status=unassigned", nil, &rep)
		if len(rep.Rows) != 1 || rep.Totals.Seats != 1 || rep.Totals.Users != 1 {
			t.Fatalf("got %+v, want Bob's seat only", rep)
		}
		r := rep.Rows[0]
		if r.Email != "bob@acme.test" || r.Status != usage.StatusUnassigned || r.UnassignedAt == nil || r.UnassignedAt.String() != "2026-03-15" || r.DaysInactive != nil {
			t.Fatalf("row: got %+v", r)
		}
		c.fail(http.StatusUnprocessableEntity, usher.EINVALID, "GET", "/api/v1/reports/usage?status=unassigned&sort=email", nil, "sort")

		resp := c.do("GET", "/api/v1/reports/usage?status=unassigned", nil, "Accept", "text/csv")
		recs, err := csv.NewReader(strings.NewReader(string(resp.Body))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		col := map[string]int{}
		for i, name := range recs[0] {
			col[name] = i
		}
		if len(recs) != 2 || recs[1][col["unassigned_at"]] != "2026-03-15" || recs[1][col["status"]] != "unassigned" {
			t.Fatalf("CSV: got %q", recs)
		}

		var all usage.Report
		c.ok(http.StatusOK, "GET", "/api/v1/reports/usage?q=cy", nil, &all)
		if len(all.Rows) != 1 || all.Rows[0].DaysInactive == nil || *all.Rows[0].DaysInactive != 0 || all.Rows[0].UnassignedAt != nil {
			t.Fatalf("Cy's seat: got %+v", all.Rows)
		}
		resp = c.do("GET", "/api/v1/reports/usage?q=cy", nil, "Accept", "text/csv")
		if recs, _ = csv.NewReader(strings.NewReader(string(resp.Body))).ReadAll(); len(recs) != 2 || recs[1][col["group"]] != "Direct" || recs[1][col["days_inactive"]] != "0" {
			t.Fatalf("CSV of Cy's seat: got %q", recs)
		}
	})
}
