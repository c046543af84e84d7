package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
)

// BenchmarkReportTotalsAcrossAccounts runs the report's totals for a
// different account on every call, as the notification scheduler does, after
// ANALYZE: SQLite's stat4 samples make it re-prepare a statement whenever a
// parameter compared with an indexed column changes value.
func BenchmarkReportTotalsAcrossAccounts(b *testing.B) {
	ctx := context.Background()
	db := storetest.Open(b, store.SQLite)
	const accounts, users = 20, 40
	var ids []int64
	for a := range accounts {
		acct := newAccount(b, db, fmt.Sprintf("Acct %d", a))
		sub := newSubscription(b, db, acct.ID, fmt.Sprintf("C-%d", a), users)
		ids = append(ids, acct.ID)
		for u := range users {
			usr := newUser(b, db, acct.ID, fmt.Sprintf("u%d-%d@example.com", a, u), fmt.Sprintf("User %d", u))
			write(b, db, func(tx *store.Tx) error { return assign(ctx, tx, acct.ID, usr.ID, sub.ID) })
		}
	}
	run := func(b *testing.B, db *store.DB) {
		q := usage.ReportQuery{Status: "all", CutoffAt: now.AddDate(0, 0, -30), AssignedBefore: now.AddDate(0, 0, -30)}
		b.ResetTimer()
		for i := range b.N {
			q.AccountID = ids[i%len(ids)]
			err := db.Read(ctx, func(tx *store.Tx) error {
				t, err := tx.ReportTotals(ctx, q)
				if err == nil && t.Seats != users {
					err = fmt.Errorf("seats: got %d, want %d", t.Seats, users)
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	// Before the fix: ANALYZE as an operator would run it, stat4 included.
	b.Run("stat4", func(b *testing.B) {
		if _, err := db.SQL().ExecContext(ctx, "ANALYZE"); err != nil {
			b.Fatal(err)
		}
		if n := count(b, db, "SELECT COUNT(*) FROM sqlite_stat4"); n == 0 {
			b.Fatal("no sqlite_stat4 rows")
		}
		run(b, db)
	})
	b.Run("stat1", func(b *testing.B) {
		if err := db.Analyze(ctx); err != nil {
			b.Fatal(err)
		}
		run(b, db)
	})
}

// TestStatisticsWithoutStat4 checks that Analyze, Close and Open leave
// sqlite_stat1 and no sqlite_stat4 samples.
func TestStatisticsWithoutStat4(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.SQLite)
	acct := newAccount(t, db, "Acme")
	for i := range 20 {
		newUser(t, db, acct.ID, fmt.Sprintf("u%d@example.com", i), fmt.Sprintf("User %d", i))
	}
	if err := db.Analyze(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM sqlite_stat1"); n == 0 {
		t.Fatal("sqlite_stat1: got no rows after Analyze")
	}
	if n := count(t, db, "SELECT COUNT(*) FROM sqlite_stat4"); n != 0 {
		t.Fatalf("sqlite_stat4: got %d rows after Analyze, want 0", n)
	}

	// Written by hand (or by an older version): Open deletes them.
	if _, err := db.SQL().ExecContext(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM sqlite_stat4"); n == 0 {
		t.Fatal("sqlite_stat4: ANALYZE wrote no rows; the test needs some")
	}
	db2, err := db.OpenAgain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, db2, "SELECT COUNT(*) FROM sqlite_stat4"); n != 0 {
		t.Fatalf("sqlite_stat4: got %d rows after Open, want 0", n)
	}

	// PRAGMA optimize on Close analyses tables it finds changed.
	for i := range 200 {
		newUser(t, db2, acct.ID, fmt.Sprintf("v%d@example.com", i), fmt.Sprintf("User %d", i))
	}
	if err := db2.Close(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM sqlite_stat4"); n != 0 {
		t.Fatalf("sqlite_stat4: got %d rows after Close, want 0", n)
	}
}
