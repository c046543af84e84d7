package notify_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeMailer records messages; its next failures attempts fail.
type fakeMailer struct {
	mu       sync.Mutex
	sent     []notify.Message
	failures int
}

func (f *fakeMailer) Send(ctx context.Context, m notify.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures > 0 {
		f.failures--
		return errors.New("421 service not available")
	}
	f.sent = append(f.sent, m)
	return nil
}

func (f *fakeMailer) failNext(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = n
}

func (f *fakeMailer) messages() []notify.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

type fakeInactivity struct{ users, seats int }

func (f fakeInactivity) InactiveSummary(ctx context.Context, accountID int64, r usage.Range, first int) (usage.InactiveSummary, error) {
	s := usage.InactiveSummary{Range: r, InactiveUsers: f.users, InactiveSeats: f.seats, ByProduct: []usage.ProductSummary{}, FirstUsers: []usher.User{}}
	for i := range min(f.users, first) {
		s.FirstUsers = append(s.FirstUsers, usher.User{ID: int64(100 + i), Name: fmt.Sprintf("User %d", i), Email: fmt.Sprintf("u%d@example.com", i)})
	}
	return s, nil
}

func hour(h int) *int { return &h }

func weekly(start string) notify.Input {
	return notify.Input{StartDate: date(start), Frequency: notify.Weekly, Range: usage.Range3m}
}

func mustSet(t *testing.T, f *fixture, a usher.Actor, in notify.Input) notify.Setting {
	t.Helper()
	s, _, err := f.svc.Set(context.Background(), a, in)
	if err != nil {
		t.Fatalf("set: %v", err)
	}
	return s
}

func mustPlan(t *testing.T, svc *notify.Service, want int) {
	t.Helper()
	n, err := svc.PlanDue(context.Background())
	if err != nil {
		t.Fatalf("plan due: %v", err)
	}
	if n != want {
		t.Fatalf("plan due: got %d runs, want %d", n, want)
	}
}

func mustSend(t *testing.T, svc *notify.Service, want int) {
	t.Helper()
	n, err := svc.SendDue(context.Background(), "test", 100)
	if err != nil {
		t.Fatalf("send due: %v", err)
	}
	if n != want {
		t.Fatalf("send due: got %d delivered, want %d", n, want)
	}
}

func TestOnlyPrimaryAdminsManageNotifications(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 0)
		ctx := context.Background()
		for _, role := range []usher.Role{usher.RoleSecondaryAdmin, usher.RoleContractManager, usher.RoleSoftwareCoordinator} {
			a := f.addUser(role)
			t.Run(string(role), func(t *testing.T) {
				_, _, err := f.svc.Set(ctx, a, weekly("2026-01-20"))
				_, err2 := f.svc.Setting(ctx, a)
				_, err3 := f.svc.TurnOff(ctx, a)
				_, err4 := f.svc.Runs(ctx, a, "", 0)
				for _, err := range []error{err, err2, err3, err4} {
					if usher.ErrorCode(err) != usher.EFORBIDDEN {
						t.Fatalf("got %v, want forbidden", err)
					}
					if got, want := usher.ErrorMessage(err), "only primary admins can set up usage notifications"; got != want {
						t.Fatalf("got message %q, want %q", got, want)
					}
				}
			})
		}
		if got := f.auditActions(); len(got) != 0 {
			t.Fatalf("audited %v, want nothing", got)
		}
	})
}

