package usage_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// world is an account in New York with a controllable clock.
type world struct {
	now    time.Time
	acc    *access.Service
	use    *usage.Service
	admin  usher.Actor
	std    usher.Subscription // draftpro, standard
	basic  usher.Subscription // modelstudio, basic
	nyc    *time.Location
	emails map[string]usher.User
}

func newWorld(t *testing.T, db *store.DB) *world {
	t.Helper()
	return newWorldIn(t, db, "America/New_York")
}

// newWorldIn is newWorld with the account (and w.nyc) in time zone tz.
func newWorldIn(t *testing.T, db *store.DB, tz string) *world {
	t.Helper()
	ctx := context.Background()
	nyc, err := time.LoadLocation(tz)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{nyc: nyc, emails: map[string]usher.User{}}
	w.now = time.Date(2025, 1, 2, 9, 0, 0, 0, nyc)
	clock := func() time.Time { return w.now }
	w.acc = access.New(db.Access(), clock)
	w.use = usage.New(db.Usage(), usage.Config{Now: clock})
	_, admin, token, err := w.acc.CreateAccount(ctx, access.NewAccount{Name: "Acme", AdminEmail: "admin@acme.test", TimeZone: tz})
	if err != nil {
		t.Fatal(err)
	}
	if w.admin, err = w.acc.Authenticate(ctx, token); err != nil {
		t.Fatal(err)
	}
	no := false
	mk := func(num, product string, plan usher.Plan) usher.Subscription {
		seats := 50 // room for the 25 seats of the pagination test
		start, _ := usher.ParseDate("2025-01-01")
		end, _ := usher.ParseDate("2028-01-01")
		s, err := w.acc.CreateSubscription(ctx, w.admin, access.NewSubscription{Product: product, Plan: plan, Seats: &seats,
			ContractNumber: num, TermStart: start, TermEnd: end, ContractManagerID: admin.ID, AssignManagerSeat: &no})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	w.std = mk("STD-1", "draftpro", usher.PlanStandard)
	w.basic = mk("BAS-1", "modelstudio", usher.PlanBasic)
	return w
}

// seat creates a user and assigns them a seat of sub at time at.
func (w *world) seat(t *testing.T, email string, sub usher.Subscription, at time.Time) usher.User {
	t.Helper()
	ctx := context.Background()
	u, ok := w.emails[email]
	if !ok {
		name := strings.Split(email, "@")[0]
		var err error
		if u, err = w.acc.CreateUser(ctx, w.admin, access.UserInput{Email: &email, Name: &name}); err != nil {
			t.Fatal(err)
		}
		w.emails[email] = u
	}
	saved := w.now
	w.now = at
	defer func() { w.now = saved }()
	if err := w.acc.Assign(ctx, w.admin, u.ID, sub.ID, nil); err != nil {
		t.Fatal(err)
	}
	return u
}

func (w *world) ingest(t *testing.T, format usage.Format, body string) usage.IngestResult {
	t.Helper()
	res, err := w.use.Ingest(context.Background(), w.admin, usage.Decode(strings.NewReader(body), format))
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	return res
}

func (w *world) report(t *testing.T, f usage.ReportFilter) usage.Report {
	t.Helper()
	r, err := w.use.Report(context.Background(), w.admin, f)
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	return r
}

func statusByEmail(r usage.Report) map[string]usage.Status {
	m := map[string]usage.Status{}
	for _, row := range r.Rows {
		m[row.Email+"/"+row.Product] = row.Status
	}
	return m
}

func TestReportStatusesMatchTheDefinition(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		longAgo := time.Date(2025, 1, 2, 9, 0, 0, 0, w.nyc)
		w.seat(t, "oncutoff@acme.test", w.std, longAgo)
		w.seat(t, "daybefore@acme.test", w.std, longAgo)
		w.seat(t, "never@acme.test", w.std, longAgo)
		w.seat(t, "late-night@acme.test", w.std, longAgo)
		w.seat(t, "new@acme.test", w.std, time.Date(2026, 6, 1, 9, 0, 0, 0, w.nyc))
		w.seat(t, "assigned-on-cutoff@acme.test", w.std, time.Date(2026, 3, 15, 0, 0, 1, 0, w.nyc))
		w.seat(t, "assigned-before-cutoff@acme.test", w.std, time.Date(2026, 3, 14, 23, 59, 59, 0, w.nyc))
		w.seat(t, "basic@acme.test", w.basic, longAgo)
		w.now = time.Date(2026, 6, 15, 12, 0, 0, 0, w.nyc) // 3m cutoff: 2026-03-15
		res := w.ingest(t, usage.FormatNDJSON, strings.Join([]string{
			`{"user":"oncutoff@acme.test","product":"draftpro","at":"2026-03-15T00:30:00-04:00"}`,
			`{"user":"daybefore@acme.test","product":"draftpro","at":"2026-03-14T23:30:00-04:00"}`,
			// 03:00Z on the 15th is still the 14th in New York.
			`{"user":"late-night@acme.test","product":"draftpro","at":"2026-03-15T03:00:00Z"}`,
		}, "\n"))
		if res.Accepted != 3 || res.Rejected != 0 {
			t.Fatalf("ingest: got %+v", res)
		}
		r := w.report(t, usage.ReportFilter{Range: usage.Range3m})
		if r.Cutoff.String() != "2026-03-15" || r.Today.String() != "2026-06-15" {
			t.Fatalf("cutoff %s today %s, want 2026-03-15 and 2026-06-15", r.Cutoff, r.Today)
		}
		want := map[string]usage.Status{
			"oncutoff@acme.test/draftpro":               usage.StatusActive,
			"daybefore@acme.test/draftpro":              usage.StatusInactive,
			"never@acme.test/draftpro":                  usage.StatusInactive,
			"late-night@acme.test/draftpro":             usage.StatusInactive,
			"new@acme.test/draftpro":                    usage.StatusActive,
			"assigned-on-cutoff@acme.test/draftpro":     usage.StatusActive,
			"assigned-before-cutoff@acme.test/draftpro": usage.StatusInactive,
			"basic@acme.test/modelstudio":               usage.StatusUnavailable,
		}
		got := statusByEmail(r)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: got %q, want %q", k, got[k], v)
			}
		}
		if len(got) != len(want) {
			t.Errorf("got %d rows, want %d", len(got), len(want))
		}
		if r.Totals.Seats != 8 || r.Totals.InactiveSeats != 4 || r.Totals.InactiveUsers != 4 || r.Totals.Users != 8 {
			t.Errorf("totals: got %+v, want 8 seats, 8 users, 4 inactive seats and users", r.Totals)
		}
		if r.ProcessedAt == nil {
			t.Error("processed_at is empty after an ingest")
		}
		// The status filter returns exactly the rows of that status.
		inactive := w.report(t, usage.ReportFilter{Range: usage.Range3m, Status: "inactive"})
		if len(inactive.Rows) != 4 {
			t.Fatalf("inactive filter: got %d rows, want 4", len(inactive.Rows))
		}
		for _, row := range inactive.Rows {
			if row.Status != usage.StatusInactive {
				t.Errorf("inactive filter returned %s with status %s", row.Email, row.Status)
			}
		}
		unavailable := w.report(t, usage.ReportFilter{Range: usage.Range3m, Status: "unavailable"})
		if len(unavailable.Rows) != 1 || unavailable.Rows[0].StatusNote == "" {
			t.Fatalf("unavailable filter: got %+v", unavailable.Rows)
		}
		// With a six-month range the March users are active again.
		got = statusByEmail(w.report(t, usage.ReportFilter{Range: usage.Range6m}))
		if got["daybefore@acme.test/draftpro"] != usage.StatusActive || got["never@acme.test/draftpro"] != usage.StatusInactive {
			t.Errorf("6m: got %v", got)
		}
	})
}

