package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// The notify.Tx conformance suite: what the notify service relies on, on
// both engines.

func nwrite(t testing.TB, db *store.DB, fn func(tx notify.Tx) error) {
	t.Helper()
	if err := db.Notify().Write(context.Background(), fn); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func setting(accountID, userID int64, next time.Time) notify.Setting {
	return notify.Setting{
		AccountID: accountID, UserID: userID, Enabled: true, StartDate: date("2025-03-10"), Frequency: notify.Weekly,
		Range: usage.Range3m, SendHour: 8, NextAt: next, CreatedAt: now, UpdatedAt: now,
	}
}

func putSetting(t testing.TB, db *store.DB, s notify.Setting) {
	t.Helper()
	nwrite(t, db, func(tx notify.Tx) error { return tx.PutSetting(context.Background(), s) })
}

func getSetting(t testing.TB, db *store.DB, accountID, userID int64) notify.Setting {
	t.Helper()
	var s notify.Setting
	err := db.Notify().Read(context.Background(), func(tx notify.Tx) (err error) {
		s, err = tx.SettingOf(context.Background(), accountID, userID)
		return err
	})
	if err != nil {
		t.Fatalf("setting of user %d: %v", userID, err)
	}
	return s
}

func pendingRun(accountID, userID int64, at time.Time) notify.Run {
	return notify.Run{
		AccountID: accountID, UserID: userID, ScheduledFor: at, Range: usage.Range3m, Status: notify.StatusPending,
		NextAttemptAt: at, MessageID: fmt.Sprintf("<run-%d-%d-%d@test>", accountID, userID, at.Unix()), CreatedAt: at, UpdatedAt: at,
	}
}

func insertRun(t testing.TB, db *store.DB, r notify.Run) notify.Run {
	t.Helper()
	nwrite(t, db, func(tx notify.Tx) error {
		created, err := tx.InsertRun(context.Background(), &r)
		if err == nil && !created {
			err = fmt.Errorf("run for %v exists", r.ScheduledFor)
		}
		return err
	})
	return r
}

func runsOf(t testing.TB, db *store.DB, accountID, userID int64) []notify.Run {
	t.Helper()
	var out []notify.Run
	err := db.Notify().Read(context.Background(), func(tx notify.Tx) (err error) {
		out, err = tx.RunsOf(context.Background(), accountID, userID, 0, 1000)
		return err
	})
	if err != nil {
		t.Fatalf("runs of user %d: %v", userID, err)
	}
	return out
}

func claim(t testing.TB, db *store.DB, at time.Time, owner string, limit int) []notify.Run {
	t.Helper()
	var out []notify.Run
	nwrite(t, db, func(tx notify.Tx) (err error) {
		out, err = tx.ClaimRuns(context.Background(), at, owner, at.Add(5*time.Minute), limit)
		return err
	})
	return out
}

func runIDs(runs []notify.Run) []int64 {
	ids := make([]int64, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	return ids
}

func TestNotificationSettings(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acct := newAccount(t, db, "Acme")
		ada := newUser(t, db, acct.ID, "ada@example.com", "Ada")
		other := newAccount(t, db, "Other")

		t.Run("MissingIsNotFound", func(t *testing.T) {
			err := db.Notify().Read(ctx, func(tx notify.Tx) error { _, err := tx.SettingOf(ctx, acct.ID, ada.ID); return err })
			wantCode(t, err, usher.ENOTFOUND)
		})
		t.Run("PutRoundTripsAndReplaces", func(t *testing.T) {
			s := setting(acct.ID, ada.ID, now.Add(time.Hour))
			s.LastRunFor = now.Add(-time.Hour)
			putSetting(t, db, s)
			if got := getSetting(t, db, acct.ID, ada.ID); got != s {
				t.Fatalf("got %+v, want %+v", got, s)
			}
			s.Frequency, s.Range, s.SendHour, s.StartDate = notify.Quarterly, usage.Range1y, 23, date("2025-01-31")
			s.Enabled, s.NextAt, s.UpdatedAt = false, time.Time{}, now.Add(time.Minute)
			putSetting(t, db, s)
			got := getSetting(t, db, acct.ID, ada.ID)
			if got != s || !got.NextAt.IsZero() {
				t.Fatalf("got %+v, want %+v with a zero NextAt", got, s)
			}
		})
		t.Run("OtherAccountIsNotFound", func(t *testing.T) {
			err := db.Notify().Read(ctx, func(tx notify.Tx) error { _, err := tx.SettingOf(ctx, other.ID, ada.ID); return err })
			wantCode(t, err, usher.ENOTFOUND)
			// Nor may a setting point at a user of another account.
			err = db.Notify().Write(ctx, func(tx notify.Tx) error { return tx.PutSetting(ctx, setting(other.ID, ada.ID, now)) })
			wantCode(t, err, usher.ENOTFOUND)
		})
		t.Run("UnknownUserIsNotFound", func(t *testing.T) {
			err := db.Notify().Write(ctx, func(tx notify.Tx) error { return tx.PutSetting(ctx, setting(acct.ID, ada.ID+1000, now)) })
			wantCode(t, err, usher.ENOTFOUND)
		})
	})
}

