package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
)

// postgresDSN returns a URL for a fresh schema on the test PostgreSQL,
// dropped when the test ends. Like every storage test, it fails rather than
// skips when PostgreSQL is unreachable.
// openMigrated opens dsn's database with the schema up to date, closed
// when the test ends.
func openMigrated(t *testing.T, dsn string) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

func postgresDSN(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := storetest.PostgresURL()
	admin, err := sql.Open("pgx", base)
	if err == nil {
		err = admin.PingContext(ctx)
	}
	if err != nil {
		t.Fatalf("PostgreSQL is not reachable (USHER_TEST_POSTGRES_URL): %v", err)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "usher_cli_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestPostgres(t *testing.T) {
	dsn := postgresDSN(t)
	code, stdout, stderr := cli(t, "migrate", "--db", dsn)
	if code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "postgres") || !strings.Contains(stdout, "done") {
		t.Errorf("migrate: stdout %q does not name the engine and say done", stdout)
	}
	code, stdout, stderr = cli(t, "account", "create", "--name", "Initech", "--admin-email", "peter@initech.test", "--db", dsn)
	if code != 0 || tokenRE.FindString(stdout) == "" {
		t.Fatalf("account create: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = cli(t, "account", "list", "--db", dsn)
	if code != 0 || !strings.Contains(stdout, "Initech") {
		t.Fatalf("account list: exit %d, stdout %q", code, stdout)
	}
}