func TestIngestKeepsGoodLinesAndIsIdempotent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		w.seat(t, "ada@acme.test", w.std, w.now)
		w.now = time.Date(2026, 6, 15, 12, 0, 0, 0, w.nyc)
		body := "user,product,at\n" +
			"ada@acme.test,draftpro,2026-06-01T10:00:00Z\n" +
			"ada@acme.test,draftpro\n" + // broken line
			"ghost@acme.test,draftpro,2026-06-01T10:00:00Z\n" +
			"ada@acme.test,nosuchproduct,2026-06-01T10:00:00Z\n" +
			"ada@acme.test,draftpro,2016-06-01T10:00:00Z\n" + // ten years old
			"ada@acme.test,draftpro,2027-06-01T10:00:00Z\n" + // future
			"ADA@acme.test,draftpro,2026-06-01T18:00:00Z\n" + // same day, other time
			"ada@acme.test,draftpro,2026-06-02T10:00:00Z\n"
		res := w.ingest(t, usage.FormatCSV, body)
		if res.Accepted != 3 || res.Rejected != 5 || res.Duplicates != 0 {
			t.Fatalf("first ingest: got %+v, want 3 accepted, 5 rejected", res)
		}
		wantLines := []int{3, 4, 5, 6, 7}
		for i, rej := range res.Rejections {
			if rej.Line != wantLines[i] {
				t.Errorf("rejection %d: line %d (%s), want line %d", i, rej.Line, rej.Reason, wantLines[i])
			}
		}
		for i, want := range []string{"field", "not a user", "not a product", "older than the retention", "future"} {
			if !strings.Contains(res.Rejections[i].Reason, want) {
				t.Errorf("rejection %d: %q does not say %q", i, res.Rejections[i].Reason, want)
			}
		}
		again := w.ingest(t, usage.FormatCSV, body)
		if again.Accepted != 0 || again.Duplicates != 3 || again.Rejected != 5 {
			t.Fatalf("re-send: got %+v, want 0 accepted, 3 duplicates", again)
		}
		r := w.report(t, usage.ReportFilter{Range: usage.Range30d})
		if len(r.Rows) != 1 || r.Rows[0].DaysUsed != 2 || r.Rows[0].LastUsed.String() != "2026-06-02" {
			t.Fatalf("row: got %+v, want 2 days used, last used 2026-06-02", r.Rows)
		}
		if w.use.Stats().DayWrites.Load() != 2 {
			t.Fatalf("day writes: got %d, want 2", w.use.Stats().DayWrites.Load())
		}
	})
}