func TestSetValidation(t *testing.T) {
	tests := []struct {
		name string
		prev *notify.Input // set before, on the day before the test
		in   notify.Input
		want []string // fields with problems
	}{
		{"EverythingWrong", nil, notify.Input{Frequency: "daily", Range: "2w", SendHour: hour(24)}, []string{"start_date", "frequency", "range", "send_hour"}},
		{"StartYesterday", nil, weekly("2026-01-13"), []string{"start_date"}},
		{"StartTodayInTheAccountsZone", nil, weekly("2026-01-14"), nil},
		{"NegativeHour", nil, notify.Input{StartDate: date("2026-01-20"), Frequency: notify.Monthly, Range: usage.Range1y, SendHour: hour(-1)}, []string{"send_hour"}},
		{"EditKeepingAPastStart", &notify.Input{StartDate: date("2026-01-13"), Frequency: notify.Weekly, Range: usage.Range30d},
			notify.Input{StartDate: date("2026-01-13"), Frequency: notify.Monthly, Range: usage.Range6m}, nil},
		{"EditMovingToAnotherPastStart", &notify.Input{StartDate: date("2026-01-13"), Frequency: notify.Weekly, Range: usage.Range30d},
			notify.Input{StartDate: date("2026-01-12"), Frequency: notify.Weekly, Range: usage.Range30d}, []string{"start_date"}},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				f := newFixture(t, db, 0)
				if tt.prev != nil {
					f.clock.Set(start.Add(-24 * time.Hour))
					mustSet(t, f, f.admin, *tt.prev)
					f.clock.Set(start)
				}
				_, _, err := f.svc.Set(context.Background(), f.admin, tt.in)
				var got []string
				for _, fe := range usher.ErrorFields(err) {
					got = append(got, fe.Field)
					if fe.Reason == "" {
						t.Errorf("%s: no reason", fe.Field)
					}
				}
				if !slices.Equal(got, tt.want) {
					t.Fatalf("got problems %v (%v), want %v", got, err, tt.want)
				}
				if tt.want != nil && usher.ErrorCode(err) != usher.EINVALID {
					t.Fatalf("got code %s, want invalid", usher.ErrorCode(err))
				}
			})
		}
	})
}

func TestValidationListsAllowedValues(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 0)
		_, _, err := f.svc.Set(context.Background(), f.admin, notify.Input{StartDate: date("2026-01-13"), Frequency: "daily", Range: "2w"})
		want := map[string]string{
			"start_date": "must be today (2026-01-14 in Europe/Berlin) or later",
			"frequency":  "must be one of weekly, biweekly, monthly, quarterly",
			"range":      "must be one of 30d, 3m, 6m, 9m, 1y",
		}
		for _, fe := range usher.ErrorFields(err) {
			if want[fe.Field] != fe.Reason {
				t.Errorf("%s: got %q, want %q", fe.Field, fe.Reason, want[fe.Field])
			}
		}
	})
}

func TestTurnOnEditTurnOff(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 0)
		ctx := context.Background()
		if _, err := f.svc.Setting(ctx, f.admin); usher.ErrorCode(err) != usher.ENOTFOUND {
			t.Fatalf("before set up: got %v, want not found", err)
		}
		s, on, err := f.svc.Set(ctx, f.admin, weekly("2026-01-20"))
		if err != nil || !on {
			t.Fatalf("turn on: got %v %v, want turned on", on, err)
		}
		if want := utc("2026-01-20T07:00:00Z"); !s.NextAt.Equal(want) || s.SendHour != notify.DefaultSendHour {
			t.Fatalf("turn on: next at %v hour %d, want %v at 8", s.NextAt, s.SendHour, want)
		}
		s, on, err = f.svc.Set(ctx, f.admin, notify.Input{StartDate: date("2026-01-31"), Frequency: notify.Monthly, Range: usage.Range1y, SendHour: hour(6)})
		if err != nil || on {
			t.Fatalf("edit: got %v %v, want edited", on, err)
		}
		if want := utc("2026-01-31T05:00:00Z"); !s.NextAt.Equal(want) {
			t.Fatalf("edit: next at %v, want %v", s.NextAt, want)
		}
		s, on, _ = f.svc.Set(ctx, f.admin, notify.Input{StartDate: date("2026-01-31"), Frequency: notify.Monthly, Range: usage.Range1y})
		if on || s.SendHour != 6 {
			t.Fatalf("edit without hour: got hour %d turned on %v, want 6 and edited", s.SendHour, on)
		}
		s, err = f.svc.TurnOff(ctx, f.admin)
		if err != nil || s.Enabled || !s.NextAt.IsZero() {
			t.Fatalf("turn off: got %+v %v", s, err)
		}
		if _, err := f.svc.TurnOff(ctx, f.admin); err != nil {
			t.Fatalf("turn off again: %v", err)
		}
		s, on, err = f.svc.Set(ctx, f.admin, notify.Input{StartDate: date("2026-01-31"), Frequency: notify.Monthly, Range: usage.Range1y})
		if err != nil || !on || !s.Enabled {
			t.Fatalf("on again: got %v %v", on, err)
		}
		want := []string{"notification.turn_on", "notification.edit", "notification.edit", "notification.turn_off", "notification.turn_on"}
		if got := f.auditActions(); !slices.Equal(got, want) {
			t.Fatalf("audit: got %v, want %v", got, want)
		}
		e := f.auditEntries()[1]
		if e.ActorID != f.admin.UserID || e.TargetUserID != f.admin.UserID || len(e.Before) == 0 || len(e.After) == 0 {
			t.Fatalf("audit entry: got %+v", e)
		}
	})
}

func TestDeliversEachOccurrenceOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 12)
		mustSet(t, f, f.admin, weekly("2026-01-20"))
		mustPlan(t, f.svc, 0)
		f.clock.Set(utc("2026-01-20T07:00:00Z"))
		mustPlan(t, f.svc, 1)
		mustPlan(t, f.svc, 0)
		mustSend(t, f.svc, 1)
		mustSend(t, f.svc, 0)
		msgs := f.mailer.messages()
		m := msgs[0]
		if want := fmt.Sprintf("<run-%d-%d-1768892400@usher.example.com>", f.acct.ID, f.admin.UserID); m.MessageID != want {
			t.Errorf("message id: got %q", m.MessageID)
		}
		if m.ReportURL != "https://usher.example.com/reports/usage?status=inactive&range=3m" {
			t.Errorf("report url: got %q", m.ReportURL)
		}
		if m.To.Email != f.admin.Email || m.Account.Name != "Demo Co" || m.Summary.InactiveUsers != 12 || len(m.Summary.FirstUsers) != 10 {
			t.Errorf("message: got %+v", m)
		}
		r := f.runs()[0]
		if r.Status != notify.StatusDelivered || r.Attempts != 1 || r.InactiveUsers != 12 || r.InactiveSeats != 24 || r.LeaseOwner != "" {
			t.Errorf("run: got %+v", r)
		}
		s, _ := f.svc.Setting(context.Background(), f.admin)
		if want := utc("2026-01-27T07:00:00Z"); !s.NextAt.Equal(want) {
			t.Errorf("next at: got %v, want %v", s.NextAt, want)
		}
	})
}

func TestNoButtonLinkWhenNobodyIsInactive(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 0)
		mustSet(t, f, f.admin, weekly("2026-01-14"))
		mustPlan(t, f.svc, 1) // today's 08:00 has passed: it goes at once
		mustSend(t, f.svc, 1)
		if m := f.mailer.messages()[0]; m.ReportURL != "" || m.SettingsURL != "https://usher.example.com/usage-notifications" {
			t.Fatalf("got report url %q settings url %q", m.ReportURL, m.SettingsURL)
		}
	})
}

func TestEditAfterTodaysEmailDoesNotSendAgain(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 1)
		mustSet(t, f, f.admin, weekly("2026-01-14"))
		mustPlan(t, f.svc, 1)
		mustSend(t, f.svc, 1)
		f.clock.Add(time.Hour)
		in := weekly("2026-01-14")
		in.Range = usage.Range1y
		s := mustSet(t, f, f.admin, in)
		if want := utc("2026-01-21T07:00:00Z"); !s.NextAt.Equal(want) {
			t.Fatalf("next at: got %v, want %v", s.NextAt, want)
		}
		// Off and on again the same day: still no second email for today.
		if _, err := f.svc.TurnOff(context.Background(), f.admin); err != nil {
			t.Fatal(err)
		}
		s = mustSet(t, f, f.admin, in)
		mustPlan(t, f.svc, 0)
		if want := utc("2026-01-21T07:00:00Z"); !s.NextAt.Equal(want) {
			t.Fatalf("next at after on again: got %v, want %v", s.NextAt, want)
		}
	})
}

func TestCatchUpAfterDowntimeSendsOnlyTheLatestMissed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 3)
		mustSet(t, f, f.admin, weekly("2026-01-20"))
		f.clock.Set(utc("2026-02-12T12:00:00Z")) // down over Jan 20, Jan 27, Feb 3 and Feb 10
		mustPlan(t, f.svc, 1)
		mustSend(t, f.svc, 1)
		runs := f.runs()
		if len(runs) != 1 || !runs[0].ScheduledFor.Equal(utc("2026-02-10T07:00:00Z")) {
			t.Fatalf("runs: got %+v, want one for Feb 10", runs)
		}
		s, _ := f.svc.Setting(context.Background(), f.admin)
		if want := utc("2026-02-17T07:00:00Z"); !s.NextAt.Equal(want) {
			t.Fatalf("next at: got %v, want %v", s.NextAt, want)
		}
	})
}

