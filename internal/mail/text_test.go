package mail_test

import (
	"context"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/internal/mail/smtptest"
)

// A name stored before names were checked (or by another tool) may hold
// CR, LF or other control characters. The email still goes, to the same
// address, with the name on one line and no header injected.
func TestANameWithLineBreaksDoesNotStopTheEmail(t *testing.T) {
	addr, mailbox := smtptest.Start(t)
	sender, err := mail.Open("smtp://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	m := message(true)
	m.To.Name = "Ada\r\nBcc: eve@example.com\x00\x1b[31m Admin"
	m.Account.Name = "Demo\r\nCo"
	m.Summary.FirstUsers[0].Name = "Ben\nBaker"
	if err := sender.Send(context.Background(), m); err != nil {
		t.Fatalf("send: %v", err)
	}
	msgs := smtptest.Messages(t, mailbox)
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if to := got.Header.Get("To"); !strings.Contains(to, "ada@example.com") || strings.ContainsAny(to, "\r\n\x00\x1b") {
		t.Errorf("To: %q", to)
	}
	if bcc := got.Header.Get("Bcc"); bcc != "" {
		t.Errorf("a header was injected: Bcc: %q", bcc)
	}
	addrs, err := got.Header.AddressList("To")
	if err != nil || len(addrs) != 1 || addrs[0].Address != "ada@example.com" || !strings.Contains(addrs[0].Name, "Ada") {
		t.Errorf("To parses as %v, %v; want Ada's name and address", addrs, err)
	}
}