func TestIngestNeedsPermission(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		u := w.seat(t, "plain@acme.test", w.std, w.now)
		plain, err := w.acc.ActorFor(context.Background(), w.admin.AccountID, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, err = w.use.Ingest(context.Background(), plain, usage.Decode(strings.NewReader("[]"), usage.FormatJSON))
		if usher.ErrorCode(err) != usher.EFORBIDDEN {
			t.Fatalf("got %v, want forbidden", err)
		}
		_, err = w.use.Report(context.Background(), plain, usage.ReportFilter{})
		if usher.ErrorCode(err) != usher.EFORBIDDEN {
			t.Fatalf("report as plain user: got %v, want forbidden", err)
		}
	})
}

func TestReportPaginationSortAndFilters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		start := w.now
		for i := range 25 {
			w.seat(t, fmt.Sprintf("user%02d@acme.test", i), w.std, start)
		}
		w.now = time.Date(2026, 6, 15, 12, 0, 0, 0, w.nyc)
		var lines []string
		for i := range 10 { // users 0..9 used it, on i+1 distinct days
			for d := 0; d <= i; d++ {
				lines = append(lines, fmt.Sprintf(`{"user":"user%02d@acme.test","product":"draftpro","at":"2026-06-%02dT12:00:00Z"}`, i, d+1))
			}
		}
		w.ingest(t, usage.FormatNDJSON, strings.Join(lines, "\n"))

		seen := map[string]bool{}
		cursor := ""
		pages := 0
		for {
			r := w.report(t, usage.ReportFilter{Limit: 10, Cursor: cursor, Sort: "-days_used"})
			pages++
			for _, row := range r.Rows {
				if seen[row.Email] {
					t.Fatalf("%s seen twice", row.Email)
				}
				seen[row.Email] = true
			}
			if pages == 1 && (r.Rows[0].Email != "user09@acme.test" || r.Rows[0].DaysUsed != 10) {
				t.Fatalf("first row by -days_used: got %s with %d days", r.Rows[0].Email, r.Rows[0].DaysUsed)
			}
			if r.NextCursor == "" {
				break
			}
			cursor = r.NextCursor
		}
		if len(seen) != 25 || pages != 3 {
			t.Fatalf("walked %d rows in %d pages, want 25 in 3", len(seen), pages)
		}
		r := w.report(t, usage.ReportFilter{Query: "USER1", Sort: "email"})
		if len(r.Rows) != 10 || r.Rows[0].Email != "user10@acme.test" || r.Totals.Seats != 10 {
			t.Fatalf("q=USER1: got %d rows, first %s, totals %+v", len(r.Rows), r.Rows[0].Email, r.Totals)
		}
		r = w.report(t, usage.ReportFilter{Status: "inactive", Range: usage.Range30d})
		if r.Totals.InactiveUsers != 15 || len(r.Rows) != 15 {
			t.Fatalf("inactive 30d: got %d rows, totals %+v, want 15", len(r.Rows), r.Totals)
		}
		_, err := w.use.Report(context.Background(), w.admin, usage.ReportFilter{Status: "sleeping", Range: "2w", Sort: "age", Product: "nope"})
		fields := map[string]bool{}
		for _, f := range usher.ErrorFields(err) {
			fields[f.Field] = true
		}
		for _, f := range []string{"status", "range", "sort", "product"} {
			if !fields[f] {
				t.Errorf("no error for %s; got %v", f, err)
			}
		}
		sum, err := w.use.InactiveSummary(context.Background(), w.admin.AccountID, usage.Range30d, 3)
		if err != nil {
			t.Fatal(err)
		}
		if sum.InactiveUsers != 15 || len(sum.FirstUsers) != 3 || sum.FirstUsers[0].Email != "user10@acme.test" ||
			len(sum.ByProduct) != 1 || sum.ByProduct[0].InactiveSeats != 15 {
			t.Fatalf("summary: got %+v", sum)
		}
	})
}