func TestFailedSendIsRetriedWithBackoffAndTheSameMessageID(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 2)
		mustSet(t, f, f.admin, weekly("2026-01-14"))
		mustPlan(t, f.svc, 1)
		f.mailer.failNext(2)
		mustSend(t, f.svc, 0)
		r := f.runs()[0]
		if r.Status != notify.StatusPending || r.Attempts != 1 || !r.NextAttemptAt.Equal(start.Add(time.Minute)) || r.LastError == "" {
			t.Fatalf("after first failure: got %+v", r)
		}
		mustSend(t, f.svc, 0) // not due before its backoff
		f.clock.Add(time.Minute)
		mustSend(t, f.svc, 0)
		if r = f.runs()[0]; r.Attempts != 2 || !r.NextAttemptAt.Equal(start.Add(3*time.Minute)) {
			t.Fatalf("after second failure: got %+v", r)
		}
		f.clock.Add(2 * time.Minute)
		mustSend(t, f.svc, 1)
		if r = f.runs()[0]; r.Status != notify.StatusDelivered || r.Attempts != 3 || r.LastError != "" {
			t.Fatalf("after delivery: got %+v", r)
		}
		if m := f.mailer.messages(); len(m) != 1 || m[0].MessageID != r.MessageID {
			t.Fatalf("messages: got %d, id %q want %q", len(m), m[0].MessageID, r.MessageID)
		}
	})
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 2)
		mustSet(t, f, f.admin, weekly("2026-01-14"))
		mustPlan(t, f.svc, 1)
		f.mailer.failNext(100)
		for range 4 {
			mustSend(t, f.svc, 0)
			f.clock.Add(time.Hour)
		}
		r := f.runs()[0]
		if r.Status != notify.StatusFailed || r.Attempts != 4 || r.LastError != "send: 421 service not available" {
			t.Fatalf("got %+v", r)
		}
		mustSend(t, f.svc, 0)
	})
}

func TestCrashedWorkersRunIsResentWithTheSameMessageIDAfterItsLease(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 2)
		mustSet(t, f, f.admin, weekly("2026-01-14"))
		mustPlan(t, f.svc, 1)
		// A worker claims the run and dies mid-send: it never records an outcome.
		err := f.db.Notify().Write(context.Background(), func(tx notify.Tx) error {
			_, err := tx.ClaimRuns(context.Background(), start, "dead#1", start.Add(notify.DefaultLease), 10)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		mustSend(t, f.svc, 0) // leased: nobody else may send it
		f.clock.Add(notify.DefaultLease + time.Second)
		mustSend(t, f.svc, 1)
		r := f.runs()[0]
		if r.Status != notify.StatusDelivered || r.Attempts != 2 {
			t.Fatalf("got %+v", r)
		}
		if m := f.mailer.messages(); m[0].MessageID != r.MessageID {
			t.Fatalf("resent with %q, want %q", m[0].MessageID, r.MessageID)
		}
	})
}

func TestTurnOffStopsARunNotYetSent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 2)
		mustSet(t, f, f.admin, weekly("2026-01-14"))
		mustPlan(t, f.svc, 1)
		if _, err := f.svc.TurnOff(context.Background(), f.admin); err != nil {
			t.Fatal(err)
		}
		mustSend(t, f.svc, 0)
		r := f.runs()[0]
		if r.Status != notify.StatusFailed || r.LastError != "usage notifications were turned off before this email went out" {
			t.Fatalf("got %+v", r)
		}
		if len(f.mailer.messages()) != 0 {
			t.Fatal("sent an email after turning off")
		}
	})
}

func TestDemotedAdminGetsNoEmail(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 2)
		mustSet(t, f, f.admin, weekly("2026-01-20"))
		f.demote(f.admin)
		f.clock.Set(utc("2026-01-20T07:00:00Z"))
		mustPlan(t, f.svc, 0)
		s, err := f.setting(f.admin)
		if err != nil || !s.NextAt.Equal(utc("2026-01-27T07:00:00Z")) {
			t.Fatalf("setting not moved on: %+v %v", s, err)
		}
	})
}

