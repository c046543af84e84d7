package web_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
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
