package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// upgradeNow is when the upgraded database is read.
var upgradeNow = time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)

// upgradeIDs are the rows the seeds made.
type upgradeIDs struct {
	account, admin, user, idle, sub int64
}

// upgradeSeeds write, in each version's own schema and with plain SQL as an
// older Usher would have, the data that version introduced. A version with
// no entry added no tables worth filling.
var upgradeSeeds = map[int]func(ctx context.Context, db *store.DB, ids *upgradeIDs) error{
	1: func(ctx context.Context, db *store.DB, ids *upgradeIDs) error {
		created := upgradeNow.AddDate(-1, 0, 0).UnixMilli()
		q := func(query string, args ...any) error {
			_, err := db.SQL().ExecContext(ctx, db.Rebind(query), args...)
			return err
		}
		id := func(query string, args ...any) (int64, error) {
			var v int64
			err := db.SQL().QueryRowContext(ctx, db.Rebind(query), args...).Scan(&v)
			return v, err
		}
		var err error
		if ids.account, err = id(`INSERT INTO accounts (name, time_zone, created_at) VALUES ('Acme', 'Europe/Berlin', ?) RETURNING id`, created); err != nil {
			return err
		}
		user := func(email, name string) (int64, error) {
			return id(`INSERT INTO users (account_id, email, name, name_key, status, created_at, updated_at)
				VALUES (?, ?, ?, lower(?), 'active', ?, ?) RETURNING id`, ids.account, email, name, name, created, created)
		}
		if ids.admin, err = user("ada@acme.test", "Ada Admin"); err != nil {
			return err
		}
		if ids.user, err = user("bo@acme.test", "Bo Busy"); err != nil {
			return err
		}
		if ids.idle, err = user("cy@acme.test", "Cy Idle"); err != nil {
			return err
		}
		if err := q(`INSERT INTO role_grants (account_id, user_id, role) VALUES (?, ?, 'primary_admin')`, ids.account, ids.admin); err != nil {
			return err
		}
		if ids.sub, err = id(`INSERT INTO subscriptions (account_id, product_id, plan, seats, seats_used, contract_number, term_start, term_end, created_at)
			SELECT ?, id, 'standard', 5, 2, 'C-1', '2025-01-01', '2027-01-01', ? FROM products WHERE code = 'modelstudio' RETURNING id`, ids.account, created); err != nil {
			return err
		}
		for _, u := range []int64{ids.user, ids.idle} {
			if err := q(`INSERT INTO assignments (account_id, user_id, subscription_id, assigned_at) VALUES (?, ?, ?, ?)`, ids.account, u, ids.sub, created); err != nil {
				return err
			}
		}
		if err := q(`INSERT INTO assignment_services (account_id, user_id, subscription_id, service_code) VALUES (?, ?, ?, 'rendering')`, ids.account, ids.user, ids.sub); err != nil {
			return err
		}
		return q(`INSERT INTO audit_log (account_id, actor_id, actor_email, action, target_user_id, target_email, subscription_id, before, after, at)
			VALUES (?, ?, 'ada@acme.test', 'seat.assign', ?, 'bo@acme.test', ?, NULL, '{"services":["rendering"]}', ?)`,
			ids.account, ids.admin, ids.user, ids.sub, created)
	},
	2: func(ctx context.Context, db *store.DB, ids *upgradeIDs) error {
		used := upgradeNow.AddDate(0, 0, -3)
		day := usage.DayOf(used, time.UTC)
		for _, stmt := range []struct {
			q    string
			args []any
		}{
			{`INSERT INTO usage_events (account_id, user_id, product_id, at) SELECT ?, ?, id, ? FROM products WHERE code = 'modelstudio'`, []any{ids.account, ids.user, used.UnixMilli()}},
			{`INSERT INTO usage_days (account_id, user_id, product_id, day) SELECT ?, ?, id, ? FROM products WHERE code = 'modelstudio'`, []any{ids.account, ids.user, int64(day)}},
			{`INSERT INTO usage_rollups (account_id, user_id, product_id, first_day, last_day, days) SELECT ?, ?, id, ?, ?, 1 FROM products WHERE code = 'modelstudio'`, []any{ids.account, ids.user, int64(day), int64(day)}},
			{`INSERT INTO usage_processed (account_id, processed_at) VALUES (?, ?)`, []any{ids.account, used.UnixMilli()}},
			{`UPDATE assignments SET last_used_at = ? WHERE account_id = ? AND user_id = ?`, []any{used.UnixMilli(), ids.account, ids.user}},
		} {
			if _, err := db.SQL().ExecContext(ctx, db.Rebind(stmt.q), stmt.args...); err != nil {
				return fmt.Errorf("%s: %w", stmt.q, err)
			}
		}
		return nil
	},
	3: func(ctx context.Context, db *store.DB, ids *upgradeIDs) error {
		next := time.Date(2026, 3, 16, 7, 0, 0, 0, time.UTC) // Monday 08:00 in Berlin
		last := next.AddDate(0, 0, -7)
		_, err := db.SQL().ExecContext(ctx, db.Rebind(`INSERT INTO notification_settings
			(account_id, user_id, enabled, start_date, frequency, inactive_range, send_hour, next_at, last_run_for, created_at, updated_at)
			VALUES (?, ?, TRUE, '2026-03-02', 'weekly', '3m', 8, ?, ?, ?, ?)`),
			ids.account, ids.admin, next.UnixMilli(), last.UnixMilli(), last.UnixMilli(), last.UnixMilli())
		if err != nil {
			return err
		}
		_, err = db.SQL().ExecContext(ctx, db.Rebind(`INSERT INTO notification_runs
			(account_id, user_id, scheduled_for, inactive_range, status, attempts, next_attempt_at, message_id, inactive_users, inactive_seats,
			 last_error, lease_owner, lease_until, delivered_at, created_at, updated_at)
			VALUES (?, ?, ?, '3m', 'delivered', 1, ?, '<run@usher.example.com>', 1, 1, '', '', 0, ?, ?, ?)`),
			ids.account, ids.admin, last.UnixMilli(), last.UnixMilli(), last.UnixMilli(), last.UnixMilli(), last.UnixMilli())
		return err
	},
}