func TestDueSettingsAndAdvance(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := newAccount(t, db, "A")
		b := newAccount(t, db, "B")
		var users []usher.User
		for i, acct := range []usher.Account{a, a, b, b, b} {
			users = append(users, newUser(t, db, acct.ID, fmt.Sprintf("u%d@example.com", i), fmt.Sprintf("U%d", i)))
		}
		// Due, in order: users[2] (earliest), then users[0] and users[3] at
		// the same instant (by account, then user). users[1] is off, users[4]
		// is not due yet.
		putSetting(t, db, setting(a.ID, users[0].ID, now))
		off := setting(a.ID, users[1].ID, now.Add(-time.Hour))
		off.Enabled = false
		putSetting(t, db, off)
		putSetting(t, db, setting(b.ID, users[2].ID, now.Add(-time.Minute)))
		putSetting(t, db, setting(b.ID, users[3].ID, now))
		putSetting(t, db, setting(b.ID, users[4].ID, now.Add(time.Millisecond)))

		due := func(limit int) []int64 {
			var ids []int64
			nwrite(t, db, func(tx notify.Tx) error {
				ss, err := tx.DueSettings(ctx, now, limit)
				for _, s := range ss {
					ids = append(ids, s.UserID)
				}
				return err
			})
			return ids
		}
		if got, want := due(10), []int64{users[2].ID, users[0].ID, users[3].ID}; !slices.Equal(got, want) {
			t.Fatalf("due: got %v, want %v", got, want)
		}
		if got, want := due(2), []int64{users[2].ID, users[0].ID}; !slices.Equal(got, want) {
			t.Fatalf("due with limit 2: got %v, want %v", got, want)
		}

		t.Run("AdvanceOnlyFromTheExpectedNextAt", func(t *testing.T) {
			s := setting(a.ID, users[0].ID, now.Add(7*24*time.Hour))
			s.LastRunFor, s.UpdatedAt = now, now.Add(time.Second)
			var stale, moved, again bool
			nwrite(t, db, func(tx notify.Tx) (err error) {
				if stale, err = tx.AdvanceSetting(ctx, s, now.Add(-time.Hour)); err != nil {
					return err
				}
				if moved, err = tx.AdvanceSetting(ctx, s, now); err != nil {
					return err
				}
				again, err = tx.AdvanceSetting(ctx, s, now)
				return err
			})
			if stale || !moved || again {
				t.Fatalf("advance: stale %v, moved %v, again %v; want false, true, false", stale, moved, again)
			}
			got := getSetting(t, db, a.ID, users[0].ID)
			if !got.NextAt.Equal(s.NextAt) || !got.LastRunFor.Equal(now) || !got.UpdatedAt.Equal(s.UpdatedAt) || !got.CreatedAt.Equal(now) {
				t.Fatalf("after advance: got %+v", got)
			}
		})
		t.Run("AdvanceLeavesASettingTurnedOff", func(t *testing.T) {
			var moved bool
			nwrite(t, db, func(tx notify.Tx) (err error) {
				moved, err = tx.AdvanceSetting(ctx, setting(a.ID, users[1].ID, now.Add(time.Hour)), now.Add(-time.Hour))
				return err
			})
			if moved {
				t.Fatal("advanced a setting that is off")
			}
		})
	})
}

