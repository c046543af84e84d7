package notify_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/internal/mail/smtptest"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// TestEmailKeepsASnapshotOfWhatItCounted sends a notification through a
// real SMTP server that is down at first: no snapshot is kept for the
// failed attempt; the delivered email links to its snapshot, which lists
// the seats the email counted as they were when it was written.
func TestEmailKeepsASnapshotOfWhatItCounted(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, 0)
		// Two people hold seats assigned long ago and never used.
		f.write(func(tx *store.Tx) error {
			p, err := tx.ProductByCode(ctx, "draftpro")
			if err != nil {
				return err
			}
			sub := usher.Subscription{AccountID: f.acct.ID, Product: p, Plan: usher.PlanStandard, Seats: 5, ContractNumber: "C-9",
				TermStart: date("2025-01-01"), TermEnd: date("2026-12-31"), Benefits: []string{}, CreatedAt: start}
			if err := tx.CreateSubscription(ctx, &sub); err != nil {
				return err
			}
			for _, email := range []string{"ina@example.com", "ivan@example.com"} {
				u := usher.User{AccountID: f.acct.ID, Email: email, Name: email, Status: usher.UserActive, CreatedAt: start, UpdatedAt: start}
				if err := tx.CreateUser(ctx, &u); err != nil {
					return err
				}
				if err := tx.ReserveSeat(ctx, f.acct.ID, sub.ID); err != nil {
					return err
				}
				a := usher.Assignment{AccountID: f.acct.ID, UserID: u.ID, SubscriptionID: sub.ID, Services: []string{}, AssignedAt: start.AddDate(0, -6, 0), Direct: true}
				if err := tx.InsertAssignment(ctx, a); err != nil {
					return err
				}
			}
			return nil
		})
		srv := smtptest.StartServer(t, smtptest.NoTLS)
		sender, err := mail.Open("smtp://" + srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		use := usage.New(db.Usage(), usage.Config{Now: f.clock.Now})
		svc := f.service(sender, use)
		mustSet(t, f, f.admin, weekly("2026-01-14"))
		mustPlan(t, svc, 1)
		run := f.runs()[0]
		id := usage.SnapshotID(usage.SnapshotNotification, run.ID)
		asOf := func() (usage.Report, error) {
			return use.Report(ctx, f.admin, usage.ReportFilter{Snapshot: id})
		}

		srv.Stop()
		mustSend(t, svc, 0)
		if _, err := asOf(); usher.ErrorCode(err) != usher.ENOTFOUND {
			t.Fatalf("after a failed attempt: got %v, want no snapshot", err)
		}

		srv.Restart()
		f.clock.Add(2 * time.Minute)
		taken := f.clock.Now()
		mustSend(t, svc, 1)
		msgs := smtptest.Messages(t, srv.Mailbox)
		if len(msgs) != 1 {
			t.Fatalf("got %d messages, want 1", len(msgs))
		}
		raw, err := io.ReadAll(msgs[0].Body)
		if err != nil {
			t.Fatal(err)
		}
		// Undo quoted-printable's soft line breaks and escaped "=".
		body := strings.NewReplacer("=\r\n", "", "=\n", "", "=3D", "=").Replace(string(raw))
		if want := "https://usher.example.com/reports/usage?snapshot=" + id; !strings.Contains(body, want) {
			t.Fatalf("the email does not link to %s:\n%s", want, body)
		}
		rep, err := asOf()
		if err != nil {
			t.Fatal(err)
		}
		if rep.Snapshot == nil || !rep.Snapshot.TakenAt.Equal(taken) || rep.Snapshot.Range != usage.Range3m || rep.Totals.Seats != 2 || rep.Totals.Users != 2 || len(rep.Rows) != 2 {
			t.Fatalf("snapshot: got %+v with %+v", rep.Snapshot, rep.Totals)
		}
		for _, r := range rep.Rows {
			if r.Inactivity != usage.NeverUsed || r.Change != usage.Unchanged || r.LastUsed != nil {
				t.Errorf("row %s: got %+v", r.Email, r)
			}
		}
	})
}
