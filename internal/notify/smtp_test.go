package notify_test

import (
	"testing"
	"time"

	"github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/internal/mail/smtptest"
	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
)

// TestRetriesUntilTheSMTPServerReturns delivers through a real SMTP server
// that is down for the first attempts.
func TestRetriesUntilTheSMTPServerReturns(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 4)
		srv := smtptest.StartServer(t, smtptest.NoTLS)
		sender, err := mail.Open("smtp://" + srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		svc := f.service(sender, fakeInactivity{users: 4, seats: 5})
		mustSet(t, f, f.admin, weekly("2026-01-14"))
		mustPlan(t, svc, 1)

		srv.Stop()
		mustSend(t, svc, 0)
		f.clock.Add(time.Minute)
		mustSend(t, svc, 0)
		r := f.runs()[0]
		if r.Status != notify.StatusPending || r.Attempts != 2 || r.LastError == "" {
			t.Fatalf("while down: got %+v", r)
		}

		srv.Restart()
		f.clock.Add(2 * time.Minute)
		mustSend(t, svc, 1)
		msgs := smtptest.Messages(t, srv.Mailbox)
		if len(msgs) != 1 {
			t.Fatalf("got %d messages, want 1", len(msgs))
		}
		if got := msgs[0].Header.Get("Message-Id"); got != r.MessageID {
			t.Fatalf("Message-ID: got %q, want %q", got, r.MessageID)
		}
		if got, want := msgs[0].Header.Get("Subject"), "4 inactive users in Demo Co over the past 3 months"; got != want {
			t.Fatalf("Subject: got %q, want %q", got, want)
		}
		if r = f.runs()[0]; r.Status != notify.StatusDelivered || r.Attempts != 3 {
			t.Fatalf("after delivery: got %+v", r)
		}
	})
}
