package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
	"github.com/usherhq/usher/internal/web"
)

// noInactivity answers that nobody is inactive; these tests are about the
// API, not the counts.
type noInactivity struct{}

func (noInactivity) InactiveSummary(ctx context.Context, accountID int64, r usage.Range, first int) (usage.InactiveSummary, error) {
	return usage.InactiveSummary{Range: r, ByProduct: []usage.ProductSummary{}, FirstUsers: []usher.User{}}, nil
}

// newNotifyEnv is newEnv with the notify service wired in, on the same
// clock (testNow: Sunday 15 March 2026, 11:00 in Berlin).
func newNotifyEnv(t *testing.T, db *store.DB) (*env, *notify.Service) {
	t.Helper()
	now := func() time.Time { return testNow }
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := &env{t: t, svc: access.New(db.Access(), now)}
	ns := notify.New(db.Notify(), nil, noInactivity{}, notify.Config{BaseURL: "https://usher.example.com", Now: now, Logger: quiet})
	e.srv = newTestServer(t, web.NewHandler(web.Config{Access: e.svc, Notify: ns, Logger: quiet}))
	e.admin, e.adminU = e.account("Acme", "admin@acme.test")
	return e, ns
}

type notificationJSON struct {
	UserID      int64     `json:"user_id"`
	Enabled     bool      `json:"enabled"`
	StartDate   string    `json:"start_date"`
	Frequency   string    `json:"frequency"`
	Range       string    `json:"range"`
	SendHour    int       `json:"send_hour"`
	NextAt      time.Time `json:"next_at"`
	NextAtLocal string    `json:"next_at_local"`
	TimeZone    string    `json:"time_zone"`
	Change      string    `json:"change"`
	Message     string    `json:"message"`
}

type runPage struct {
	Items []struct {
		ID            int64     `json:"id"`
		ScheduledFor  time.Time `json:"scheduled_for"`
		Range         string    `json:"range"`
		Status        string    `json:"status"`
		Attempts      int       `json:"attempts"`
		InactiveUsers int       `json:"inactive_users"`
		MessageID     string    `json:"message_id"`
		LastError     *string   `json:"last_error"`
	} `json:"items"`
	NextCursor string `json:"next_cursor"`
}

const notificationsPath = "/api/v1/usage-notifications"

func TestNotificationSettingsAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e, _ := newNotifyEnv(t, db)
		p := e.admin.fail(http.StatusNotFound, usher.ENOTFOUND, "GET", notificationsPath, nil)
		if p.Detail != "usage notifications are not set up" {
			t.Fatalf("before set up: got %q", p.Detail)
		}

		var got notificationJSON
		e.admin.ok(http.StatusOK, "PUT", notificationsPath, map[string]any{"start_date": "2026-03-20", "frequency": "monthly", "range": "3m"}, &got)
		if got.Change != "turned_on" || !got.Enabled || got.StartDate != "2026-03-20" || got.Frequency != "monthly" || got.Range != "3m" || got.SendHour != 8 {
			t.Fatalf("turn on: got %+v", got)
		}
		if want := time.Date(2026, 3, 20, 7, 0, 0, 0, time.UTC); !got.NextAt.Equal(want) || got.NextAtLocal != "2026-03-20T08:00:00+01:00" || got.TimeZone != "Europe/Berlin" {
			t.Fatalf("next: got %v / %q / %q, want %v at 08:00 Berlin", got.NextAt, got.NextAtLocal, got.TimeZone, want)
		}
		if want := "Usage notifications have been turned on. The next email goes on Friday 20 March 2026 at 08:00 (Europe/Berlin)."; got.Message != want {
			t.Fatalf("message: got %q, want %q", got.Message, want)
		}

		e.admin.ok(http.StatusOK, "PUT", notificationsPath, map[string]any{"start_date": "2026-03-31", "frequency": "quarterly", "range": "1y", "send_hour": 6}, &got)
		// 31 March: after the change to summer time, so 06:00 is 04:00 UTC.
		if got.Change != "edited" || got.SendHour != 6 || !got.NextAt.Equal(time.Date(2026, 3, 31, 4, 0, 0, 0, time.UTC)) || !strings.HasPrefix(got.Message, "Your changes have been saved.") {
			t.Fatalf("edit: got %+v", got)
		}

		var shown notificationJSON
		e.admin.ok(http.StatusOK, "GET", notificationsPath, nil, &shown)
		if shown.Frequency != "quarterly" || shown.NextAtLocal != "2026-03-31T06:00:00+02:00" || shown.Change != "" {
			t.Fatalf("get: got %+v", shown)
		}

		got = notificationJSON{}
		e.admin.ok(http.StatusOK, "DELETE", notificationsPath, nil, &got)
		if got.Change != "turned_off" || got.Enabled || !got.NextAt.IsZero() || got.NextAtLocal != "" || got.Frequency != "quarterly" {
			t.Fatalf("turn off: got %+v", got)
		}
		e.admin.ok(http.StatusOK, "GET", notificationsPath, nil, &shown)
		if shown.Enabled {
			t.Fatal("still on after DELETE")
		}

		var audit auditPage
		e.admin.ok(http.StatusOK, "GET", "/api/v1/audit-log?action=notification.edit", nil, &audit)
		if len(audit.Items) != 1 || audit.Items[0].ActorID != e.adminU.ID || len(audit.Items[0].Before) == 0 || len(audit.Items[0].After) == 0 {
			t.Fatalf("audit of the edit: got %+v", audit.Items)
		}
		for _, action := range []string{"notification.turn_on", "notification.turn_off"} {
			e.admin.ok(http.StatusOK, "GET", "/api/v1/audit-log?action="+action, nil, &audit)
			if len(audit.Items) != 1 {
				t.Fatalf("%s: got %d audit entries, want 1", action, len(audit.Items))
			}
		}
	})
}

