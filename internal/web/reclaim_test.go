package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
	"github.com/usherhq/usher/internal/web"
)

// TestReclaimAPI drives reclaim policies, their preview, the history and
// undo through the API as a script would, each exchange checked against
// docs/openapi.yaml.
func TestReclaimAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		now := testNow
		clock := func() time.Time { return now }
		acc := access.New(db.Access(), clock)
		h := web.NewHandler(web.Config{
			Access:  acc,
			Usage:   usage.New(db.Usage(), usage.Config{Now: clock}),
			Reclaim: reclaim.New(db.Reclaim(), acc, nil, reclaim.Config{Now: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}),
			Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		srv := newTestServer(t, h)
		_, adminU, token, err := acc.CreateAccount(context.Background(), access.NewAccount{Name: "Acme", AdminEmail: "admin@acme.test", TimeZone: "Europe/Berlin"})
		if err != nil {
			t.Fatal(err)
		}
		admin := &client{t: t, base: srv.URL, token: token, http: srv.Client()}
		sub := admin.createSubscription("STD-1", "draftpro", 5, adminU.ID)
		admin.ok(http.StatusOK, "PATCH", "/api/v1/subscriptions/"+itoa(sub.ID), map[string]any{"price_per_seat_year": "600.00", "currency": "EUR"}, nil)
		ada := admin.createUser("ada@acme.test")
		now = testNow.AddDate(0, -3, 0)
		admin.ok(http.StatusOK, "PUT", "/api/v1/users/"+itoa(ada.ID)+"/access", map[string]any{"subscriptions": []map[string]any{
			{"subscription_id": sub.ID, "assigned": true, "services": []string{"cloud_storage"}, "benefits": []string{}}}}, nil)
		now = testNow

		t.Run("ErrInvalidNamesEveryField", func(t *testing.T) {
			admin.fail(http.StatusUnprocessableEntity, usher.EINVALID, "POST", "/api/v1/reclaim-policies",
				map[string]any{"name": "", "scope": map[string]any{"kind": "nope"}, "range": "2w", "mode": "later"},
				"name", "range", "mode", "scope.kind")
		})

		t.Run("ErrUnknownExemptGroup", func(t *testing.T) {
			admin.fail(http.StatusUnprocessableEntity, usher.EINVALID, "POST", "/api/v1/reclaim-policies", map[string]any{
				"name": "Idle", "scope": map[string]any{"kind": "subscriptions", "subscription_ids": []int64{sub.ID}},
				"range": "45d", "mode": "report_only", "exemptions": map[string]any{"groups": []int64{424242}}},
				"exemptions.groups[0]")
		})

		var p reclaim.Policy
		admin.ok(http.StatusCreated, "POST", "/api/v1/reclaim-policies", map[string]any{
			"name": "Idle", "scope": map[string]any{"kind": "subscriptions", "subscription_ids": []int64{sub.ID}},
			"range": "45d", "mode": "report_only", "exemptions": map[string]any{"roles": []string{"contract_manager"}},
		}, &p)
		if p.Range != "45d" || p.GraceDays != reclaim.DefaultGraceDays || !p.NeverUsed.Enabled || p.NextRunAt.IsZero() {
			t.Fatalf("created: %+v", p)
		}
		var plan reclaim.Plan
		admin.ok(http.StatusOK, "GET", "/api/v1/reclaim-policies/"+itoa(p.ID)+"/preview", nil, &plan)
		if plan.Report != 1 || len(plan.Items) != 1 || plan.Items[0].Email != "ada@acme.test" || plan.Items[0].Inactivity != usage.NeverUsed {
			t.Fatalf("preview: %+v", plan)
		}
		admin.ok(http.StatusOK, "GET", "/api/v1/reclaim-policies", nil, nil)
		admin.ok(http.StatusOK, "GET", "/api/v1/reclaim-policies/"+itoa(p.ID)+"/runs", nil, nil)
		var p2 reclaim.Policy
		admin.ok(http.StatusOK, "PUT", "/api/v1/reclaim-policies/"+itoa(p.ID), map[string]any{
			"name": "Idle", "scope": map[string]any{"kind": "products", "products": []string{"draftpro"}}, "range": "3m",
			"mode": "warn_then_reclaim", "grace_days": 7, "enabled": false}, &p2)
		if p2.Enabled || !p2.NextRunAt.IsZero() || p2.Scope.Kind != reclaim.ScopeProducts || len(p2.Scope.SubscriptionIDs) != 0 {
			t.Fatalf("replaced: %+v", p2)
		}

		t.Run("SecondaryAdminReadsButDoesNotManage", func(t *testing.T) {
			u := admin.createUser("sam@acme.test")
			admin.ok(http.StatusCreated, "POST", "/api/v1/users/"+itoa(u.ID)+"/roles", map[string]any{"role": "secondary_admin"}, nil)
			a, err := acc.ActorFor(context.Background(), adminU.AccountID, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			_, plain, err := acc.CreateToken(context.Background(), a, access.TokenInput{Name: "t", Scope: usher.ScopeFull})
			if err != nil {
				t.Fatal(err)
			}
			sam := &client{t: t, base: srv.URL, token: plain, http: srv.Client()}
			sam.ok(http.StatusOK, "GET", "/api/v1/reclaim-policies/"+itoa(p.ID)+"/preview", nil, nil)
			sam.fail(http.StatusForbidden, usher.EFORBIDDEN, "DELETE", "/api/v1/reclaim-policies/"+itoa(p.ID), nil)
		})

		// A bulk unassign is a reclaim batch, and can be undone.
		var res access.UnassignResult
		admin.ok(http.StatusOK, "POST", "/api/v1/unassign", map[string]any{"items": []map[string]any{{"user_id": ada.ID, "subscription_id": sub.ID}}}, &res)
		if res.BatchID == 0 {
			t.Fatalf("unassign: %+v", res)
		}
		var hist access.Page[usher.ReclaimBatch]
		admin.ok(http.StatusOK, "GET", "/api/v1/reclaims", nil, &hist)
		if len(hist.Items) != 1 || hist.Items[0].Source != usher.BatchUnassign || hist.Items[0].Saved[0].String() != "EUR 600.00" {
			t.Fatalf("history: %+v", hist)
		}
		admin.ok(http.StatusOK, "GET", "/api/v1/reclaims/"+itoa(res.BatchID), nil, nil)
		var undo access.UndoResult
		admin.ok(http.StatusOK, "POST", "/api/v1/reclaims/"+itoa(res.BatchID)+"/undo", nil, &undo)
		if len(undo.Restored) != 1 {
			t.Fatalf("undo: %+v", undo)
		}
		if assigned, services, _ := admin.access(ada.ID).seat(sub.ID); !assigned || len(services) != 1 {
			t.Fatalf("after undo: assigned %v, services %v", assigned, services)
		}
		admin.fail(http.StatusConflict, usher.ECONFLICT, "POST", "/api/v1/reclaims/"+itoa(res.BatchID)+"/undo", nil)
		admin.ok(http.StatusNoContent, "DELETE", "/api/v1/reclaim-policies/"+itoa(p.ID), nil, nil)
		admin.fail(http.StatusNotFound, usher.ENOTFOUND, "GET", "/api/v1/reclaim-policies/"+itoa(p.ID), nil)
	})
}
