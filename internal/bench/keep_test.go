package bench

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usage"
)

func TestKeepDB(t *testing.T) {
	path := os.Getenv("BENCH_KEEP")
	if path == "" {
		t.Skip()
	}
	ctx := context.Background()
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := Scaled(0.2)
	cfg.Events = 1_000_000
	now := time.Now()
	w, err := seed(ctx, db, cfg, now, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	use := usage.New(db.Usage(), usage.Config{})
	srv, base, err := serve(db, use)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := &client{http: &http.Client{}, base: base, token: w.token}
	if _, err := measureIngest(ctx, c, db, newEvents(cfg, w, now), use); err != nil {
		t.Fatal(err)
	}
	analyze(ctx, db)
	t.Log("token", w.token, "account", w.account.ID)
}