// Tokyo is nine hours ahead of UTC: a day counted in UTC instead of the
// account's time zone would move every boundary below by one day.
func TestReportBoundariesInTheAccountsTimeZone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorldIn(t, db, "Asia/Tokyo")
		tokyo := w.nyc
		at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, tokyo) }
		w.seat(t, "edge@acme.test", w.std, at(2025, 1, 2, 9, 0))
		w.seat(t, "before@acme.test", w.std, at(2025, 1, 2, 9, 0))
		w.seat(t, "yesterday@acme.test", w.std, at(2026, 4, 9, 23, 59))
		w.seat(t, "year-ago@acme.test", w.std, at(2025, 4, 9, 23, 59))
		w.seat(t, "year-ago-plus-a-day@acme.test", w.std, at(2025, 4, 10, 0, 1))
		w.seat(t, "before@acme.test", w.basic, at(2025, 1, 2, 9, 0))
		// 08:00 in Tokyo on April 10 is still April 9 in UTC.
		w.now = at(2026, 4, 10, 8, 0)
		res := w.ingest(t, usage.FormatJSON, `[
			{"user":"edge@acme.test","product":"draftpro","at":"2026-03-11T00:30:00+09:00"},
			{"user":"edge@acme.test","product":"draftpro","at":"2026-03-01T12:00:00+09:00"},
			{"user":"edge@acme.test","product":"draftpro","at":"2026-04-10T07:00:00+09:00"},
			{"user":"before@acme.test","product":"draftpro","at":"2026-03-10T23:30:00+09:00"},
			{"user":"before@acme.test","product":"modelstudio","at":"2026-04-01T10:00:00+09:00"}
		]`)
		if res.Accepted != 5 || res.Rejected != 0 {
			t.Fatalf("ingest: got %+v", res)
		}

		r := w.report(t, usage.ReportFilter{Range: usage.Range30d})
		if r.Today.String() != "2026-04-10" || r.Cutoff.String() != "2026-03-11" {
			t.Fatalf("30d: today %s cutoff %s, want 2026-04-10 and 2026-03-11", r.Today, r.Cutoff)
		}
		want := map[string]usage.Status{
			"edge@acme.test/draftpro":                usage.StatusActive,
			"before@acme.test/draftpro":              usage.StatusInactive,
			"yesterday@acme.test/draftpro":           usage.StatusActive,
			"year-ago@acme.test/draftpro":            usage.StatusInactive,
			"year-ago-plus-a-day@acme.test/draftpro": usage.StatusInactive,
			"before@acme.test/modelstudio":           usage.StatusUnavailable,
		}
		got := statusByEmail(r)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("30d %s: got %q, want %q", k, got[k], v)
			}
		}
		// One user holds an inactive seat and an unavailable one: counted
		// once, and the basic seat never counts as inactive.
		if r.Totals.Seats != 6 || r.Totals.Users != 5 || r.Totals.InactiveSeats != 3 || r.Totals.InactiveUsers != 3 {
			t.Errorf("30d totals: got %+v, want 6 seats, 5 users, 3 inactive seats and users", r.Totals)
		}
		for _, row := range r.Rows {
			switch row.Email + "/" + row.Product {
			case "edge@acme.test/draftpro":
				// March 1 is outside the range; March 11 and April 10 are inside.
				if row.DaysUsed != 2 || row.LastUsed == nil || row.LastUsed.String() != "2026-04-10" || row.MonthlyAverage != 2 {
					t.Errorf("edge: got days %d, last %v, average %v; want 2, 2026-04-10, 2", row.DaysUsed, row.LastUsed, row.MonthlyAverage)
				}
			case "yesterday@acme.test/draftpro":
				if row.LastUsed != nil || row.DaysUsed != 0 {
					t.Errorf("never used: got last %v, days %d", row.LastUsed, row.DaysUsed)
				}
			case "before@acme.test/modelstudio":
				// Usage of a basic seat is kept and shown, but decides nothing.
				if row.DaysUsed != 1 || row.StatusNote == "" {
					t.Errorf("basic: got days %d, note %q", row.DaysUsed, row.StatusNote)
				}
			}
		}

		r = w.report(t, usage.ReportFilter{Range: usage.Range1y})
		if r.Cutoff.String() != "2025-04-10" {
			t.Fatalf("1y cutoff: got %s, want 2025-04-10", r.Cutoff)
		}
		got = statusByEmail(r)
		for k, v := range map[string]usage.Status{
			"year-ago@acme.test/draftpro":            usage.StatusInactive,
			"year-ago-plus-a-day@acme.test/draftpro": usage.StatusActive,
			"before@acme.test/draftpro":              usage.StatusActive,
			"before@acme.test/modelstudio":           usage.StatusUnavailable,
		} {
			if got[k] != v {
				t.Errorf("1y %s: got %q, want %q", k, got[k], v)
			}
		}

		// At midnight in Tokyo the day turns and March 11 leaves the range.
		w.now = at(2026, 4, 11, 0, 0)
		r = w.report(t, usage.ReportFilter{Range: usage.Range30d, Query: "edge"})
		if r.Cutoff.String() != "2026-03-12" || len(r.Rows) != 1 || r.Rows[0].DaysUsed != 1 || r.Rows[0].Status != usage.StatusActive {
			t.Errorf("next day: cutoff %s, rows %+v; want 2026-03-12 and one active row with 1 day used", r.Cutoff, r.Rows)
		}
	})
}