func TestWithoutMailerRunsStayPending(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 2)
		svc := f.service(nil, fakeInactivity{})
		if svc.CanDeliver() {
			t.Fatal("can deliver without a mailer")
		}
		mustSet(t, f, f.admin, weekly("2026-01-14"))
		mustPlan(t, svc, 1)
		mustSend(t, svc, 0)
		if r := f.runs()[0]; r.Status != notify.StatusPending || r.Attempts != 0 {
			t.Fatalf("got %+v", r)
		}
		mustSend(t, f.svc, 1)
	})
}

func TestConcurrentSchedulersDeliverEachOccurrenceOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 1)
		var admins []usher.Actor
		for range 150 {
			admins = append(admins, f.addUser(usher.RolePrimaryAdmin))
		}
		for _, a := range admins {
			mustSet(t, f, a, weekly("2026-01-20"))
		}
		f.clock.Set(utc("2026-01-20T07:00:00Z"))
		mailers := []*fakeMailer{{}, {}, {}}
		var wg sync.WaitGroup
		for i, m := range mailers {
			svc := f.service(m, fakeInactivity{users: 1, seats: 1})
			wg.Go(func() {
				for range 5 {
					if _, err := svc.PlanDue(context.Background()); err != nil {
						t.Error(err)
					}
					if _, err := svc.SendDue(context.Background(), fmt.Sprintf("replica%d", i), 20); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		// Whatever is left is sent by one more pass.
		if _, err := f.svc.SendDue(context.Background(), "last", 1000); err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, m := range append(mailers, f.mailer) {
			for _, msg := range m.messages() {
				seen[msg.MessageID]++
			}
		}
		if len(seen) != len(admins) {
			t.Fatalf("got %d distinct emails, want %d", len(seen), len(admins))
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("%s sent %d times", id, n)
			}
		}
	})
}

// blockingMailer holds every Send until its context ends or release is
// closed, the way a slow SMTP server holds a delivery when the server shuts
// down.
type blockingMailer struct {
	started chan struct{}
	release chan struct{} // nil: never
}

func (b blockingMailer) Send(ctx context.Context, m notify.Message) error {
	b.started <- struct{}{}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-b.release:
		return nil
	}
}

// stoppingService is the fixture's service with a short stop grace.
func stoppingService(f *fixture, m notify.Mailer, grace time.Duration) *notify.Service {
	return notify.New(f.db.Notify(), m, fakeInactivity{users: 1, seats: 1}, notify.Config{
		BaseURL: "https://usher.example.com/", From: "Usher <usher@example.com>", Now: f.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxAttempts: 4, StopGrace: grace,
	})
}

// stopMidSend plans five runs, lets the four workers start sending, ends
// SendDue's context and calls between (while sends are in flight), then
// waits for SendDue to return.
func stopMidSend(t *testing.T, f *fixture, svc *notify.Service, blocked blockingMailer, between func()) int {
	t.Helper()
	for range 5 {
		mustSet(t, f, f.addUser(usher.RolePrimaryAdmin), weekly("2026-01-14"))
	}
	mustPlan(t, f.svc, 5)
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := svc.SendDue(ctx, "stopping", 10)
		done <- result{n, err}
	}()
	for range notify.DefaultWorkers {
		<-blocked.started
	}
	cancel()
	between()
	res := <-done
	if res.err != nil {
		t.Fatalf("send due: %v", res.err)
	}
	return res.n
}

func TestShutdownLetsSendsInFlightFinish(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 1)
		blocked := blockingMailer{started: make(chan struct{}, 5), release: make(chan struct{})}
		// The grace is long: the sends finish well within it.
		n := stopMidSend(t, f, stoppingService(f, blocked, time.Hour), blocked, func() { close(blocked.release) })
		if n != notify.DefaultWorkers {
			t.Fatalf("delivered %d, want the %d in flight", n, notify.DefaultWorkers)
		}
		var delivered, untouched int
		for _, r := range f.runs() {
			switch {
			case r.Status == notify.StatusDelivered && r.Attempts == 1:
				delivered++
			case r.Status == notify.StatusPending && r.Attempts == 0 && r.LastError == "":
				untouched++ // never claimed: nothing was started after the stop
			default:
				t.Fatalf("unexpected run: %+v", r)
			}
		}
		if delivered != notify.DefaultWorkers || untouched != 1 {
			t.Fatalf("got %d delivered and %d untouched, want %d and 1", delivered, untouched, notify.DefaultWorkers)
		}
	})
}