func TestNotificationSettingsValidation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e, _ := newNotifyEnv(t, db)
		t.Run("EveryProblemNamedWithTheAllowedValues", func(t *testing.T) {
			p := e.admin.fail(http.StatusUnprocessableEntity, usher.EINVALID, "PUT", notificationsPath,
				map[string]any{"start_date": "2026-03-14", "frequency": "daily", "range": "2w", "send_hour": 24},
				"start_date", "frequency", "range", "send_hour")
			want := map[string]string{
				"start_date": "must be today (2026-03-15 in Europe/Berlin) or later",
				"frequency":  "must be one of weekly, biweekly, monthly, quarterly",
				"range":      "must be one of 30d, 3m, 6m, 9m, 1y",
			}
			for _, f := range p.Errors {
				if w, ok := want[f.Field]; ok && f.Reason != w {
					t.Errorf("%s: got %q, want %q", f.Field, f.Reason, w)
				}
			}
		})
		t.Run("MalformedDateIsNamedWithTheOtherProblems", func(t *testing.T) {
			p := e.admin.fail(http.StatusUnprocessableEntity, usher.EINVALID, "PUT", notificationsPath,
				map[string]any{"start_date": "2026-13-45", "frequency": "weekly", "range": "3 months"}, "start_date", "range")
			if !strings.Contains(p.Errors[0].Reason, "YYYY-MM-DD") {
				t.Fatalf("start_date: got %q", p.Errors[0].Reason)
			}
		})
		t.Run("MissingFieldsAreRequired", func(t *testing.T) {
			e.admin.fail(http.StatusUnprocessableEntity, usher.EINVALID, "PUT", notificationsPath, map[string]any{}, "start_date", "frequency", "range")
		})
		t.Run("UnknownFieldIsMalformed", func(t *testing.T) {
			e.admin.fail(http.StatusBadRequest, "malformed_request", "PUT", notificationsPath,
				map[string]any{"start_date": "2026-03-20", "frequency": "weekly", "range": "3m", "hour": 7}, "hour")
		})
		t.Run("NothingWasSaved", func(t *testing.T) {
			e.admin.fail(http.StatusNotFound, usher.ENOTFOUND, "GET", notificationsPath, nil)
		})
	})
}

