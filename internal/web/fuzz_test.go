package web_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
	"github.com/usherhq/usher/internal/web"
)

// FuzzJSONRequests sends any bytes as the body of the API's JSON endpoints
// and of the usage upload, to a real server on SQLite: no answer may be a
// 5xx, and every refusal is a problem+json. go test runs the seeds; for a
// longer run see docs/testing.md ("Fuzzing").
func FuzzJSONRequests(f *testing.F) {
	db := storetest.Open(f, store.SQLite)
	clock := func() time.Time { return testNow }
	svc := access.New(db.Access(), clock)
	ctx := context.Background()
	acct, admin, token, err := svc.CreateAccount(ctx, access.NewAccount{Name: "Acme", AdminEmail: "admin@acme.test", TimeZone: "Europe/Berlin"})
	if err != nil {
		f.Fatal(err)
	}
	seats := 5
	sub, err := svc.CreateSubscription(ctx, usher.System(acct.ID), access.NewSubscription{
		Product: "draftpro", Plan: usher.PlanStandard, Seats: &seats, ContractNumber: "F-1",
		TermStart: usher.Date{Time: testNow.AddDate(0, -1, 0)}, TermEnd: usher.Date{Time: testNow.AddDate(1, 0, 0)}, ContractManagerID: admin.ID,
	})
	if err != nil {
		f.Fatal(err)
	}
	srv := httptest.NewServer(web.NewHandler(web.Config{
		Access: svc, Usage: usage.New(db.Usage(), usage.Config{Now: clock}),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}))
	f.Cleanup(srv.Close)

	type route struct{ method, path, contentType string }
	routes := []route{
		{"POST", "/api/v1/users", "application/json"},
		{"PATCH", "/api/v1/users/" + itoa(admin.ID), "application/json"},
		{"PUT", "/api/v1/users/" + itoa(admin.ID) + "/access", "application/json"},
		{"POST", "/api/v1/users/" + itoa(admin.ID) + "/roles", "application/json"},
		{"POST", "/api/v1/unassign", "application/json"},
		{"POST", "/api/v1/subscriptions", "application/json"},
		{"POST", "/api/v1/tokens", "application/json"},
		{"POST", "/api/v1/usage-events", "application/json"},
		{"POST", "/api/v1/usage-events", "application/x-ndjson"},
		{"POST", "/api/v1/usage-events", "text/csv"},
	}
	id, subID := itoa(admin.ID), itoa(sub.ID)
	for i, body := range []string{
		`{"email":"ada@acme.test","name":"Ada"}`,
		`{"name":"Admin","status":"active"}`,
		`{"subscriptions":[{"subscription_id":` + subID + `,"assigned":true,"services":["rendering"],"benefits":[]}]}`,
		`{"role":"contract_manager","subscription_id":` + subID + `}`,
		`{"items":[{"user_id":` + id + `,"subscription_id":` + subID + `,"services":["x"]}]}`,
		`{"product":"draftpro","plan":"basic","seats":1,"contract_number":"F-2","term_start":"2026-01-01","term_end":"2027-01-01","contract_manager_id":` + id + `}`,
		`{"name":"feed","scope":"ingest"}`,
		`[{"user":"admin@acme.test","product":"draftpro","at":"2026-03-14T09:00:00Z"}]`,
		`{"user":"admin@acme.test","product":"draftpro","at":"2026-03-14T09:00:00Z"}` + "\n{",
		"user,product,at\nadmin@acme.test,draftpro,2026-03-14T09:00:00Z\n\x00",
	} {
		f.Add(uint8(i), []byte(body))
	}
	for _, body := range []string{"", "null", "[]", `{"email":"a@b.c","email":"a@b.c"}`, "{\"name\":\"\xff\"}", `{"name":"\ud800"}`, `{"a":{"b":[1,{"c":"\u0000"}]}}`, "{}{}"} {
		f.Add(uint8(0), []byte(body))
	}

	client := srv.Client()
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		rt := routes[int(which)%len(routes)]
		req, err := http.NewRequest(rt.method, srv.URL+rt.path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", rt.contentType)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s %q: %d %s", rt.method, rt.path, body, resp.StatusCode, got)
		}
		if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%s %s %q: %d with Content-Type %q", rt.method, rt.path, body, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	})
}
