package main

import (
	"context"
	"fmt"
	"io"
)

const migrateHelp = `Usage: usher migrate [flags]

Applies the database migrations that have not run yet, then exits. It is safe
to run again, and to run while other replicas are serving: migrations only add.
"usher serve" migrates on start as well; run this first when you roll out a
new version to several replicas.

Flags:
` + dbFlagHelp + `  -h, --help          show this help
`

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate")
	dsn := dbFlag(fs)
	if err := parse(fs, migrateHelp, args, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	db, err := openDB(ctx, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(stdout, "Migrated the %s database %s: done.\n", db.Engine(), redact(*dsn))
	return nil
}