func TestNotificationRuns(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acct := newAccount(t, db, "Acme")
		ada := newUser(t, db, acct.ID, "ada@example.com", "Ada")
		bob := newUser(t, db, acct.ID, "bob@example.com", "Bob")
		putSetting(t, db, setting(acct.ID, ada.ID, now))
		putSetting(t, db, setting(acct.ID, bob.ID, now))

		first := insertRun(t, db, pendingRun(acct.ID, ada.ID, now))
		if first.ID == 0 {
			t.Fatal("InsertRun set no id")
		}

		t.Run("RoundTrips", func(t *testing.T) {
			got := runsOf(t, db, acct.ID, ada.ID)
			if len(got) != 1 || got[0] != first {
				t.Fatalf("got %+v, want %+v", got, first)
			}
			if !got[0].LeaseUntil.IsZero() || !got[0].DeliveredAt.IsZero() {
				t.Fatalf("unset times: got lease %v delivered %v, want zero", got[0].LeaseUntil, got[0].DeliveredAt)
			}
		})
		t.Run("SecondRunForAnOccurrenceIsRefusedWithoutAbortingTheTransaction", func(t *testing.T) {
			dup := pendingRun(acct.ID, ada.ID, now)
			dup.MessageID = "<other@test>"
			var created bool
			nwrite(t, db, func(tx notify.Tx) (err error) {
				if created, err = tx.InsertRun(ctx, &dup); err != nil {
					return err
				}
				// The transaction must still work after the conflict.
				_, err = tx.SettingOf(ctx, acct.ID, ada.ID)
				return err
			})
			if created || dup.ID != 0 {
				t.Fatalf("got created %v id %d, want neither", created, dup.ID)
			}
			if got := runsOf(t, db, acct.ID, ada.ID); len(got) != 1 || got[0].MessageID != first.MessageID {
				t.Fatalf("runs: got %+v", got)
			}
		})
		t.Run("RunWithoutSettingIsNotFound", func(t *testing.T) {
			carl := newUser(t, db, acct.ID, "carl@example.com", "Carl")
			r := pendingRun(acct.ID, carl.ID, now)
			err := db.Notify().Write(ctx, func(tx notify.Tx) error { _, err := tx.InsertRun(ctx, &r); return err })
			wantCode(t, err, usher.ENOTFOUND)
		})

		t.Run("ClaimTakesOnlyClaimableRunsInOrder", func(t *testing.T) {
			later := insertRun(t, db, pendingRun(acct.ID, bob.ID, now.Add(time.Minute)))   // not due yet
			early := insertRun(t, db, pendingRun(acct.ID, bob.ID, now.Add(-time.Minute)))  // due before first
			done := insertRun(t, db, pendingRun(acct.ID, bob.ID, now.Add(-2*time.Minute))) // finished below
			got := claim(t, db, now, "w1", 1)
			if !slices.Equal(runIDs(got), []int64{done.ID}) {
				t.Fatalf("claim 1: got %v, want %v", runIDs(got), []int64{done.ID})
			}
			r := got[0]
			if r.Status != notify.StatusSending || r.LeaseOwner != "w1" || !r.LeaseUntil.Equal(now.Add(5*time.Minute)) || r.Attempts != 1 || !r.UpdatedAt.Equal(now) {
				t.Fatalf("claimed run: got %+v", r)
			}
			r.Status, r.DeliveredAt, r.LeaseOwner, r.LeaseUntil, r.UpdatedAt = notify.StatusDelivered, now, "", time.Time{}, now
			r.InactiveUsers, r.InactiveSeats = 3, 4
			nwrite(t, db, func(tx notify.Tx) error { return tx.FinishRun(ctx, r, "w1") })

			got = claim(t, db, now, "w2", 10)
			if !slices.Equal(runIDs(got), []int64{early.ID, first.ID}) {
				t.Fatalf("claim 2: got %v, want %v (not %d, not yet due; not %d, delivered)", runIDs(got), []int64{early.ID, first.ID}, later.ID, done.ID)
			}
			if got := claim(t, db, now.Add(time.Minute), "w3", 10); !slices.Equal(runIDs(got), []int64{later.ID}) {
				t.Fatalf("claim 3: got %v, want only %d: the others are leased", runIDs(got), later.ID)
			}
			// A lease that has run out is claimable: its worker died.
			got = claim(t, db, now.Add(5*time.Minute+time.Millisecond), "w4", 10)
			if !slices.Equal(runIDs(got), []int64{early.ID, first.ID}) || got[0].Attempts != 2 {
				t.Fatalf("claim after lease: got %+v", got)
			}
			for _, r := range runsOf(t, db, acct.ID, bob.ID) {
				if r.ID == done.ID && (r.Status != notify.StatusDelivered || r.InactiveUsers != 3 || r.InactiveSeats != 4 || !r.DeliveredAt.Equal(now) || r.LeaseOwner != "") {
					t.Fatalf("finished run: got %+v", r)
				}
			}

			t.Run("FinishUnderAnotherLeaseIsConflict", func(t *testing.T) {
				stale := got[0]
				stale.Status = notify.StatusDelivered
				err := db.Notify().Write(ctx, func(tx notify.Tx) error { return tx.FinishRun(ctx, stale, "w2") })
				wantCode(t, err, usher.ECONFLICT)
				stale.ID += 1000
				err = db.Notify().Write(ctx, func(tx notify.Tx) error { return tx.FinishRun(ctx, stale, "w4") })
				wantCode(t, err, usher.ENOTFOUND)
			})
			t.Run("FinishedRunsAreNeverClaimedAgain", func(t *testing.T) {
				for _, r := range got {
					r.Status, r.LastError, r.LeaseOwner, r.LeaseUntil = notify.StatusFailed, "gave up", "", time.Time{}
					nwrite(t, db, func(tx notify.Tx) error { return tx.FinishRun(ctx, r, "w4") })
				}
				if got := claim(t, db, now.Add(5*time.Minute+time.Second), "w5", 10); len(got) != 0 {
					t.Fatalf("got %v, want nothing: w3's run is leased, the rest finished", runIDs(got))
				}
			})
		})

		t.Run("RunsOfPagesNewestFirstWithinTheUser", func(t *testing.T) {
			all := runsOf(t, db, acct.ID, bob.ID)
			if len(all) != 3 || !slices.IsSortedFunc(all, func(a, b notify.Run) int { return int(b.ID - a.ID) }) {
				t.Fatalf("got %v, want 3 runs newest first", runIDs(all))
			}
			var page []notify.Run
			err := db.Notify().Read(ctx, func(tx notify.Tx) (err error) {
				page, err = tx.RunsOf(ctx, acct.ID, bob.ID, all[0].ID, 1)
				return err
			})
			if err != nil || !slices.Equal(runIDs(page), runIDs(all[1:2])) {
				t.Fatalf("page: got %v %v, want %v", runIDs(page), err, runIDs(all[1:2]))
			}
			other := newAccount(t, db, "Other")
			if got := runsOf(t, db, other.ID, bob.ID); len(got) != 0 {
				t.Fatalf("another account sees %v", runIDs(got))
			}
		})

		t.Run("DeletingTheUserDeletesSettingAndRuns", func(t *testing.T) {
			write(t, db, func(tx *store.Tx) error { return tx.DeleteUser(ctx, acct.ID, bob.ID) })
			if n := count(t, db, "SELECT COUNT(*) FROM notification_runs WHERE user_id = %d", bob.ID); n != 0 {
				t.Fatalf("%d runs left", n)
			}
			if n := count(t, db, "SELECT COUNT(*) FROM notification_settings WHERE user_id = %d", bob.ID); n != 0 {
				t.Fatalf("%d settings left", n)
			}
		})
	})
}

