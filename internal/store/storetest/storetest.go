// Package storetest gives tests a fresh, migrated database on each engine:
// SQLite in a temporary directory, PostgreSQL in a schema of its own.
//
// PostgreSQL is found at USHER_TEST_POSTGRES_URL (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable). A test fails, and
// never silently skips, when PostgreSQL cannot be reached, unless
// USHER_TEST_POSTGRES=off is set outside CI.
package storetest

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/store"
)

// DefaultPostgresURL is used when USHER_TEST_POSTGRES_URL is not set.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Engines lists the engines Each runs on, in order.
var Engines = []string{store.SQLite, store.Postgres}

// Each runs fn as the subtests "sqlite" and "postgres", each with a fresh,
// migrated database that is closed (and on PostgreSQL dropped) afterwards.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, engine := range Engines {
		t.Run(engine, func(t *testing.T) {
			fn(t, Open(t, engine))
		})
	}
}

// Open returns a fresh, migrated database on engine ("sqlite" or
// "postgres"), cleaned up when the test ends.
func Open(tb testing.TB, engine string) *store.DB {
	tb.Helper()
	switch engine {
	case store.SQLite:
		return openSQLite(tb)
	case store.Postgres:
		return openPostgres(tb)
	}
	tb.Fatalf("storetest: unknown engine %q", engine)
	return nil
}

// OpenEmpty is Open without migrations: a database with no schema yet.
func OpenEmpty(tb testing.TB, engine string) *store.DB {
	tb.Helper()
	switch engine {
	case store.SQLite:
		return openEmptySQLite(tb)
	case store.Postgres:
		return openPostgresWith(tb, store.OpenEmptyScratchSchema)
	}
	tb.Fatalf("storetest: unknown engine %q", engine)
	return nil
}

func openEmptySQLite(tb testing.TB) *store.DB {
	tb.Helper()
	db, err := store.Open(context.Background(), filepath.Join(tb.TempDir(), "usher.db"))
	if err != nil {
		tb.Fatalf("open sqlite: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func openSQLite(tb testing.TB) *store.DB {
	tb.Helper()
	ctx := context.Background()
	db := openEmptySQLite(tb)
	if err := db.Migrate(ctx); err != nil {
		tb.Fatalf("migrate sqlite: %v", err)
	}
	return db
}

// PostgresURL returns the URL of the test server.
func PostgresURL() string {
	if u := os.Getenv("USHER_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

func openPostgres(tb testing.TB) *store.DB {
	tb.Helper()
	return openPostgresWith(tb, store.OpenScratchSchema)
}

func openPostgresWith(tb testing.TB, open func(ctx context.Context, baseURL, prefix string) (*store.DB, func(context.Context) error, error)) *store.DB {
	tb.Helper()
	if os.Getenv("USHER_TEST_POSTGRES") == "off" && os.Getenv("CI") != "true" {
		tb.Skip("USHER_TEST_POSTGRES=off: skipping PostgreSQL (never allowed when CI=true)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	base := PostgresURL()
	db, drop, err := open(ctx, base, "usher_t_")
	if err != nil {
		tb.Fatalf("PostgreSQL at %s: %v\n"+
			"Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"+
			"or point USHER_TEST_POSTGRES_URL at a server; USHER_TEST_POSTGRES=off skips PostgreSQL outside CI.",
			redact(base), err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := drop(ctx); err != nil {
			tb.Error(err)
		}
	})
	return db
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
