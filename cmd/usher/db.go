package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"strings"

	"github.com/usherhq/usher/internal/store"
)

// defaultDB is the SQLite file used when neither --db nor USHER_DB is set.
const defaultDB = "usher.db"

const dbFlagHelp = `  --db DSN            database: an SQLite file path, or postgres://user:pass@host:5432/db
                      for PostgreSQL (default usher.db)          env USHER_DB
`

func dbFlag(fs *flag.FlagSet) *string {
	return fs.String("db", defaultDB, "database: SQLite file path or postgres:// URL")
}

// openDB opens the database and brings its schema up to date. Every command
// migrates, so a fresh SQLite file works from the first command on;
// migrations are idempotent and safe to run from several replicas.
func openDB(ctx context.Context, dsn string) (*store.DB, error) {
	if dsn == "" {
		return nil, usageErrorf("--db or USHER_DB must not be empty")
	}
	db, err := store.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", redact(dsn), err)
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate database %s: %w", redact(dsn), err)
	}
	return db, nil
}

// redact hides a password in a PostgreSQL URL so it never reaches logs or
// the terminal.
func redact(dsn string) string {
	if !strings.Contains(dsn, "://") {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable database URL)"
	}
	return u.Redacted()
}
