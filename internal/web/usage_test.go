package web_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
	"github.com/usherhq/usher/internal/web"
)

// usageEnv is env with the usage endpoints, a standard and a basic
// subscription, and users holding seats of them.
type usageEnv struct {
	*env
	use   *usage.Service
	std   subJSON
	basic subJSON
}

func newUsageEnv(t *testing.T, db *store.DB, maxIngestBody int64) *usageEnv {
	t.Helper()
	clock := func() time.Time { return testNow }
	e := &env{t: t, svc: access.New(db.Access(), clock)}
	u := &usageEnv{env: e, use: usage.New(db.Usage(), usage.Config{Now: clock})}
	e.srv = newTestServer(t, web.NewHandler(web.Config{
		Access:        e.svc,
		Usage:         u.use,
		MaxIngestBody: maxIngestBody,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}))
	e.admin, e.adminU = e.account("Acme", "admin@acme.test")
	u.std = e.admin.createSubscription("STD-1", "draftpro", 10, e.adminU.ID)
	var basic subJSON
	e.admin.ok(http.StatusCreated, "POST", "/api/v1/subscriptions", map[string]any{
		"product": "modelstudio", "plan": "basic", "seats": 10, "contract_number": "BAS-1",
		"term_start": "2026-01-01", "term_end": "2027-01-01", "benefits": []string{}, "contract_manager_id": e.adminU.ID,
	}, &basic)
	u.basic = basic
	return u
}

// seat creates the user and gives them a seat of each of subs.
func (u *usageEnv) seat(email string, subs ...subJSON) userJSON {
	u.t.Helper()
	usr := u.admin.createUser(email)
	var items []map[string]any
	for _, sub := range subs {
		items = append(items, map[string]any{"subscription_id": sub.ID, "assigned": true})
	}
	u.admin.ok(http.StatusOK, "PUT", "/api/v1/users/"+itoa(usr.ID)+"/access", map[string]any{"subscriptions": items}, nil)
	return usr
}

func (c *client) ingest(contentType, body string) (*response, usage.IngestResult) {
	c.t.Helper()
	r := c.do("POST", "/api/v1/usage-events", raw(body), "Content-Type", contentType)
	var res usage.IngestResult
	if r.Status == http.StatusOK {
		if err := json.Unmarshal(r.Body, &res); err != nil {
			c.t.Fatalf("decode %s: %v", r.Body, err)
		}
	}
	return r, res
}