func TestOnlyPrimaryAdminsHaveNotifications(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e, _ := newNotifyEnv(t, db)
		u := e.admin.createUser("second@acme.test")
		e.admin.ok(http.StatusCreated, "POST", "/api/v1/users/"+itoa(u.ID)+"/roles", map[string]any{"role": "secondary_admin"}, nil)
		second := e.tokenFor(e.adminU.AccountID, u.ID, usher.ScopeFull)
		plain := e.tokenFor(e.adminU.AccountID, e.admin.createUser("plain@acme.test").ID, usher.ScopeFull)
		body := map[string]any{"start_date": "2026-03-20", "frequency": "weekly", "range": "3m"}
		for name, c := range map[string]*client{"SecondaryAdmin": second, "PlainUser": plain} {
			t.Run(name, func(t *testing.T) {
				for _, method := range []string{"GET", "PUT", "DELETE"} {
					var b any
					if method == "PUT" {
						b = body
					}
					p := c.fail(http.StatusForbidden, usher.EFORBIDDEN, method, notificationsPath, b)
					if !strings.Contains(p.Detail, "only primary admins can set up usage notifications") {
						t.Fatalf("%s: detail %q", method, p.Detail)
					}
				}
				c.fail(http.StatusForbidden, usher.EFORBIDDEN, "GET", notificationsPath+"/runs", nil)
			})
		}
		t.Run("NoTokenIs401", func(t *testing.T) {
			e.client("").fail(http.StatusUnauthorized, usher.EUNAUTHORIZED, "GET", notificationsPath, nil)
		})
		t.Run("AnotherAccountsAdminSeesOnlyTheirOwn", func(t *testing.T) {
			e.admin.ok(http.StatusOK, "PUT", notificationsPath, body, nil)
			other, _ := e.account("Globex", "admin@globex.test")
			other.fail(http.StatusNotFound, usher.ENOTFOUND, "GET", notificationsPath, nil)
			var runs runPage
			other.ok(http.StatusOK, "GET", notificationsPath+"/runs", nil, &runs)
			if len(runs.Items) != 0 {
				t.Fatalf("runs of another account: %+v", runs.Items)
			}
		})
	})
}

func TestNotificationRunsAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e, ns := newNotifyEnv(t, db)
		var runs runPage
		e.admin.ok(http.StatusOK, "GET", notificationsPath+"/runs", nil, &runs)
		if runs.Items == nil || len(runs.Items) != 0 {
			t.Fatalf("before any: got %+v, want an empty list", runs)
		}
		// Today, 08:00 has passed: the first email is due at once.
		var got notificationJSON
		e.admin.ok(http.StatusOK, "PUT", notificationsPath, map[string]any{"start_date": "2026-03-15", "frequency": "weekly", "range": "30d"}, &got)
		if !got.NextAt.Equal(time.Date(2026, 3, 15, 7, 0, 0, 0, time.UTC)) {
			t.Fatalf("next at: got %v, want today 08:00 Berlin", got.NextAt)
		}
		if n, err := ns.PlanDue(context.Background()); err != nil || n != 1 {
			t.Fatalf("plan: got %d %v", n, err)
		}
		e.admin.ok(http.StatusOK, "GET", notificationsPath+"/runs?limit=1", nil, &runs)
		if len(runs.Items) != 1 || runs.NextCursor != "" {
			t.Fatalf("runs: got %+v", runs)
		}
		r := runs.Items[0]
		if r.Status != "pending" || r.Range != "30d" || !r.ScheduledFor.Equal(got.NextAt) || r.Attempts != 0 || !strings.HasPrefix(r.MessageID, "<run-") {
			t.Fatalf("run: got %+v", r)
		}
		e.admin.ok(http.StatusOK, "GET", notificationsPath, nil, &got)
		if !got.NextAt.Equal(time.Date(2026, 3, 22, 7, 0, 0, 0, time.UTC)) {
			t.Fatalf("after planning, next at: got %v, want a week later", got.NextAt)
		}
		e.admin.fail(http.StatusUnprocessableEntity, usher.EINVALID, "GET", notificationsPath+"/runs?cursor=junk!", nil, "cursor")
	})
}

func TestReadTokenSeesButDoesNotChangeNotifications(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e, _ := newNotifyEnv(t, db)
		e.admin.ok(http.StatusOK, "PUT", notificationsPath, map[string]any{"start_date": "2026-03-20", "frequency": "monthly", "range": "3m"}, nil)
		read := e.tokenFor(e.adminU.AccountID, e.adminU.ID, usher.ScopeRead)
		var shown notificationJSON
		read.ok(http.StatusOK, "GET", notificationsPath, nil, &shown)
		if shown.Frequency != "monthly" {
			t.Fatalf("got %+v", shown)
		}
		read.ok(http.StatusOK, "GET", notificationsPath+"/runs", nil, nil)
		read.fail(http.StatusForbidden, usher.EFORBIDDEN, "PUT", notificationsPath, map[string]any{"start_date": "2026-03-20", "frequency": "weekly", "range": "3m"})
		read.fail(http.StatusForbidden, usher.EFORBIDDEN, "DELETE", notificationsPath, nil)
		e.admin.ok(http.StatusOK, "GET", notificationsPath, nil, &shown)
		if shown.Frequency != "monthly" || !shown.Enabled {
			t.Fatalf("after refused changes: got %+v", shown)
		}
	})
}
