package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations
var migrationFiles embed.FS

// migrationLockKey is the pg_advisory_xact_lock key that serialises
// migrations of replicas starting at once ("usher" in ASCII).
const migrationLockKey = 0x7573686572

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the engine's migrations in order. Files are named
// NNNN_description.sql.
func migrations(engine string) ([]migration, error) {
	dir := path.Join("migrations", engine)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		prefix, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(prefix)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version number", e.Name())
		}
		b, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share a version", out[i-1].name, out[i].name)
		}
	}
	return out, nil
}

// Migrate applies the migrations the database lacks, each in its own
// transaction. It is safe to run repeatedly and, on PostgreSQL, from several
// processes at once.
func (db *DB) Migrate(ctx context.Context) error { return db.migrateTo(ctx, 0) }

// migrateTo applies the migrations up to version upTo (0: all); the upgrade
// test builds databases at every earlier version with it.
func (db *DB) migrateTo(ctx context.Context, upTo int) error {
	ms, err := migrations(db.engine)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, m := range ms {
		if upTo > 0 && m.version > upTo {
			break
		}
		if err := db.Write(ctx, func(tx *Tx) error { return tx.applyMigration(ctx, m) }); err != nil {
			return fmt.Errorf("migrate %s: %w", m.name, err)
		}
	}
	return nil
}

func (tx *Tx) applyMigration(ctx context.Context, m migration) error {
	if tx.engine == Postgres {
		// Held until this transaction ends; a second replica waits here and
		// then finds the version applied.
		if _, err := tx.exec(ctx, "SELECT pg_advisory_xact_lock(?)", int64(migrationLockKey)); err != nil {
			return err
		}
	}
	if _, err := tx.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at BIGINT  NOT NULL
	)`); err != nil {
		return err
	}
	var n int
	if err := tx.queryRow(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", m.version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	_, err := tx.exec(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", m.version, millis(time.Now()))
	return err
}

// SchemaVersion returns the highest applied migration, 0 for a new database.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := db.Read(ctx, func(tx *Tx) error {
		var exists int
		if err := tx.queryRow(ctx, schemaTableExists(tx.engine)).Scan(&exists); err != nil || exists == 0 {
			return err
		}
		return tx.queryRow(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&v)
	})
	if err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return int(v.Int64), nil
}

// PendingMigrations names the migrations the database lacks, in the order
// Migrate would apply them; none when it is up to date.
func (db *DB) PendingMigrations(ctx context.Context) ([]string, error) {
	ms, err := migrations(db.engine)
	if err != nil {
		return nil, fmt.Errorf("pending migrations: %w", err)
	}
	applied := map[int]bool{}
	err = db.Read(ctx, func(tx *Tx) error {
		var exists int
		if err := tx.queryRow(ctx, schemaTableExists(tx.engine)).Scan(&exists); err != nil || exists == 0 {
			return err
		}
		rows, err := tx.query(ctx, "SELECT version FROM schema_migrations")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				return err
			}
			applied[v] = true
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("pending migrations: %w", err)
	}
	var out []string
	for _, m := range ms {
		if !applied[m.version] {
			out = append(out, m.name)
		}
	}
	return out, nil
}

// LatestVersion is the newest schema version this binary knows for engine.
func LatestVersion(engine string) (int, error) {
	ms, err := migrations(engine)
	if err != nil || len(ms) == 0 {
		return 0, fmt.Errorf("latest schema version of %s: %w", engine, err)
	}
	return ms[len(ms)-1].version, nil
}

func schemaTableExists(engine string) string {
	if engine == Postgres {
		return "SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'"
	}
	return "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
}