// claimAll claims until nothing is left and returns what each claim got.
func claimAll(t *testing.T, db *store.DB, owner string, at time.Time, batch int, out chan<- []notify.Run) {
	for {
		var runs []notify.Run
		err := db.Notify().Write(context.Background(), func(tx notify.Tx) (err error) {
			runs, err = tx.ClaimRuns(context.Background(), at, owner, at.Add(time.Hour), batch)
			return err
		})
		if err != nil {
			t.Errorf("%s: claim: %v", owner, err)
			return
		}
		if len(runs) == 0 {
			return
		}
		out <- runs
	}
}

// checkClaimedOnce fails unless the claims cover every one of want runs
// exactly once.
func checkClaimedOnce(t *testing.T, claims <-chan []notify.Run, want int) {
	t.Helper()
	seen := map[int64]string{}
	for runs := range claims {
		for _, r := range runs {
			if prev, ok := seen[r.ID]; ok {
				t.Fatalf("run %d claimed by %s and again by %s", r.ID, prev, r.LeaseOwner)
			}
			seen[r.ID] = r.LeaseOwner
		}
	}
	if len(seen) != want {
		t.Fatalf("claimed %d runs, want %d", len(seen), want)
	}
}

func seedRuns(t *testing.T, db *store.DB, n int) {
	t.Helper()
	acct := newAccount(t, db, "Acme")
	for i := range n / 10 {
		u := newUser(t, db, acct.ID, fmt.Sprintf("admin%d@example.com", i), fmt.Sprintf("Admin %d", i))
		putSetting(t, db, setting(acct.ID, u.ID, now))
		for k := range 10 {
			insertRun(t, db, pendingRun(acct.ID, u.ID, now.Add(-time.Duration(k)*time.Hour)))
		}
	}
}

