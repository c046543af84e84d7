package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/store/storetest"
)

// TestPostgresDumpRestoresTheSameAnswers follows docs/operations.md: a
// pg_dump of a live Usher database, restored with pg_restore into a new
// database, serves the same Usage Report, audit log and seat counts.
func TestPostgresDumpRestoresTheSameAnswers(t *testing.T) {
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (./scripts/test installs postgresql-client): %v", tool, err)
		}
	}
	dsn := postgresDSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	schema := u.Query().Get("search_path")
	setClock(t, backupNow)
	clockFile := os.Getenv(testNowEnv)
	code, stdout, stderr := cli(t, "account", "create", "--name", "Acme", "--admin-email", "ada@acme.test", "--timezone", "UTC", "--db", dsn)
	if code != 0 {
		t.Fatalf("account create: %d %s", code, stderr)
	}
	token := tokenRE.FindString(stdout)
	live := startServe(t, "live", clockFile, "--db", dsn)
	liveURL := "http://" + live.addr
	emails := seedForBackup(t, &apiClient{t: t, base: liveURL, token: token})
	for step := 1; step <= 3; step++ {
		if err := ingestStep(liveURL, token, emails, step); err != nil {
			t.Fatal(err)
		}
	}
	want, err := answers(t, liveURL, token)
	if err != nil {
		t.Fatal(err)
	}

	// The database URL without Usher's search_path, as libpq takes it.
	base, err := url.Parse(storetest.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	dump := filepath.Join(t.TempDir(), "usher.dump")
	if out, err := exec.Command("pg_dump", "--format=custom", "--no-owner", "--schema="+schema, "--file="+dump, base.String()).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}

	b := make([]byte, 6)
	_, _ = rand.Read(b)
	dbName := "usher_restore_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", base.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() }) // after the drop below: cleanups run last first
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+dbName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", dbName, err)
		}
	})
	target := *base
	target.Path = "/" + dbName
	if out, err := exec.Command("pg_restore", "--no-owner", "--dbname="+target.String(), dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	q := target.Query()
	q.Set("search_path", schema)
	target.RawQuery = q.Encode()

	if code, stdout, stderr := cli(t, "migrate", "--dry-run", "--db", target.String()); code != 0 || !strings.Contains(stdout, "up to date") {
		t.Fatalf("migrate --dry-run on the restored database: %d %q %q", code, stdout, stderr)
	}
	restored := startServe(t, "restored", clockFile, "--db", target.String())
	got, err := answers(t, "http://"+restored.addr, token)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("the restored database answers differently.\nwant:\n%s\ngot:\n%s", want, got)
	}
}
