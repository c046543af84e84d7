package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/usherhq/usher/internal/store"
)

const backupHelp = `Usage: usher backup --to FILE [flags]

Writes a consistent copy of the SQLite database to FILE while "usher serve"
keeps running and writing (SQLite's VACUUM INTO: one read transaction, so
the copy is the database as of one instant, compacted). It says how big the
copy is and how long it took. FILE must not exist.

For PostgreSQL use pg_dump and pg_restore (docs/operations.md).

Flags:
  --to FILE           where to write the copy (required)
` + dbFlagHelp + `  -h, --help          show this help

Example:
  usher backup --db /var/lib/usher/usher.db --to /backup/usher-$(date +%F).db
`

func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backup")
	dsn := dbFlag(fs)
	to := fs.String("to", "", "where to write the copy")
	if err := parse(fs, backupHelp, args, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	if *to == "" {
		return usageErrorf("backup: --to is required (see usher backup --help)")
	}
	if _, ok := store.SQLitePath(*dsn); !ok {
		return usageErrorf("backup: %s is PostgreSQL; back it up with pg_dump (see docs/operations.md)", redact(*dsn))
	}
	if _, err := os.Stat(*to); err == nil {
		return usageErrorf("backup: %s exists; choose a new file", *to)
	}
	path, _ := store.SQLitePath(*dsn)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("backup: database %s: %w", path, err)
	}
	// Opened without migrating: the copy is the database as it is.
	db, err := store.Open(ctx, *dsn)
	if err != nil {
		return fmt.Errorf("backup: open %s: %w", path, err)
	}
	defer db.Close()
	version, err := db.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	start := time.Now()
	abs, err := filepath.Abs(*to)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := db.SQL().ExecContext(ctx, "VACUUM INTO ?", abs); err != nil {
		return fmt.Errorf("backup: copy %s to %s: %w", path, *to, err)
	}
	took := time.Since(start)
	st, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "Backed up %s to %s: %s, schema version %d, in %s.\n",
		path, *to, byteSize(st.Size()), version, took.Round(time.Millisecond))
	return nil
}

const restoreHelp = `Usage: usher restore --from FILE [flags]

Replaces the SQLite database with a copy made by "usher backup". It first
checks the copy (PRAGMA integrity_check, and a schema version this binary
knows) and changes nothing if the check fails. It refuses to run while an
"usher serve" uses the database (serve holds the lock file DB.lock); stop
the server, restore, start it again. The database replaced is kept beside
it as DB.before-restore-TIME. A copy from an older version is migrated
when the server starts.

For PostgreSQL use pg_restore (docs/operations.md).

Flags:
  --from FILE         the copy to restore (required)
` + dbFlagHelp + `  -h, --help          show this help

Example:
  usher restore --from /backup/usher-2026-03-01.db --db /var/lib/usher/usher.db
`

func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("restore")
	dsn := dbFlag(fs)
	from := fs.String("from", "", "the copy to restore")
	if err := parse(fs, restoreHelp, args, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	if *from == "" {
		return usageErrorf("restore: --from is required (see usher restore --help)")
	}
	path, ok := store.SQLitePath(*dsn)
	if !ok {
		return usageErrorf("restore: %s is PostgreSQL; restore it with pg_restore (see docs/operations.md)", redact(*dsn))
	}
	if _, err := os.Stat(*from); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	unlock, err := lockFile(path+lockSuffix, true)
	if errors.Is(err, errLocked) {
		return fmt.Errorf("restore: %s is in use by a running usher serve (it holds %s); stop it first", path, path+lockSuffix)
	} else if err != nil {
		return fmt.Errorf("restore: lock %s: %w", path+lockSuffix, err)
	}
	defer unlock()

	// Check a copy, so the backup itself is never touched.
	start := time.Now()
	staged := path + ".restoring"
	if err := copyFile(*from, staged); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer removeSQLite(staged)
	version, err := checkBackup(ctx, staged)
	if err != nil {
		return fmt.Errorf("restore: %s: %w; nothing was changed", *from, err)
	}

	var kept string
	if _, err := os.Stat(path); err == nil {
		kept = path + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
		// The write-ahead log goes with its database: left behind, SQLite
		// would replay it into the restored file.
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Rename(path+suffix, kept+suffix); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("restore: keep the old database: %w", err)
			}
		}
	}
	if err := os.Rename(staged, path); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Fprintf(stdout, "Restored %s from %s (schema version %d, integrity ok) in %s.\n",
		path, *from, version, time.Since(start).Round(time.Millisecond))
	if kept != "" {
		fmt.Fprintf(stdout, "The database it replaced is kept as %s.\n", kept)
	}
	return nil
}

// checkBackup opens a staged copy and checks that it is a whole Usher
// database of a schema version this binary can serve.
func checkBackup(ctx context.Context, path string) (int, error) {
	db, err := store.Open(ctx, path)
	if err != nil {
		return 0, fmt.Errorf("not a readable SQLite database: %w", err)
	}
	defer db.Close()
	var verdict string
	if err := db.SQL().QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&verdict); err != nil {
		return 0, fmt.Errorf("integrity check: %w", err)
	}
	if verdict != "ok" {
		return 0, fmt.Errorf("integrity check failed: %s", verdict)
	}
	version, err := db.SchemaVersion(ctx)
	if err != nil {
		return 0, err
	}
	latest, err := store.LatestVersion(store.SQLite)
	if err != nil {
		return 0, err
	}
	switch {
	case version == 0:
		return 0, errors.New("not an Usher database (no schema version)")
	case version > latest:
		return 0, fmt.Errorf("schema version %d is newer than this usher knows (%d); restore with the version that made it", version, latest)
	}
	// Fold a write-ahead log the check may have left into the file.
	if _, err := db.SQL().ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	return version, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func removeSQLite(path string) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(path + suffix)
	}
}

// byteSize writes n for people: "12.3 MB".
func byteSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