func TestIngestClockSkewAndRetention(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		w.seat(t, "ada@acme.test", w.std, w.now)
		w.now = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
		line := func(at time.Time) string {
			return fmt.Sprintf(`{"user":"ada@acme.test","product":"draftpro","at":%q}`, at.Format(time.RFC3339Nano))
		}
		res := w.ingest(t, usage.FormatNDJSON, strings.Join([]string{
			line(w.now.Add(4 * time.Minute)),                     // inside the skew
			line(w.now.Add(6 * time.Minute)),                     // beyond it
			line(w.now.Add(-usage.DefaultRetention + time.Hour)), // just inside the retention
			line(w.now.Add(-usage.DefaultRetention - time.Hour)), // just outside
		}, "\n"))
		if res.Accepted != 2 || res.Rejected != 2 || res.Rejections[0].Line != 2 || res.Rejections[1].Line != 4 {
			t.Fatalf("got %+v, want lines 1 and 3 accepted, 2 and 4 rejected", res)
		}

		// Pruning deletes raw events older than the retention, only those.
		w.now = w.now.Add(2 * time.Hour)
		n, err := w.use.Prune(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("pruned %d events, want 1", n)
		}
		r := w.report(t, usage.ReportFilter{Range: usage.Range1y})
		if len(r.Rows) != 1 || r.Rows[0].DaysUsed != 1 {
			t.Fatalf("after prune: got %+v, want the recent day counted", r.Rows)
		}
		if n, err = w.use.Prune(context.Background()); err != nil || n != 0 {
			t.Fatalf("second prune: got %d, %v; want 0", n, err)
		}
	})
}

func TestReportSeesOnlyTheCallersSubscriptions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		coord := w.seat(t, "coord@acme.test", w.std, w.now)
		w.seat(t, "other@acme.test", w.basic, w.now)
		if err := w.acc.GrantRole(ctx, w.admin, usher.RoleGrant{UserID: coord.ID, Role: usher.RoleSoftwareCoordinator, SubscriptionID: w.std.ID}); err != nil {
			t.Fatal(err)
		}
		actor, err := w.acc.ActorFor(ctx, w.admin.AccountID, coord.ID)
		if err != nil {
			t.Fatal(err)
		}
		r, err := w.use.Report(ctx, actor, usage.ReportFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Rows) != 1 || r.Rows[0].SubscriptionID != w.std.ID || r.Totals.Seats != 1 {
			t.Fatalf("coordinator: got %+v, totals %+v; want only their subscription", r.Rows, r.Totals)
		}
		_, err = w.use.Report(ctx, actor, usage.ReportFilter{SubscriptionID: w.basic.ID})
		if usher.ErrorCode(err) != usher.ENOTFOUND {
			t.Fatalf("coordinator asking for another subscription: got %v, want not found", err)
		}
		var rows int
		err = w.use.EachRow(ctx, actor, usage.ReportFilter{}, func(usage.Report) error { return nil },
			func(usage.ReportRow) error { rows++; return nil })
		if err != nil || rows != 1 {
			t.Fatalf("export as coordinator: got %d rows, %v; want 1", rows, err)
		}

		// A contract manager sees their contract; a secondary admin the account.
		mgr := w.seat(t, "manager@acme.test", w.basic, w.now)
		if err := w.acc.GrantRole(ctx, w.admin, usher.RoleGrant{UserID: mgr.ID, Role: usher.RoleContractManager, SubscriptionID: w.basic.ID}); err != nil {
			t.Fatal(err)
		}
		second := w.seat(t, "second@acme.test", w.basic, w.now)
		if err := w.acc.GrantRole(ctx, w.admin, usher.RoleGrant{UserID: second.ID, Role: usher.RoleSecondaryAdmin}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			user  usher.User
			seats int
		}{{mgr, 3}, {second, 4}} {
			a, err := w.acc.ActorFor(ctx, w.admin.AccountID, c.user.ID)
			if err != nil {
				t.Fatal(err)
			}
			r, err := w.use.Report(ctx, a, usage.ReportFilter{})
			if err != nil || r.Totals.Seats != c.seats {
				t.Errorf("%s: got %+v, %v; want %d seats", c.user.Email, r.Totals, err, c.seats)
			}
		}
	})
}

