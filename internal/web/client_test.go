package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usher"
	"github.com/usherhq/usher/internal/web"
)

var testNow = time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)

// env is a running API server on a real store, with one account whose
// primary admin is admin.
type env struct {
	t      *testing.T
	svc    *access.Service
	srv    *httptest.Server
	health atomic.Pointer[func(context.Context) error] // the health check; unset = healthy
	admin  *client
	adminU usher.User
}

func newEnv(t *testing.T, db *store.DB) *env {
	t.Helper()
	e := &env{t: t, svc: access.New(db.Access(), func() time.Time { return testNow })}
	h := web.NewHandler(web.Config{
		Access: e.svc,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Health: func(ctx context.Context) error {
			if f := e.health.Load(); f != nil {
				return (*f)(ctx)
			}
			return nil
		},
	})
	e.srv = newTestServer(t, h) // checks every exchange against docs/openapi.yaml
	e.admin, e.adminU = e.account("Acme", "admin@acme.test")
	return e
}

// account creates an account and returns a client for its primary admin.
func (e *env) account(name, email string) (*client, usher.User) {
	e.t.Helper()
	_, admin, token, err := e.svc.CreateAccount(context.Background(), access.NewAccount{Name: name, AdminEmail: email, TimeZone: "Europe/Berlin"})
	if err != nil {
		e.t.Fatalf("create account %s: %v", name, err)
	}
	return e.client(token), admin
}

func (e *env) client(token string) *client {
	return &client{t: e.t, base: e.srv.URL, token: token, http: e.srv.Client()}
}

// tokenFor makes an API token for an existing user, as they would themselves.
func (e *env) tokenFor(accountID, userID int64, scope usher.TokenScope) *client {
	e.t.Helper()
	a, err := e.svc.ActorFor(context.Background(), accountID, userID)
	if err != nil {
		e.t.Fatalf("actor for user %d: %v", userID, err)
	}
	_, plain, err := e.svc.CreateToken(context.Background(), a, access.TokenInput{Name: "test", Scope: scope})
	if err != nil {
		e.t.Fatalf("token for user %d: %v", userID, err)
	}
	return e.client(plain)
}

// client is a tiny API client, as a script would use the API.
type client struct {
	t     *testing.T
	base  string
	token string
	http  *http.Client
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// raw is a request body sent as is.
type raw string

// do sends a request. body is nil (no body), raw (sent as is) or a value
// marshalled to JSON. header holds name, value pairs that override defaults.
func (c *client) do(method, path string, body any, header ...string) *response {
	c.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case raw:
		rd, ct = strings.NewReader(string(b)), "application/json"
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			c.t.Fatalf("marshal request: %v", err)
		}
		rd, ct = bytes.NewReader(buf), "application/json"
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatalf("new request: %v", err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// ok sends a request that must answer status and decodes the answer into out.
func (c *client) ok(status int, method, path string, body, out any) *response {
	c.t.Helper()
	r := c.do(method, path, body)
	if r.Status != status {
		c.t.Fatalf("%s %s: got %d %s, want %d", method, path, r.Status, r.Body, status)
	}
	if out != nil {
		if err := json.Unmarshal(r.Body, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, r.Body, err)
		}
	}
	return r
}

// problem is an RFC 9457 body as the API writes it.
type problem struct {
	Type   string             `json:"type"`
	Title  string             `json:"title"`
	Status int                `json:"status"`
	Detail string             `json:"detail"`
	Code   string             `json:"code"`
	Errors []usher.FieldError `json:"errors"`
}

// fail sends a request that must answer status with a problem of code and,
// when fields are given, exactly those errors[].field in that order.
func (c *client) fail(status int, code string, method, path string, body any, fields ...string) problem {
	c.t.Helper()
	r := c.do(method, path, body)
	return r.problem(c.t, status, code, fields...)
}

func (r *response) problem(t *testing.T, status int, code string, fields ...string) problem {
	t.Helper()
	if r.Status != status {
		t.Fatalf("got status %d %s, want %d", r.Status, r.Body, status)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type: got %q, want application/problem+json", ct)
	}
	var p problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("decode problem %s: %v", r.Body, err)
	}
	if p.Code != code || p.Status != status || p.Title == "" || p.Type == "" {
		t.Fatalf("problem: got %+v, want code %q status %d with title and type", p, code, status)
	}
	if fields != nil {
		got := make([]string, len(p.Errors))
		for i, f := range p.Errors {
			got[i] = f.Field
			if f.Reason == "" {
				t.Fatalf("errors[%d] has no reason: %s", i, r.Body)
			}
		}
		if strings.Join(got, ",") != strings.Join(fields, ",") {
			t.Fatalf("errors[].field: got %v, want %v (%s)", got, fields, r.Body)
		}
	}
	return p
}

// API shapes the tests read.
type (
	userJSON struct {
		ID     int64             `json:"id"`
		Email  string            `json:"email"`
		Name   string            `json:"name"`
		Status string            `json:"status"`
		Roles  []usher.RoleGrant `json:"roles"`
	}
	userPage struct {
		Items      []userJSON `json:"items"`
		NextCursor string     `json:"next_cursor"`
	}
	subJSON struct {
		ID      int64 `json:"id"`
		Product struct {
			Code string `json:"code"`
		} `json:"product"`
		Plan           string   `json:"plan"`
		Seats          int      `json:"seats"`
		SeatsUsed      int      `json:"seats_used"`
		SeatsAvailable int      `json:"seats_available"`
		ContractNumber string   `json:"contract_number"`
		Benefits       []string `json:"benefits"`
	}
	accessJSON struct {
		User          userJSON `json:"user"`
		Subscriptions []struct {
			Subscription subJSON  `json:"subscription"`
			Assigned     bool     `json:"assigned"`
			Services     []string `json:"services"`
			Benefits     []string `json:"benefits"`
			Editable     bool     `json:"editable"`
		} `json:"subscriptions"`
	}
	auditPage struct {
		Items []usher.AuditEntry `json:"items"`
	}
)

func (c *client) createUser(email string) userJSON {
	c.t.Helper()
	var u userJSON
	c.ok(http.StatusCreated, "POST", "/api/v1/users", map[string]any{"email": email}, &u)
	return u
}

func (c *client) createSubscription(number, product string, seats int, managerID int64, benefits ...string) subJSON {
	c.t.Helper()
	var s subJSON
	c.ok(http.StatusCreated, "POST", "/api/v1/subscriptions", map[string]any{
		"product": product, "plan": "standard", "seats": seats, "contract_number": number,
		"term_start": "2026-01-01", "term_end": "2027-01-01", "benefits": orEmpty(benefits), "contract_manager_id": managerID,
	}, &s)
	return s
}

func (c *client) subscription(id int64) subJSON {
	c.t.Helper()
	var s subJSON
	c.ok(http.StatusOK, "GET", "/api/v1/subscriptions/"+itoa(id), nil, &s)
	return s
}

func (c *client) access(userID int64) accessJSON {
	c.t.Helper()
	var a accessJSON
	c.ok(http.StatusOK, "GET", "/api/v1/users/"+itoa(userID)+"/access", nil, &a)
	return a
}

// seat returns whether the user holds a seat of sub, with its services and benefits.
func (a accessJSON) seat(subID int64) (assigned bool, services, benefits []string) {
	for _, e := range a.Subscriptions {
		if e.Subscription.ID == subID {
			return e.Assigned, e.Services, e.Benefits
		}
	}
	return false, nil, nil
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
