package scim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/auth"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usher"
	"github.com/usherhq/usher/internal/web"
	"github.com/usherhq/usher/internal/web/scim"
)

var testNow = time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)

// env is a running server (API and SCIM) on a real store, with one account.
type env struct {
	t     *testing.T
	db    *store.DB
	svc   *access.Service
	auth  *auth.Service
	srv   *httptest.Server
	admin usher.Actor
}

func newEnv(t *testing.T, db *store.DB) *env {
	t.Helper()
	e := &env{t: t, db: db, svc: access.New(db.Access(), func() time.Time { return testNow })}
	e.auth = auth.New(db.Auth(), auth.Config{Params: auth.Params{Memory: 64, Time: 1, Threads: 1}, Now: func() time.Time { return testNow }})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e.srv = httptest.NewServer(web.NewHandler(web.Config{Access: e.svc, Logger: log, SCIM: scim.NewHandler(scim.Config{Access: e.svc, Logger: log})}))
	t.Cleanup(e.srv.Close)
	e.admin = e.account("Acme", "admin@acme.test")
	return e
}

func (e *env) account(name, email string) usher.Actor {
	e.t.Helper()
	ctx := context.Background()
	acct, admin, _, err := e.svc.CreateAccount(ctx, access.NewAccount{Name: name, AdminEmail: email, TimeZone: "Europe/Berlin"})
	if err != nil {
		e.t.Fatalf("create account: %v", err)
	}
	a, err := e.svc.ActorFor(ctx, acct.ID, admin.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// scimToken makes a SCIM-scoped token named name for the admin, as the
// admin would to connect their identity provider.
func (e *env) scimToken(a usher.Actor, name string) *client {
	e.t.Helper()
	_, plain, err := e.svc.CreateToken(context.Background(), a, access.TokenInput{Name: name, Scope: usher.ScopeSCIM})
	if err != nil {
		e.t.Fatalf("SCIM token: %v", err)
	}
	return e.client(plain)
}

func (e *env) client(token string) *client {
	return &client{t: e.t, base: e.srv.URL, token: token, http: e.srv.Client()}
}

// subscription records a contract of seats seats of DraftPro.
func (e *env) subscription(number string, seats int) usher.Subscription {
	e.t.Helper()
	no := false
	sub, err := e.svc.CreateSubscription(context.Background(), e.admin, access.NewSubscription{
		Product: "draftpro", Plan: usher.PlanStandard, Seats: &seats, ContractNumber: number,
		TermStart: usher.Date{Time: testNow.AddDate(0, -1, 0)}, TermEnd: usher.Date{Time: testNow.AddDate(1, 0, 0)},
		Benefits: []string{"web_support"}, ContractManagerID: e.admin.UserID, AssignManagerSeat: &no,
	})
	if err != nil {
		e.t.Fatalf("create subscription: %v", err)
	}
	return sub
}

func (e *env) seatsUsed(id int64) int {
	e.t.Helper()
	sub, err := e.svc.Subscription(context.Background(), e.admin, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return sub.SeatsUsed
}

// audit returns the account's audit entries of action about user, oldest first.
func (e *env) audit(userID int64, action string) []usher.AuditEntry {
	e.t.Helper()
	page, err := e.svc.AuditLog(context.Background(), e.admin, userID, action, "", access.MaxLimit)
	if err != nil {
		e.t.Fatal(err)
	}
	out := page.Items
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

type client struct {
	t     *testing.T
	base  string
	token string
	http  *http.Client
}

type response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

// do sends body (a JSON string) as application/scim+json.
func (c *client) do(method, path, body string) *response {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := &response{Status: res.StatusCode, Header: res.Header, Raw: string(b)}
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &out.Body); err != nil {
			c.t.Fatalf("%s %s: answer is not a JSON object: %v\n%s", method, path, err, b)
		}
	}
	return out
}

// must sends a request and fails the test unless the status is want.
func (c *client) must(want int, method, path, body string) *response {
	c.t.Helper()
	r := c.do(method, path, body)
	if r.Status != want {
		c.t.Fatalf("%s %s: status %d, want %d\n%s", method, path, r.Status, want, r.Raw)
	}
	if r.Status != http.StatusNoContent && r.Header.Get("Content-Type") != scim.ContentType {
		c.t.Fatalf("%s %s: Content-Type %q, want %q", method, path, r.Header.Get("Content-Type"), scim.ContentType)
	}
	return r
}

// filter is the path of a list of Users with the filter.
func filter(f string) string { return "/scim/v2/Users?filter=" + url.QueryEscape(f) }

func str(v any) string { s, _ := v.(string); return s }

func id(t *testing.T, r *response) int64 {
	t.Helper()
	n, err := strconv.ParseInt(str(r.Body["id"]), 10, 64)
	if err != nil {
		t.Fatalf("id %v: %v", r.Body["id"], err)
	}
	return n
}

func total(t *testing.T, r *response) int {
	t.Helper()
	n, ok := r.Body["totalResults"].(float64)
	if !ok {
		t.Fatalf("no totalResults in %s", r.Raw)
	}
	return int(n)
}

// wantError checks a SCIM error body (RFC 7644 §3.12).
func wantError(t *testing.T, r *response, status int, scimType string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d\n%s", r.Status, status, r.Raw)
	}
	if r.Header.Get("Content-Type") != scim.ContentType {
		t.Errorf("Content-Type %q, want %q", r.Header.Get("Content-Type"), scim.ContentType)
	}
	schemas, _ := r.Body["schemas"].([]any)
	if len(schemas) != 1 || schemas[0] != "urn:ietf:params:scim:api:messages:2.0:Error" {
		t.Errorf("schemas %v, want the Error message", r.Body["schemas"])
	}
	if r.Body["status"] != strconv.Itoa(status) {
		t.Errorf("status in body %#v, want the string %q", r.Body["status"], strconv.Itoa(status))
	}
	if got := str(r.Body["scimType"]); got != scimType {
		t.Errorf("scimType %q, want %q", got, scimType)
	}
}
