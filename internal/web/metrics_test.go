package web_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/web"
)

func TestMetricsCountRequestsByRoutePattern(t *testing.T) {
	e := newEnv(t, storetest.Open(t, store.SQLite))
	e.admin.ok(http.StatusOK, "GET", "/api/v1/users/"+itoa(e.adminU.ID), nil, nil)
	e.admin.ok(http.StatusOK, "GET", "/api/v1/users/"+itoa(e.adminU.ID), nil, nil)
	e.admin.fail(http.StatusNotFound, "not_found", "GET", "/api/v1/users/999999", nil)
	e.client("").ok(http.StatusOK, "GET", "/healthz", nil, nil)

	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status: got %d, want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("content type: got %q", ct)
	}
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	for _, want := range []string{
		`usher_http_requests_total{route="GET /api/v1/users/{id}",code="200"} 2`,
		`usher_http_requests_total{route="GET /api/v1/users/{id}",code="404"} 1`,
		`usher_http_requests_total{route="GET /healthz",code="200"} 1`,
		`usher_http_request_duration_seconds_count{route="GET /api/v1/users/{id}"} 3`,
		`usher_http_request_duration_seconds_bucket{route="GET /api/v1/users/{id}",le="+Inf"} 3`,
		"# TYPE usher_goroutines gauge",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q; got:\n%s", want, body)
		}
	}
	// Raw paths never become series: one per pattern, whatever the ids.
	if strings.Contains(body, "/999999") {
		t.Errorf("metrics name a raw path:\n%s", body)
	}
}

// metricsEnv is a server with every metrics source, on one SQLite store.
func metricsEnv(t *testing.T, cfg web.Config) (*env, string) {
	t.Helper()
	db := storetest.Open(t, store.SQLite)
	clock := func() time.Time { return testNow }
	e := &env{t: t, svc: access.New(db.Access(), clock)}
	use := usage.New(db.Usage(), usage.Config{Now: clock})
	cfg.Access, cfg.Usage, cfg.Logger = e.svc, use, slog.New(slog.DiscardHandler)
	cfg.Notify = notify.New(db.Notify(), nil, use, notify.Config{Now: clock, Logger: cfg.Logger})
	cfg.Pools = db.PoolStats
	cfg.Seats = func() (int64, int64) { return db.Stats().SeatsAssigned.Load(), db.Stats().SeatsUnassigned.Load() }
	e.srv = httptest.NewServer(web.NewHandler(cfg))
	t.Cleanup(e.srv.Close)
	e.admin, e.adminU = e.account("Acme", "admin@acme.test")
	return e, e.srv.URL
}

func scrape(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestMetricsCountIngestSeatsAndBacklog(t *testing.T) {
	e, base := metricsEnv(t, web.Config{})
	sub := e.admin.createSubscription("STD-1", "draftpro", 5, e.adminU.ID) // seats the manager
	e.admin.ok(http.StatusOK, "POST", "/api/v1/unassign", map[string]any{"items": []map[string]any{{"user_id": e.adminU.ID, "subscription_id": sub.ID}}}, nil)
	at := testNow.Add(-time.Hour).Format(time.RFC3339)
	body := fmt.Sprintf(`[{"user":"admin@acme.test","product":"draftpro","at":%q},{"user":"admin@acme.test","product":"draftpro","at":%q},{"user":"admin@acme.test","product":"nosuch","at":%q}]`, at, at, at)
	req, _ := http.NewRequest("POST", base+"/api/v1/usage-events", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.admin.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("ingest: %v %v", resp, err)
	}
	resp.Body.Close()

	code, got := scrape(t, base+"/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("metrics: %d", code)
	}
	for _, want := range []string{
		`usher_usage_events_total{outcome="accepted"} 1`,
		`usher_usage_events_total{outcome="duplicate"} 1`,
		`usher_usage_events_total{outcome="rejected"} 1`,
		`usher_seat_changes_total{change="assigned"} 1`,
		`usher_seat_changes_total{change="unassigned"} 1`,
		`usher_emails_total{kind="notification",outcome="sent"} 0`,
		`usher_emails_total{kind="notification",outcome="failed"} 0`,
		`usher_notification_runs{state="due"} 0`,
		`usher_scheduler_lag_seconds 0`,
		`usher_db_connections_max{pool="writer"} 1`,
		`usher_db_connections{pool="reader",state="in_use"}`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("metrics lack %q; got:\n%s", want, got)
		}
	}
}

func TestMetricsToken(t *testing.T) {
	_, base := metricsEnv(t, web.Config{MetricsToken: "s3cret"})
	if code, _ := scrape(t, base+"/metrics", ""); code != http.StatusUnauthorized {
		t.Fatalf("without the token: %d, want 401", code)
	}
	if code, _ := scrape(t, base+"/metrics", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("with a wrong token: %d, want 401", code)
	}
	if code, body := scrape(t, base+"/metrics", "s3cret"); code != http.StatusOK || !strings.Contains(body, "usher_usage_events_total") {
		t.Fatalf("with the token: %d %s", code, body)
	}
}

func TestMetricsElsewhere(t *testing.T) {
	m := web.NewMetrics()
	_, base := metricsEnv(t, web.Config{Metrics: m, MetricsElsewhere: true})
	if code, _ := scrape(t, base+"/metrics", ""); code != http.StatusNotFound {
		t.Fatalf("public /metrics: %d, want 404", code)
	}
	scrape(t, base+"/healthz", "")
	other := httptest.NewServer(web.MetricsHandler(web.Config{Metrics: m}))
	defer other.Close()
	code, body := scrape(t, other.URL+"/metrics", "")
	if code != http.StatusOK || !strings.Contains(body, `usher_http_requests_total{route="GET /healthz",code="200"} 1`) {
		t.Fatalf("metrics listener: %d %s", code, body)
	}
}

func TestReadyz(t *testing.T) {
	var state atomic.Pointer[error]
	_, base := metricsEnv(t, web.Config{Ready: func(context.Context) error {
		if p := state.Load(); p != nil {
			return *p
		}
		return nil
	}})
	for _, c := range []struct {
		name string
		err  error
		code int
		body string
	}{
		{"Ready", nil, 200, `"ok"`},
		{"NotMigrated", errors.New("migrations not applied"), 503, `"unavailable"`},
		{"Stopping", fmt.Errorf("drain: %w", web.ErrStopping), 503, `"stopping"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			state.Store(&c.err)
			code, body := scrape(t, base+"/readyz", "")
			if code != c.code || !strings.Contains(body, c.body) {
				t.Fatalf("got %d %s, want %d %s", code, body, c.code, c.body)
			}
			// /healthz stays a liveness check.
			if code, _ := scrape(t, base+"/healthz", ""); code != http.StatusOK {
				t.Fatalf("healthz: %d", code)
			}
		})
	}
}

func TestRequestIDs(t *testing.T) {
	_, base := metricsEnv(t, web.Config{})
	get := func(id string) string {
		req, _ := http.NewRequest("GET", base+"/healthz", nil)
		if id != "" {
			req.Header.Set("X-Request-Id", id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("X-Request-Id")
	}
	a, b := get(""), get("")
	if len(a) != 24 || a == b {
		t.Fatalf("made-up ids %q and %q: want 24 hex characters, distinct", a, b)
	}
	if got := get("edge-1234.abc"); got != "edge-1234.abc" {
		t.Fatalf("a proxy's id: got %q, want it kept", got)
	}
	if got := get("bad id\"x"); got == "bad id\"x" || len(got) != 24 {
		t.Fatalf("an unsafe id: got %q, want a new one", got)
	}
}