func TestUsageIngestAsANewUserWould(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		u := newUsageEnv(t, db, 0)
		u.seat("ada@acme.test", u.std)
		c := u.admin
		csvBody := "user,product,at\n" +
			"ada@acme.test,draftpro,2026-03-14T09:00:00Z\n" +
			"ada@acme.test,draftpro,\"2026-03-14T10:00:00Z\n" + // an unclosed quote
			"ada@acme.test,draftpro,2026-03-13T09:00:00+01:00\n" +
			"nobody@acme.test,draftpro,2026-03-14T09:00:00Z\n" +
			"ada@acme.test,draftpro,2016-03-14T09:00:00Z\n" +
			"ada@acme.test,draftpro,2026-03-16T09:00:00Z\n"

		t.Run("CSVGetsAPerLineAnswer", func(t *testing.T) {
			r, res := c.ingest("text/csv", csvBody)
			if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("got %d %s %s", r.Status, r.Header.Get("Content-Type"), r.Body)
			}
			want := []struct {
				line int
				says string
			}{{3, "not closed"}, {5, "not a user"}, {6, "older than the retention"}, {7, "in the future"}}
			if res.Accepted != 2 || res.Duplicates != 0 || res.Rejected != len(want) || len(res.Rejections) != len(want) {
				t.Fatalf("got %+v, want lines 2 and 4 accepted, 4 rejected", res)
			}
			for i, w := range want {
				if got := res.Rejections[i]; got.Line != w.line || !strings.Contains(got.Reason, w.says) {
					t.Errorf("rejection %d: got line %d %q, want line %d saying %q", i, got.Line, got.Reason, w.line, w.says)
				}
			}
			// The same body again changes nothing.
			_, again := c.ingest("text/csv", csvBody)
			if again.Accepted != 0 || again.Duplicates != 2 || again.Rejected != 4 {
				t.Fatalf("re-send: got %+v, want 2 duplicates and nothing accepted", again)
			}
		})
		t.Run("NDJSONAndJSONArray", func(t *testing.T) {
			_, res := c.ingest("application/x-ndjson", `{"user":"ada@acme.test","product":"draftpro","at":"2026-03-12T09:00:00Z"}`+"\n\n"+
				`{"user":"ada@acme.test","product":"nope","at":"2026-03-12T09:00:00Z"}`+"\n"+`{"user":`+"\n")
			if res.Accepted != 1 || res.Rejected != 2 || res.Rejections[0].Line != 3 || res.Rejections[1].Line != 4 {
				t.Fatalf("ndjson: got %+v", res)
			}
			_, res = c.ingest("application/json", `[{"user":"ada@acme.test","product":"draftpro","at":"2026-03-11T09:00:00Z"},
				{"user":"ada@acme.test","product":"draftpro","at":"yesterday"}]`)
			if res.Accepted != 1 || res.Rejected != 1 || res.Rejections[0].Line != 2 || !strings.Contains(res.Rejections[0].Reason, "RFC 3339") {
				t.Fatalf("json: got %+v", res)
			}
		})
		t.Run("WrongContentTypeIs415", func(t *testing.T) {
			for _, ct := range []string{"text/plain", "application/xml", "", "text/csv; charset=latin1"} {
				r, _ := c.ingest(ct, "user,product,at\n")
				p := r.problem(t, http.StatusUnsupportedMediaType, usher.EUNSUPPORTED)
				if !strings.Contains(p.Detail, "text/csv") && !strings.Contains(p.Detail, "UTF-8") {
					t.Errorf("%q: detail %q does not say what to send", ct, p.Detail)
				}
			}
		})
		t.Run("CompressedBodyIs415", func(t *testing.T) {
			r := c.do("POST", "/api/v1/usage-events", raw("\x1f\x8b..."), "Content-Type", "text/csv", "Content-Encoding", "gzip")
			if p := r.problem(t, http.StatusUnsupportedMediaType, usher.EUNSUPPORTED); !strings.Contains(p.Detail, "gzip") {
				t.Errorf("detail %q", p.Detail)
			}
		})
		t.Run("EmptyBodyIs400", func(t *testing.T) {
			for _, ct := range []string{"text/csv", "application/x-ndjson", "application/json"} {
				r, _ := c.ingest(ct, "  \n")
				p := r.problem(t, http.StatusBadRequest, "malformed_request")
				if !strings.Contains(p.Detail, "empty") {
					t.Errorf("%s: detail %q", ct, p.Detail)
				}
			}
		})
		t.Run("TheReportCountsEachDayOnce", func(t *testing.T) {
			var rep usage.Report
			c.ok(http.StatusOK, "GET", "/api/v1/reports/usage?q=ada", nil, &rep)
			// March 11, 12, 13 (09:00 Berlin) and 14; Berlin is UTC+1.
			if len(rep.Rows) != 1 || rep.Rows[0].DaysUsed != 4 || rep.Rows[0].LastUsed.String() != "2026-03-14" {
				t.Fatalf("got %+v", rep.Rows)
			}
		})
	})
}

func TestUsageIngestScopeAndPermissions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		u := newUsageEnv(t, db, 0)
		ada := u.seat("ada@acme.test", u.std)
		var tok struct {
			Token string `json:"token"`
		}
		u.admin.ok(http.StatusCreated, "POST", "/api/v1/tokens", map[string]any{"name": "agent", "scope": "ingest"}, &tok)
		ingest := u.client(tok.Token)
		body := `{"user":"ada@acme.test","product":"draftpro","at":"2026-03-14T09:00:00Z"}`
		if r, res := ingest.ingest("application/x-ndjson", body); r.Status != http.StatusOK || res.Accepted != 1 {
			t.Fatalf("ingest token: got %d %s", r.Status, r.Body)
		}
		ingest.fail(http.StatusForbidden, usher.EFORBIDDEN, "GET", "/api/v1/reports/usage", nil)
		ingest.do("GET", "/api/v1/reports/usage", nil, "Accept", "text/csv").problem(t, http.StatusForbidden, usher.EFORBIDDEN)
		ingest.fail(http.StatusForbidden, usher.EFORBIDDEN, "GET", "/api/v1/users", nil)

		plain := u.tokenFor(u.adminU.AccountID, ada.ID, usher.ScopeFull)
		r, _ := plain.ingest("application/x-ndjson", body)
		r.problem(t, http.StatusForbidden, usher.EFORBIDDEN)
		// A refused sender learns nothing about the body, even an empty one.
		r, _ = plain.ingest("application/x-ndjson", "")
		r.problem(t, http.StatusForbidden, usher.EFORBIDDEN)
		plain.fail(http.StatusForbidden, usher.EFORBIDDEN, "GET", "/api/v1/reports/usage", nil)
		u.client("").fail(http.StatusUnauthorized, usher.EUNAUTHORIZED, "POST", "/api/v1/usage-events", raw("[]"))
	})
}

func TestUsageIngestBodyLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		u := newUsageEnv(t, db, 200)
		u.seat("ada@acme.test", u.std)
		line := func(day int) string {
			return fmt.Sprintf(`{"user":"ada@acme.test","product":"draftpro","at":"2026-03-%02dT09:00:00Z"}`, day) + "\n"
		}
		// Two lines fit in 200 bytes, the third does not.
		_, res := u.admin.ingest("application/x-ndjson", line(1)+line(2)+line(3)+line(4))
		if res.Accepted != 2 || res.Rejected != 1 || !strings.Contains(res.Rejections[0].Reason, "exceeds 200 bytes") {
			t.Fatalf("got %+v", res)
		}
	})
}

// A large upload is read line by line and stored batch by batch: the heap
// stays far below the size of the body, in every format.
func TestUsageIngestStreamsTheBody(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 20 MB per format")
	}
	db := storetest.Open(t, store.SQLite)
	u := newUsageEnv(t, db, 0)
	u.seat("ada@acme.test", u.std)
	const lines, pad = 2000, 10_000 // 2,000 events of about 10 kB each
	padding := strings.Repeat(" ", pad)
	for i, tc := range []struct {
		contentType          string
		head, line, sep, end string
	}{
		{"application/x-ndjson", "", `{"user":"ada@acme.test",%s"product":"draftpro","at":%q}`, "\n", "\n"},
		{"application/json", "[", `{"user":"ada@acme.test",%s"product":"draftpro","at":%q}`, ",\n", "]"},
		{"text/csv", "user,product,at\n", `ada@acme.test,draftpro%s,%s`, "\n", "\n"},
	} {
		t.Run(tc.contentType, func(t *testing.T) {
			// Each format its own days, so every event is new.
			start := testNow.Add(-time.Duration(300-100*i) * 24 * time.Hour)
			pr, pw := io.Pipe()
			go func() {
				_, _ = io.WriteString(pw, tc.head)
				for n := range lines {
					if n > 0 {
						_, _ = io.WriteString(pw, tc.sep)
					}
					at := start.Add(time.Duration(n) * time.Minute).Format(time.RFC3339)
					if _, err := fmt.Fprintf(pw, tc.line, padding, at); err != nil {
						return
					}
				}
				_, _ = io.WriteString(pw, tc.end)
				pw.Close()
			}()
			res, base, peak := ingestMeasured(t, u, tc.contentType, pr)
			if res.Accepted != lines || res.Rejected != 0 {
				t.Fatalf("got %+v, want %d accepted", res, lines)
			}
			body := uint64(lines * pad)
			t.Logf("heap in use: %d MB before, %d MB at the peak, body %d MB", base>>20, peak>>20, body>>20)
			// Loading the body whole would grow the heap by the body or more;
			// streaming leaves garbage that the collector's pacing may let
			// reach a few MB before it runs, so the bound is half the body.
			if grew := peak - min(peak, base); grew > body/2 {
				t.Fatalf("heap grew by %d MB for a %d MB body", grew>>20, body>>20)
			}
		})
	}
}

// ingestMeasured sends body and samples the heap in use while the server
// reads it.
func ingestMeasured(t *testing.T, u *usageEnv, contentType string, body io.Reader) (res usage.IngestResult, base, peak uint64) {
	t.Helper()
	// A tight collector target keeps the garbage of a streamed body small
	// while leaving a body held whole as large as ever, so the bound below
	// tells the two apart even when other tests load the machine.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	var top atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	go func() {
		defer close(done)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > top.Load() {
				top.Store(m.HeapInuse)
			}
		}
	}()
	req, err := http.NewRequest("POST", u.srv.URL+"/api/v1/usage-events", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+u.admin.token)
	resp, err := u.srv.Client().Do(req)
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	return res, m0.HeapInuse, top.Load()
}

func TestUsageReportAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		u := newUsageEnv(t, db, 0)
		c := u.admin
		for _, e := range []string{"bob@acme.test", "cy@acme.test", "=cmd@acme.test"} {
			u.seat(e, u.std)
		}
		u.seat("ada@acme.test", u.std, u.basic)
		// The admin holds a seat of each contract as its manager: seven
		// seats, five users.
		// Seats were assigned at testNow; usage yesterday for Ada only. Seats
		// of the others are new, so active: the report must say so.
		_, res := c.ingest("text/csv", "user,product,at\nada@acme.test,draftpro,2026-03-14T09:00:00Z\n")
		if res.Accepted != 1 {
			t.Fatalf("ingest: %+v", res)
		}

		t.Run("JSONWithTotalsAndPages", func(t *testing.T) {
			var rep usage.Report
			c.ok(http.StatusOK, "GET", "/api/v1/reports/usage?limit=2&sort=email", nil, &rep)
			if len(rep.Rows) != 2 || rep.NextCursor == "" || rep.Totals.Seats != 7 || rep.Totals.Users != 5 || rep.ProcessedAt == nil {
				t.Fatalf("first page: got %+v", rep)
			}
			if rep.Rows[0].Email != "=cmd@acme.test" || rep.Range != usage.Range30d || rep.Today.String() != "2026-03-15" {
				t.Fatalf("first page: got %+v", rep)
			}
			seen := len(rep.Rows)
			for cursor := rep.NextCursor; cursor != ""; {
				var next usage.Report
				c.ok(http.StatusOK, "GET", "/api/v1/reports/usage?limit=2&sort=email&cursor="+cursor, nil, &next)
				seen += len(next.Rows)
				cursor = next.NextCursor
			}
			if seen != 7 {
				t.Fatalf("walked %d rows, want 7", seen)
			}
			var basic usage.Report
			c.ok(http.StatusOK, "GET", "/api/v1/reports/usage?status=unavailable&subscription="+itoa(u.basic.ID), nil, &basic)
			if len(basic.Rows) != 2 || basic.Rows[0].Plan != usher.PlanBasic || basic.Rows[0].StatusNote == "" || basic.Totals.InactiveSeats != 0 {
				t.Fatalf("basic: got %+v", basic)
			}
		})
		t.Run("BadFiltersName422", func(t *testing.T) {
			p := c.fail(http.StatusUnprocessableEntity, usher.EINVALID, "GET",
				"/api/v1/reports/usage?status=asleep&range=2w&sort=age&product=nope&subscription=x&limit=0", nil,
				"limit", "subscription", "status", "range", "sort", "product")
			if !strings.Contains(p.Detail, "30d, 3m, 6m, 9m, 1y") || !strings.Contains(p.Detail, "all, active, inactive, never_used, stopped_using, unavailable") ||
				!strings.Contains(p.Detail, "between 1 and 1000") {
				t.Errorf("detail does not list the allowed values: %s", p.Detail)
			}
			c.fail(http.StatusUnprocessableEntity, usher.EINVALID, "GET", "/api/v1/reports/usage?limit=1001", nil, "limit")
			var big usage.Report
			c.ok(http.StatusOK, "GET", "/api/v1/reports/usage?limit=1000", nil, &big)
			r := c.do("GET", "/api/v1/reports/usage?range=2w", nil, "Accept", "text/csv")
			r.problem(t, http.StatusUnprocessableEntity, usher.EINVALID, "range")
		})
		t.Run("CSVStreamsTheSameFilter", func(t *testing.T) {
			r := c.do("GET", "/api/v1/reports/usage?sort=email&product=draftpro", nil, "Accept", "text/csv")
			if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") ||
				!strings.Contains(r.Header.Get("Content-Disposition"), "usage-report-2026-03-15-30d.csv") ||
				r.Header.Get("Usher-Usage-Processed-At") == "" {
				t.Fatalf("got %d %v", r.Status, r.Header)
			}
			recs, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 6 || strings.Join(recs[0], ",") != "name,email,product,product_name,contract_number,plan,assigned_at,last_used,days_used,monthly_average,status,status_note,source,inactivity,days_inactive,group,unassigned_at,change" {
				t.Fatalf("got %q", recs)
			}
			inactive := c.do("GET", "/api/v1/reports/usage?status=inactive", nil, "Accept", "text/csv")
			if lines := strings.Count(string(inactive.Body), "\n"); inactive.Status != http.StatusOK || lines != 1 {
				t.Fatalf("status=inactive: got %d with %d lines, want the header only", inactive.Status, lines)
			}
			// A cell that a spreadsheet would run as a formula is defused.
			if recs[1][1] != "'=cmd@acme.test" || recs[2][1] != "ada@acme.test" || recs[2][7] != "2026-03-14" || recs[2][8] != "1" || recs[2][10] != "active" || recs[2][12] != "direct" {
				t.Fatalf("rows: got %q", recs[1:3])
			}
		})
	})
}