// People who use the same products every day cost one day row per day and
// one rollup write per (user, product) per batch, whatever the number of
// events; days already counted cost nothing.
func TestIngestWritesRollupsOnlyWhenTheyChange(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		for _, e := range []string{"ada@acme.test", "bob@acme.test"} {
			w.seat(t, e, w.std, w.now)
		}
		w.now = time.Date(2026, 6, 15, 20, 0, 0, 0, w.nyc)
		body := func(fromDay, days int) string {
			var lines []string
			for _, u := range []string{"ada", "bob"} {
				for d := fromDay; d < fromDay+days; d++ {
					for h := 8; h < 18; h++ { // ten events a day
						lines = append(lines, fmt.Sprintf(`{"user":"%s@acme.test","product":"draftpro","at":"2026-06-%02dT%02d:00:00-04:00"}`, u, d, h))
					}
				}
			}
			return strings.Join(lines, "\n")
		}
		stats := w.use.Stats()
		res := w.ingest(t, usage.FormatNDJSON, body(1, 10))
		if res.Accepted != 200 || stats.DayWrites.Load() != 20 || stats.RollupWrites.Load() != 2 {
			t.Fatalf("first: %d accepted, %d day writes, %d rollup writes; want 200, 20, 2",
				res.Accepted, stats.DayWrites.Load(), stats.RollupWrites.Load())
		}
		// Later events of days already counted: stored, but no day or rollup write.
		late := strings.ReplaceAll(body(1, 10), ":00:00-04:00", ":30:00-04:00")
		res = w.ingest(t, usage.FormatNDJSON, late)
		if res.Accepted != 200 || stats.DayWrites.Load() != 20 || stats.RollupWrites.Load() != 2 {
			t.Fatalf("same days: %d accepted, %d day writes, %d rollup writes; want 200 and no more writes",
				res.Accepted, stats.DayWrites.Load(), stats.RollupWrites.Load())
		}
		// One new day: one day row and one rollup write per person.
		w.ingest(t, usage.FormatNDJSON, body(11, 1))
		if stats.DayWrites.Load() != 22 || stats.RollupWrites.Load() != 4 {
			t.Fatalf("new day: %d day writes, %d rollup writes; want 22 and 4", stats.DayWrites.Load(), stats.RollupWrites.Load())
		}
		r := w.report(t, usage.ReportFilter{Range: usage.Range30d, Sort: "email"})
		if len(r.Rows) != 2 || r.Rows[0].DaysUsed != 11 || r.Rows[0].LastUsed.String() != "2026-06-11" {
			t.Fatalf("report: got %+v", r.Rows)
		}
	})
}

// BenchmarkIngest measures ingesting NDJSON of 100 people using one product
// ten times a day, 5,000 events per iteration, and reports events per second
// and day and rollup writes per event.
func BenchmarkIngest(b *testing.B) {
	for _, engine := range storetest.Engines {
		b.Run(engine, func(b *testing.B) {
			db := storetest.Open(b, engine)
			ctx := context.Background()
			nyc, _ := time.LoadLocation("America/New_York")
			now := time.Date(2026, 6, 15, 12, 0, 0, 0, nyc)
			clock := func() time.Time { return now }
			acc := access.New(db.Access(), clock)
			use := usage.New(db.Usage(), usage.Config{Now: clock})
			_, _, token, err := acc.CreateAccount(ctx, access.NewAccount{Name: "Acme", AdminEmail: "admin@acme.test", TimeZone: "America/New_York"})
			if err != nil {
				b.Fatal(err)
			}
			admin, err := acc.Authenticate(ctx, token)
			if err != nil {
				b.Fatal(err)
			}
			for i := range 100 {
				email := fmt.Sprintf("user%03d@acme.test", i)
				if _, err := acc.CreateUser(ctx, admin, access.UserInput{Email: &email}); err != nil {
					b.Fatal(err)
				}
			}
			start := now.Add(-300 * 24 * time.Hour)
			bodies := make([]string, b.N)
			for n := range b.N {
				var sb strings.Builder
				for e := range 5000 {
					k := n*5000 + e
					// Ten events per person and day, so days repeat across batches.
					at := start.Add(time.Duration(k/1000)*24*time.Hour + time.Duration(k%1000)*time.Second)
					fmt.Fprintf(&sb, `{"user":"user%03d@acme.test","product":"draftpro","at":%q}`+"\n", k%100, at.Format(time.RFC3339))
				}
				bodies[n] = sb.String()
			}
			b.ResetTimer()
			for n := range b.N {
				res, err := use.Ingest(ctx, admin, usage.Decode(strings.NewReader(bodies[n]), usage.FormatNDJSON))
				if err != nil || res.Accepted != 5000 {
					b.Fatalf("got %+v, %v", res, err)
				}
			}
			b.StopTimer()
			st := use.Stats()
			events := float64(st.EventsAccepted.Load())
			b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(st.DayWrites.Load())/events, "day-writes/event")
			b.ReportMetric(float64(st.RollupWrites.Load())/events, "rollup-writes/event")
		})
	}
}