// TestUpgradeFromEveryEarlierVersion builds a database at each earlier
// schema version, filled as that version would have, migrates it to the
// latest and reads it back through the domain services, on both engines.
func TestUpgradeFromEveryEarlierVersion(t *testing.T) {
	for _, engine := range storetest.Engines {
		versions := store.VersionsForTest(engine)
		latest := versions[len(versions)-1]
		for _, from := range versions[:len(versions)-1] {
			t.Run(fmt.Sprintf("%s/from%04d", engine, from), func(t *testing.T) {
				ctx := context.Background()
				db := storetest.OpenEmpty(t, engine)
				var ids upgradeIDs
				var seeded []int
				for _, v := range versions {
					if v > from {
						break
					}
					if err := db.MigrateToForTest(ctx, v); err != nil {
						t.Fatalf("migrate to %d: %v", v, err)
					}
					if seed := upgradeSeeds[v]; seed != nil {
						if err := seed(ctx, db, &ids); err != nil {
							t.Fatalf("seed version %d: %v", v, err)
						}
						seeded = append(seeded, v)
					}
				}
				if got, err := db.SchemaVersion(ctx); err != nil || got != from {
					t.Fatalf("built version %d, %v; want %d", got, err, from)
				}
				if err := db.Migrate(ctx); err != nil {
					t.Fatalf("migrate from %d: %v", from, err)
				}
				if got, err := db.SchemaVersion(ctx); err != nil || got != latest {
					t.Fatalf("upgraded to %d, %v; want %d", got, err, latest)
				}
				checkUpgraded(t, db, ids, seeded)
			})
		}
	}
}

func checkUpgraded(t *testing.T, db *store.DB, ids upgradeIDs, seeded []int) {
	t.Helper()
	ctx := context.Background()
	clock := func() time.Time { return upgradeNow }
	svc := access.New(db.Access(), clock)
	admin, err := svc.ActorFor(ctx, ids.account, ids.admin)
	if err != nil || admin.Email != "ada@acme.test" {
		t.Fatalf("the primary admin: %+v, %v", admin, err)
	}
	sub, err := svc.Subscription(ctx, admin, ids.sub)
	if err != nil || sub.Seats != 5 || sub.SeatsUsed != 2 || sub.ContractNumber != "C-1" {
		t.Fatalf("subscription: %+v, %v; want C-1 with 2 of 5 seats used", sub, err)
	}
	acc, err := svc.Access(ctx, admin, ids.user)
	if err != nil {
		t.Fatal(err)
	}
	var held bool
	for _, s := range acc.Subscriptions {
		if s.Subscription.ID == ids.sub {
			// Seats from before groups are direct.
			held = s.Assigned && slices.Equal(s.Services, []string{"rendering"}) && len(s.Sources) == 1 && s.Sources[0].Direct
		}
	}
	if !held {
		t.Fatalf("bo's access: %+v; want the direct seat with rendering", acc)
	}
	log, err := svc.AuditLog(ctx, admin, 0, "", "", 10)
	if err != nil || len(log.Items) != 1 || log.Items[0].Action != "seat.assign" {
		t.Fatalf("audit log: %+v, %v; want the one seat.assign", log, err)
	}

	use := usage.New(db.Usage(), usage.Config{Now: clock})
	rep, err := use.Report(ctx, admin, usage.ReportFilter{Status: "all", Range: usage.Range3m})
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]string{}
	for _, r := range rep.Rows {
		last[r.Email] = "never"
		if r.LastUsed != nil {
			last[r.Email] = r.LastUsed.String()
		}
	}
	wantBo := "never"
	if slices.Contains(seeded, 2) {
		wantBo = upgradeNow.AddDate(0, 0, -3).Format("2006-01-02")
	}
	if len(rep.Rows) != 2 || last["bo@acme.test"] != wantBo || last["cy@acme.test"] != "never" {
		t.Fatalf("report: last use %v; want bo %s, cy never", last, wantBo)
	}
	// The dashboard's monthly use is filled from the days of use kept
	// before it was counted at ingest.
	dash, err := use.Dashboard(ctx, admin)
	if err != nil || len(dash.Products) != 1 {
		t.Fatalf("dashboard: %+v, %v; want one product's chart", dash, err)
	}
	wantActive := 0
	if slices.Contains(seeded, 2) {
		wantActive = 1
	}
	if got := dash.Products[0].Active[usage.DashboardMonths-1]; got != wantActive {
		t.Fatalf("dashboard: %d active seats this month, want %d", got, wantActive)
	}

	ns := notify.New(db.Notify(), nil, use, notify.Config{Now: clock})
	st, err := ns.Setting(ctx, admin)
	if !slices.Contains(seeded, 3) {
		if usher.ErrorCode(err) != usher.ENOTFOUND {
			t.Fatalf("notification setting before version 3: %+v, %v; want none", st, err)
		}
		return
	}
	if err != nil || !st.Enabled || st.Frequency != notify.Weekly {
		t.Fatalf("notification setting: %+v, %v", st, err)
	}
	runs, err := ns.Runs(ctx, admin, "", 10)
	if err != nil || len(runs.Items) != 1 || runs.Items[0].Status != notify.StatusDelivered {
		t.Fatalf("runs: %+v, %v; want one delivered", runs, err)
	}
}
