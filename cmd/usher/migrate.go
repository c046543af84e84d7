package main

import (
	"context"
	"fmt"
	"io"

	"github.com/usherhq/usher/internal/store"
)

const migrateHelp = `Usage: usher migrate [flags]

Applies the database migrations that have not run yet, then exits. It is safe
to run again, and to run while other replicas are serving: migrations only add.
"usher serve" migrates on start as well; run this first when you roll out a
new version to several replicas.

Flags:
` + dbFlagHelp + `  --dry-run           list the migrations that would run, and change nothing
  -h, --help          show this help
`

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate")
	dsn := dbFlag(fs)
	dryRun := fs.Bool("dry-run", false, "list the migrations that would run")
	if err := parse(fs, migrateHelp, args, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	if *dryRun {
		db, err := store.Open(ctx, *dsn)
		if err != nil {
			return fmt.Errorf("open database %s: %w", redact(*dsn), err)
		}
		defer db.Close()
		version, err := db.SchemaVersion(ctx)
		if err != nil {
			return err
		}
		pending, err := db.PendingMigrations(ctx)
		if err != nil {
			return err
		}
		if len(pending) == 0 {
			fmt.Fprintf(stdout, "The %s database %s is at schema version %d: up to date, nothing to run.\n", db.Engine(), redact(*dsn), version)
			return nil
		}
		fmt.Fprintf(stdout, "The %s database %s is at schema version %d; usher migrate would run:\n", db.Engine(), redact(*dsn), version)
		for _, m := range pending {
			fmt.Fprintf(stdout, "  %s\n", m)
		}
		return nil
	}
	db, err := openDB(ctx, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(stdout, "Migrated the %s database %s: done.\n", db.Engine(), redact(*dsn))
	return nil
}
