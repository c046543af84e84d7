package console_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/auth"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/web"
	"github.com/usherhq/usher/internal/web/console"
)

// A NUL, a control character or invalid UTF-8 in a query parameter or a
// form field is a 400 naming it, on both engines: never a 500 from
// PostgreSQL, and never a sign-in failure counted against the email.
func TestBadTextInFormsAndSearchIs400(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clock := func() time.Time { return time.Now().UTC() }
		s := &httpSite{t: t}
		s.access = access.New(db.Access(), clock)
		s.auth = auth.New(db.Auth(), auth.Config{Now: clock, Params: auth.Params{Memory: 64, Time: 1, Threads: 1}, MaxFailuresPerEmail: 3, SessionTTL: time.Hour})
		var err error
		if s.acct, s.admin, _, err = s.access.CreateAccount(ctx, access.NewAccount{Name: "Acme", AdminEmail: "ada@acme.test", AdminName: "Ada"}); err != nil {
			t.Fatal(err)
		}
		if err := s.auth.SetPassword(ctx, s.acct.ID, s.admin.ID, password); err != nil {
			t.Fatal(err)
		}
		ui, err := console.New(console.Config{Access: s.access, Auth: s.auth, Usage: usage.New(db.Usage(), usage.Config{Now: clock})})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(web.NewHandler(web.Config{Access: s.access, Console: ui, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
		t.Cleanup(srv.Close)
		s.url = srv.URL

		c := s.client()
		for _, email := range []string{"ada@acme.test\x00", "ada\xff@acme.test", "ada@acme.test\r\n"} {
			if a := c.signIn(email, password); a.status != http.StatusBadRequest || !strings.Contains(a.body, "email") {
				t.Errorf("sign in as %q: got %d, want 400 naming email", email, a.status)
			}
		}
		if a := c.signIn("ada@acme.test", password); a.status != http.StatusSeeOther {
			t.Fatalf("sign in: got %d %s", a.status, a.body)
		}
		for _, path := range []string{"/users?q=%00", "/users?q=%ff", "/reports/usage?q=%00", "/audit-log?action=%00"} {
			if a := c.send("GET", path, nil); a.status != http.StatusBadRequest {
				t.Errorf("GET %s: got %d, want 400", path, a.status)
			}
		}
		if a := c.send("GET", "/users?q=ada", nil); a.status != http.StatusOK {
			t.Errorf("a clean search: got %d", a.status)
		}
		form := url.Values{"seat": {"1-1"}, "confirm": {"1"}, "return": {"/reports/usage?q=\x00"}}
		if a := c.send("POST", "/reports/usage/unassign", form, "Origin", s.url); a.status != http.StatusBadRequest {
			t.Errorf("unassign with a NUL in a field: got %d, want 400", a.status)
		}
	})
}
