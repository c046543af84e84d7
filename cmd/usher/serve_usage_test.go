package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
)

func TestRetentionFlag(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"400": 400 * 24 * time.Hour, "30d": 30 * 24 * time.Hour, "36h": 36 * time.Hour, " 2d ": 48 * time.Hour,
	} {
		var r retentionFlag
		if err := r.Set(in); err != nil || time.Duration(r) != want {
			t.Errorf("%q: got %v, %v; want %v", in, time.Duration(r), err, want)
		}
	}
	for _, in := range []string{"", "0", "-5d", "1h", "forever", "3w"} {
		var r retentionFlag
		if err := r.Set(in); err == nil {
			t.Errorf("%q: got %v, want an error", in, time.Duration(r))
		}
	}
	def := retentionFlag(usage.DefaultRetention)
	if got := def.String(); got != "400d" {
		t.Errorf("default shows as %q, want 400d", got)
	}
}

func TestServeRejectsABadRetention(t *testing.T) {
	code, _, stderr := cli(t, "serve", "--db", tempDB(t), "--usage-retention", "soon")
	if code != exitUsage || !strings.Contains(stderr, "usage-retention") {
		t.Fatalf("got exit %d, stderr %q; want exit 2 naming the flag", code, stderr)
	}
}

// The pruner deletes events past their retention and stops with its context.
func TestPrunePeriodically(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	now := time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	svc := access.New(db.Access(), clock)
	_, _, token, err := svc.CreateAccount(ctx, access.NewAccount{Name: "Acme", AdminEmail: "ada@acme.test"})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := svc.Authenticate(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	use := usage.New(db.Usage(), usage.Config{Now: clock, Retention: 10 * 24 * time.Hour})
	body := "user,product,at\nada@acme.test,draftpro,2026-03-06T10:00:00Z\nada@acme.test,draftpro,2026-03-14T10:00:00Z\n"
	if res, err := use.Ingest(ctx, admin, usage.Decode(strings.NewReader(body), usage.FormatCSV)); err != nil || res.Accepted != 2 {
		t.Fatalf("ingest: %+v, %v", res, err)
	}
	// Five days later the first event is past the ten days.
	later := usage.New(db.Usage(), usage.Config{Now: func() time.Time { return now.AddDate(0, 0, 5) }, Retention: 10 * 24 * time.Hour})
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		prunePeriodically(pctx, later, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM usage_events").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events left after 10s, want 1", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the pruner did not stop with its context")
	}
}

func TestServeHelpNamesTheRetention(t *testing.T) {
	code, stdout, _ := cli(t, "serve", "--help")
	if code != 0 || !strings.Contains(stdout, "--usage-retention") || !strings.Contains(stdout, "USHER_USAGE_RETENTION") {
		t.Fatalf("exit %d, help:\n%s", code, stdout)
	}
	code, stdout, _ = cli(t, "help")
	if code != 0 || !strings.Contains(stdout, "usage import") {
		t.Fatalf("overview does not list usage import:\n%s", stdout)
	}
}

func TestServeTakesTheRetentionFromTheEnvironment(t *testing.T) {
	t.Setenv("USHER_USAGE_RETENTION", "a fortnight")
	code, _, stderr := cli(t, "serve", "--db", tempDB(t))
	if code != exitUsage || !strings.Contains(stderr, "USHER_USAGE_RETENTION") {
		t.Fatalf("exit %d, stderr %q; want 2 naming the variable", code, stderr)
	}
}