// TestConcurrentClaimsNeverShareARun claims from many transactions at once:
// on PostgreSQL each on its own connection, so the SKIP LOCKED path races
// for real.
func TestConcurrentClaimsNeverShareARun(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const runs = 400
		seedRuns(t, db, runs)
		claims := make(chan []notify.Run, runs)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() { claimAll(t, db, fmt.Sprintf("worker%d", i), now, 7, claims) })
		}
		wg.Wait()
		close(claims)
		checkClaimedOnce(t, claims, runs)
	})
}

// TestConcurrentClaimsFromTwoSQLiteProcesses opens one SQLite file twice, as
// two processes would: each has its own writer, and SQLite's file lock
// orders their claims.
func TestConcurrentClaimsFromTwoSQLiteProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "usher.db")
	var dbs []*store.DB
	for range 2 {
		db, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		dbs = append(dbs, db)
	}
	const runs = 300
	seedRuns(t, dbs[0], runs)
	claims := make(chan []notify.Run, runs)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() { claimAll(t, dbs[i%2], fmt.Sprintf("process%d/worker%d", i%2, i), now, 5, claims) })
	}
	wg.Wait()
	close(claims)
	checkClaimedOnce(t, claims, runs)
}

// TestAddresseesAnswerWhatSettingOfAccountByIDAndUserWithRolesAnswer: a
// claim reads the settings, accounts, users and grants of its runs in one
// statement; it must agree with the statements it replaces, key by key.
func TestAddresseesAnswerWhatSettingOfAccountByIDAndUserWithRolesAnswer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acct, other := newAccount(t, db, "Acme"), newAccount(t, db, "Other")
		ada := newUser(t, db, acct.ID, "ada@example.com", "Ada")
		bob := newUser(t, db, acct.ID, "bob@example.com", "Bob")
		eve := newUser(t, db, other.ID, "eve@example.com", "Eve")
		none := newUser(t, db, acct.ID, "none@example.com", "No Setting")
		sub := newSubscription(t, db, acct.ID, "C-1", 5)
		write(t, db, func(tx *store.Tx) error {
			return errors.Join(
				tx.GrantRole(ctx, acct.ID, usher.RoleGrant{UserID: ada.ID, Role: usher.RolePrimaryAdmin}),
				tx.GrantRole(ctx, acct.ID, usher.RoleGrant{UserID: ada.ID, Role: usher.RoleContractManager, SubscriptionID: sub.ID}),
				tx.GrantRole(ctx, other.ID, usher.RoleGrant{UserID: eve.ID, Role: usher.RolePrimaryAdmin}),
			)
		})
		for _, u := range []usher.User{ada, bob, eve} {
			putSetting(t, db, setting(u.AccountID, u.ID, now.Add(time.Hour)))
		}
		key := func(accountID, userID int64) notify.UserKey {
			return notify.UserKey{AccountID: accountID, UserID: userID}
		}
		keys := []notify.UserKey{key(acct.ID, ada.ID), key(acct.ID, bob.ID), key(other.ID, eve.ID), key(acct.ID, none.ID), key(other.ID, ada.ID)}
		err := db.Notify().Read(ctx, func(tx notify.Tx) error {
			got, err := tx.Addressees(ctx, keys)
			if err != nil {
				return err
			}
			if len(got) != 3 {
				t.Errorf("got %d addressees, want 3 (ada, bob, eve): %+v", len(got), got)
			}
			for _, k := range keys {
				a, ok := got[k]
				st, err := tx.SettingOf(ctx, k.AccountID, k.UserID)
				if usher.ErrorCode(err) == usher.ENOTFOUND {
					if ok {
						t.Errorf("%v: got %+v, want none (no setting)", k, a)
					}
					continue
				} else if err != nil {
					return err
				}
				u, grants, err := tx.UserWithRoles(ctx, k.AccountID, k.UserID)
				if err != nil {
					return err
				}
				ac, err := tx.AccountByID(ctx, k.AccountID)
				if err != nil {
					return err
				}
				if !ok || a.Setting != st || a.Account != ac || a.User != u || !slices.Equal(a.Grants, grants) {
					t.Errorf("%v: got %+v (found %v), want setting %+v, account %+v, user %+v, grants %+v", k, a, ok, st, ac, u, grants)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