func TestShutdownHandsUnsentRunsBack(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 1)
		// The mail server never answers: past the grace, the sends are cut.
		blocked := blockingMailer{started: make(chan struct{}, 5)}
		stopMidSend(t, f, stoppingService(f, blocked, 50*time.Millisecond), blocked, func() {})
		var handedBack, released int
		for _, r := range f.runs() {
			switch {
			case r.Status == notify.StatusPending && r.Attempts == 0 && r.LeaseOwner == "" && r.LastError == "":
				handedBack++ // never claimed
			case r.Status == notify.StatusPending && r.Attempts == 0 && r.LeaseOwner == "" &&
				strings.HasPrefix(r.LastError, "released at shutdown") && !r.NextAttemptAt.After(f.clock.Now()):
				released++ // cut short: due again now, the attempt not counted
			default:
				t.Fatalf("run neither handed back nor released: %+v", r)
			}
		}
		if handedBack != 1 || released != notify.DefaultWorkers {
			t.Fatalf("got %d handed back and %d released, want 1 and %d", handedBack, released, notify.DefaultWorkers)
		}
		// Another worker takes all five at once, without waiting for a
		// lease or a backoff.
		mustSend(t, f.svc, 5)
	})
}

func TestRunsArePagedNewestFirst(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 1)
		mustSet(t, f, f.admin, weekly("2026-01-14"))
		for range 5 {
			mustPlan(t, f.svc, 1)
			mustSend(t, f.svc, 1)
			f.clock.Add(7 * 24 * time.Hour)
		}
		var got []int64
		cursor := ""
		for {
			p, err := f.svc.Runs(context.Background(), f.admin, cursor, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range p.Items {
				got = append(got, r.ID)
			}
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		if want := []int64{5, 4, 3, 2, 1}; !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		if _, err := f.svc.Runs(context.Background(), f.admin, "junk!", 2); usher.ErrorCode(err) != usher.EINVALID {
			t.Fatalf("bad cursor: got %v", err)
		}
	})
}

// clockMailer is a slow SMTP server: each send moves the clock a minute on.
// Its 12th send first lets a second server's scheduler run, as a replica's
// would while this one is busy.
type clockMailer struct {
	fakeMailer
	clock  *clock
	calls  atomic.Int32
	at12th func()
}

func (m *clockMailer) Send(ctx context.Context, msg notify.Message) error {
	if m.calls.Add(1) == 12 {
		m.at12th()
	}
	m.clock.Add(time.Minute)
	return m.fakeMailer.Send(ctx, msg)
}

// TestALiveWorkersRunsAreNotTakenOver: a busy server's runs must not outlive
// their leases while they wait for a worker, or another replica takes them
// over and both send them.
func TestALiveWorkersRunsAreNotTakenOver(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const n = 24
		f := newFixture(t, db, 1)
		for range n {
			mustSet(t, f, f.addUser(usher.RolePrimaryAdmin), weekly("2026-01-14"))
		}
		mustPlan(t, f.svc, n)
		// One worker each, so that the clock moves only with this
		// server's own sends: a minute per email, as over a slow link.
		oneWorker := func(m notify.Mailer) *notify.Service {
			return notify.New(f.db.Notify(), m, fakeInactivity{users: 1, seats: 1}, notify.Config{
				BaseURL: "https://usher.example.com/", From: "Usher <usher@example.com>", Now: f.clock.Now,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Workers: 1,
			})
		}
		other := &fakeMailer{}
		replica := oneWorker(other)
		busy := &clockMailer{clock: f.clock}
		busy.at12th = func() {
			if _, err := replica.SendDue(context.Background(), "replica", 100); err != nil {
				t.Errorf("replica: %v", err)
			}
		}
		if _, err := oneWorker(busy).SendDue(context.Background(), "busy", 100); err != nil {
			t.Fatalf("send due: %v", err)
		}
		seen := map[string]int{}
		for _, m := range append(busy.messages(), other.messages()...) {
			seen[m.MessageID]++
		}
		if len(seen) != n {
			t.Fatalf("got %d distinct emails, want %d", len(seen), n)
		}
		for id, c := range seen {
			if c != 1 {
				t.Errorf("email %s sent %d times", id, c)
			}
		}
		t.Logf("busy server sent %d, replica %d", len(busy.messages()), len(other.messages()))
	})
}