func TestIngestCutsLongReasons(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		long := strings.Repeat("é", 5000) + "@acme.test"
		res := w.ingest(t, usage.FormatCSV, "user,product,at\n"+long+",draftpro,2025-01-01T10:00:00Z\n")
		if res.Rejected != 1 {
			t.Fatalf("got %+v, want one rejection", res)
		}
		reason := res.Rejections[0].Reason
		if len(reason) > 300+len("…") || !strings.HasPrefix(reason, `user "éé`) || !strings.HasSuffix(reason, "…") || !utf8.ValidString(reason) {
			t.Fatalf("reason of %d bytes: %q…, want at most 300 bytes of valid UTF-8 ending in …", len(reason), reason[:20])
		}
	})
}

// Replicas may receive the same events at once: every event is stored once,
// every day counted once, and no ingest fails (no deadlock on PostgreSQL).
func TestConcurrentIngestOfTheSameEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		for i := range 5 {
			w.seat(t, fmt.Sprintf("user%d@acme.test", i), w.std, w.now)
		}
		w.now = time.Date(2026, 6, 15, 12, 0, 0, 0, w.nyc)
		var lines []string
		for d := 1; d <= 10; d++ {
			for i := range 5 {
				for h := 9; h < 12; h++ {
					lines = append(lines, fmt.Sprintf(`{"user":"user%d@acme.test","product":"draftpro","at":"2026-06-%02dT%02d:00:00Z"}`, i, d, h))
				}
			}
		}
		const senders = 4
		results := make([]usage.IngestResult, senders)
		errs := make([]error, senders)
		var wg sync.WaitGroup
		for s := range senders {
			wg.Go(func() {
				// Each sender sends the events in another order.
				mine := slices.Clone(lines)
				if s%2 == 1 {
					slices.Reverse(mine)
				}
				results[s], errs[s] = w.use.Ingest(context.Background(), w.admin,
					usage.Decode(strings.NewReader(strings.Join(mine, "\n")), usage.FormatNDJSON))
			})
		}
		wg.Wait()
		accepted, dupes := 0, 0
		for s := range senders {
			if errs[s] != nil {
				t.Fatalf("sender %d: %v", s, errs[s])
			}
			accepted += results[s].Accepted
			dupes += results[s].Duplicates
		}
		if accepted != len(lines) || dupes != (senders-1)*len(lines) {
			t.Fatalf("accepted %d, duplicates %d; want %d and %d", accepted, dupes, len(lines), (senders-1)*len(lines))
		}
		if got := w.use.Stats().DayWrites.Load(); got != 50 {
			t.Fatalf("day writes: got %d, want 50", got)
		}
		r := w.report(t, usage.ReportFilter{Range: usage.Range30d})
		for _, row := range r.Rows {
			if row.DaysUsed != 10 {
				t.Errorf("%s: %d days used, want 10", row.Email, row.DaysUsed)
			}
		}
	})
}

