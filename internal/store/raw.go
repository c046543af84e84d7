package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
)

// Rebind rewrites a query written with ? placeholders for the engine: $1, $2…
// on PostgreSQL, unchanged on SQLite. It is for code that runs its own SQL on
// DB.SQL(), such as the benchmark's baselines.
func (db *DB) Rebind(query string) string {
	if db.engine == Postgres {
		return rebind(query)
	}
	return query
}

// OpenScratchSchema creates a schema of its own in the PostgreSQL database at
// baseURL, opens a DB whose connections use it and migrates it. drop closes
// the DB and drops the schema with everything in it. Tests and benchmarks use
// it so that runs on one server never see each other's rows.
func OpenScratchSchema(ctx context.Context, baseURL, prefix string) (db *DB, drop func(context.Context) error, err error) {
	return openScratchSchema(ctx, baseURL, prefix, true)
}

// OpenEmptyScratchSchema is OpenScratchSchema without migrating: the
// upgrade test builds older schema versions in it.
func OpenEmptyScratchSchema(ctx context.Context, baseURL, prefix string) (db *DB, drop func(context.Context) error, err error) {
	return openScratchSchema(ctx, baseURL, prefix, false)
}

func openScratchSchema(ctx context.Context, baseURL, prefix string, migrate bool) (db *DB, drop func(context.Context) error, err error) {
	admin, err := sql.Open("pgx", baseURL)
	if err != nil {
		return nil, nil, err
	}
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		return nil, nil, err
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := prefix + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		return nil, nil, fmt.Errorf("create schema %s: %w", schema, err)
	}
	drop = func(ctx context.Context) error {
		defer admin.Close()
		if db != nil {
			db.Close() // its connections go before the schema does
		}
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			return fmt.Errorf("drop schema %s: %w", schema, err)
		}
		return nil
	}
	u, err := url.Parse(baseURL)
	if err == nil {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		db, err = Open(ctx, u.String())
	}
	if err == nil && migrate {
		err = db.Migrate(ctx)
	}
	if err != nil {
		return nil, nil, errors.Join(err, drop(context.WithoutCancel(ctx)))
	}
	return db, drop, nil
}