// In Havana the clocks skip from 23:59:59 on March 8, 2025 to 01:00 on
// March 9: a seat assigned at 23:30 that evening was assigned before a
// cutoff of March 9, in the rows and in the status filter alike.
func TestReportCutoffWhereMidnightIsSkipped(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorldIn(t, db, "America/Havana")
		havana := w.nyc
		w.seat(t, "evening@acme.test", w.std, time.Date(2025, 3, 8, 23, 30, 0, 0, havana))
		w.seat(t, "morning@acme.test", w.std, time.Date(2025, 3, 9, 1, 0, 30, 0, havana))
		w.now = time.Date(2025, 4, 8, 12, 0, 0, 0, havana)
		r := w.report(t, usage.ReportFilter{Range: usage.Range30d})
		got := statusByEmail(r)
		if r.Cutoff.String() != "2025-03-09" || got["evening@acme.test/draftpro"] != usage.StatusInactive || got["morning@acme.test/draftpro"] != usage.StatusActive {
			t.Fatalf("cutoff %s, statuses %v; want 2025-03-09, evening inactive, morning active", r.Cutoff, got)
		}
		inactive := w.report(t, usage.ReportFilter{Range: usage.Range30d, Status: "inactive"})
		if len(inactive.Rows) != 1 || inactive.Rows[0].Email != "evening@acme.test" || inactive.Totals.InactiveSeats != 1 {
			t.Fatalf("status=inactive: got %+v, totals %+v; want the evening seat only", inactive.Rows, inactive.Totals)
		}
	})
}

// A batch of new events and events stored before stores the new ones only,
// with their days and the seat's last use, whichever way storage writes it.
func TestIngestOfPartlyStoredEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		w.seat(t, "ada@acme.test", w.std, w.now)
		w.seat(t, "bob@acme.test", w.std, w.now)
		w.now = time.Date(2026, 6, 15, 12, 0, 0, 0, w.nyc)
		line := func(user string, day, hour int) string {
			return fmt.Sprintf(`{"user":"%s","product":"draftpro","at":"2026-06-%02dT%02d:00:00Z"}`, user, day, hour)
		}
		first := []string{line("ada@acme.test", 1, 10), line("ada@acme.test", 1, 11), line("bob@acme.test", 2, 10)}
		if res := w.ingest(t, usage.FormatNDJSON, strings.Join(first, "\n")); res.Accepted != 3 {
			t.Fatalf("first: %+v, want 3 accepted", res)
		}
		second := append([]string{line("ada@acme.test", 3, 10), line("bob@acme.test", 2, 12)}, first...)
		res := w.ingest(t, usage.FormatNDJSON, strings.Join(second, "\n"))
		if res.Accepted != 2 || res.Duplicates != 3 || res.Rejected != 0 {
			t.Fatalf("second: %+v, want 2 accepted, 3 duplicates", res)
		}
		if got := w.use.Stats().DayWrites.Load(); got != 3 {
			t.Fatalf("day writes: %d, want 3 (ada June 1 and 3, bob June 2)", got)
		}
		r := w.report(t, usage.ReportFilter{Range: usage.Range30d, Sort: "email"})
		if len(r.Rows) != 2 || r.Rows[0].DaysUsed != 2 || r.Rows[0].LastUsed.String() != "2026-06-03" ||
			r.Rows[1].DaysUsed != 1 || r.Rows[1].LastUsed.String() != "2026-06-02" {
			t.Fatalf("rows: %+v", r.Rows)
		}
	})
}

// A user deleted while their events come in: events of the batches after
// the deletion are refused, though the ingest had looked the user up
// before, and no event of theirs stays stored.
func TestIngestOfAUserDeletedMeanwhile(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		ada := w.seat(t, "ada@acme.test", w.std, w.now)
		w.seat(t, "bob@acme.test", w.std, w.now)
		w.now = time.Date(2026, 6, 15, 12, 0, 0, 0, w.nyc)
		use := usage.New(db.Usage(), usage.Config{Now: func() time.Time { return w.now }, BatchSize: 1})
		ctx := context.Background()
		ev := func(user string, hour int) usage.Item {
			return usage.Item{Line: hour, Event: usage.Event{User: user, Product: "draftpro", At: time.Date(2026, 6, 1, hour, 0, 0, 0, time.UTC)}}
		}
		items := func(yield func(usage.Item) bool) {
			if !yield(ev("ada@acme.test", 1)) {
				return
			}
			if err := w.acc.DeleteUser(ctx, w.admin, ada.ID); err != nil {
				t.Error(err)
				return
			}
			_ = yield(ev("ada@acme.test", 2)) && yield(ev("bob@acme.test", 3))
		}
		res, err := use.Ingest(ctx, w.admin, items)
		if err != nil {
			t.Fatal(err)
		}
		if res.Accepted != 2 || res.Rejected != 1 || !strings.Contains(res.Rejections[0].Reason, "not a user") || res.Rejections[0].Line != 2 {
			t.Fatalf("got %+v, want ada's first and bob's accepted, ada's second refused", res)
		}
		var n int
		if err := db.SQL().QueryRow("SELECT COUNT(*) FROM usage_events").Scan(&n); err != nil || n != 1 {
			t.Fatalf("%d events stored (%v), want bob's only", n, err)
		}
	})
}
