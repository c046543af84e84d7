package mail_test

import (
	"context"
	"io"
	"mime"
	"mime/multipart"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/internal/mail/smtptest"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		url  string
		want mail.SMTPConfig
	}{
		{"smtp://127.0.0.1:1025", mail.SMTPConfig{Host: "127.0.0.1", Port: 1025, Security: mail.Plain}},
		{"smtp://mail.example.com", mail.SMTPConfig{Host: "mail.example.com", Port: 25, Security: mail.Plain}},
		{"smtp+starttls://mail.example.com", mail.SMTPConfig{Host: "mail.example.com", Port: 587, Security: mail.STARTTLS}},
		{"smtps://ada:p%40ss%3Aword@mail.example.com", mail.SMTPConfig{Host: "mail.example.com", Port: 465, Security: mail.ImplicitTLS, Username: "ada", Password: "p@ss:word"}},
		{"SMTPS://[::1]:2465/?insecure_skip_verify=1", mail.SMTPConfig{Host: "::1", Port: 2465, Security: mail.ImplicitTLS, InsecureSkipVerify: true}},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := mail.ParseURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseURLErrorsNameTheProblem(t *testing.T) {
	tests := []struct{ url, want string }{
		{"", "has no scheme"},
		{"mail.example.com:25", `scheme "mail.example.com" is not one of smtp, smtp+starttls, smtps`},
		{"http://mail.example.com", `scheme "http" is not one of smtp, smtp+starttls, smtps`},
		{"smtp://", "has no host"},
		{"smtp://mail.example.com:99999", `port "99999" is not a number from 1 to 65535`},
		{"smtp://mail.example.com/inbox", `has a path ("/inbox")`},
		{"smtp://mail.example.com?tls=1", `unknown parameter "tls"`},
		{"smtp://mail.example.com?insecure_skip_verify=maybe", `insecure_skip_verify="maybe" is not 1, 0, true or false`},
		{"smtp://:secret@mail.example.com", "has a password but no user name"},
		{"smtp://ada:secret@mail.example.com:port", "cannot parse"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := mail.ParseURL(tt.url)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %q, want it to say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error shows the password: %q", err)
			}
		})
	}
}

func TestConfigStringHidesThePassword(t *testing.T) {
	c, err := mail.ParseURL("smtp+starttls://ada:secret@mail.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.String(), "smtp+starttls://ada@mail.example.com:587"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestDeliverToARealServer sends a rendered notification to aiosmtpd over
// each kind of connection and reads it back from the Maildir.
func TestDeliverToARealServer(t *testing.T) {
	tests := []struct {
		name   string
		mode   smtptest.TLS
		scheme string
	}{
		{"Plain", smtptest.NoTLS, "smtp://"},
		{"STARTTLS", smtptest.StartTLS, "smtp+starttls://"},
		{"ImplicitTLS", smtptest.ImplicitTLS, "smtps://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.StartServer(t, tt.mode)
			sender, err := mail.Open(tt.scheme + srv.Addr + "?insecure_skip_verify=1")
			if err != nil {
				t.Fatal(err)
			}
			m := message(true)
			if err := sender.Send(context.Background(), m); err != nil {
				t.Fatalf("send: %v", err)
			}
			msgs := smtptest.Messages(t, srv.Mailbox)
			if len(msgs) != 1 {
				t.Fatalf("got %d messages, want 1", len(msgs))
			}
			checkDelivered(t, msgs[0], true)
		})
	}
}

func TestDeliverWithoutInactiveUsersHasNoButton(t *testing.T) {
	addr, mailbox := smtptest.Start(t)
	sender, err := mail.Open("smtp://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := sender.Send(context.Background(), message(false)); err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, smtptest.Messages(t, mailbox)[0], false)
}

func TestSTARTTLSIsRequiredWhenAskedFor(t *testing.T) {
	addr, mailbox := smtptest.Start(t) // offers no STARTTLS
	sender, err := mail.Open("smtp+starttls://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := sender.Send(context.Background(), message(true)); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("got %v, want a STARTTLS error", err)
	}
	if n := len(smtptest.Messages(t, mailbox)); n != 0 {
		t.Fatalf("server got %d messages in clear text", n)
	}
}

func TestAuthentication(t *testing.T) {
	srv := smtptest.StartAuthServer(t, "usher@example.com", "s3cr:t@", false)
	send := func(url string) error {
		t.Helper()
		sender, err := mail.Open(url)
		if err != nil {
			t.Fatal(err)
		}
		return sender.Send(context.Background(), message(true))
	}
	t.Run("WrongPasswordIsRefused", func(t *testing.T) {
		cfg, err := mail.ParseURL("smtp+starttls://usher%40example.com:wrong@" + srv.Addr + "?insecure_skip_verify=1")
		if err != nil {
			t.Fatal(err)
		}
		// After refusing the password this server leaves the client waiting
		// rather than closing; a short timeout keeps the test fast.
		cfg.Timeout = 2 * time.Second
		err = mail.NewSMTP(cfg).Send(context.Background(), message(true))
		if err == nil || !strings.Contains(err.Error(), "AUTH") {
			t.Fatalf("got %v, want an SMTP AUTH failure", err)
		}
		if n := len(smtptest.Messages(t, srv.Mailbox)); n != 0 {
			t.Fatalf("server accepted %d messages", n)
		}
	})
	t.Run("NoCredentialsIsRefused", func(t *testing.T) {
		err := send("smtp+starttls://" + srv.Addr + "?insecure_skip_verify=1")
		if err == nil || !strings.Contains(err.Error(), "Authentication required") {
			t.Fatalf("got %v, want the server's demand for authentication", err)
		}
	})
	t.Run("NoAuthBeforeSTARTTLS", func(t *testing.T) {
		err := send("smtp://usher%40example.com:s3cr%3At%40@" + srv.Addr)
		if err == nil || !strings.Contains(err.Error(), "does not support SMTP AUTH") {
			t.Fatalf("got %v, want no authentication before STARTTLS", err)
		}
	})
	t.Run("STARTTLSWithTheRightPasswordDelivers", func(t *testing.T) {
		if err := send("smtp+starttls://usher%40example.com:s3cr%3At%40@" + srv.Addr + "?insecure_skip_verify=1"); err != nil {
			t.Fatalf("send: %v", err)
		}
		msgs := smtptest.Messages(t, srv.Mailbox)
		if len(msgs) != 1 {
			t.Fatalf("got %d messages, want 1", len(msgs))
		}
		checkDelivered(t, msgs[0], true)
	})
}

func TestServerDownIsAnError(t *testing.T) {
	srv := smtptest.StartServer(t, smtptest.NoTLS)
	srv.Stop()
	sender, _ := mail.Open("smtp://" + srv.Addr)
	err := sender.Send(context.Background(), message(true))
	if err == nil {
		t.Fatal("no error with the server down")
	}
	if !strings.Contains(err.Error(), "<run-7-1-1768892400@usher.example.com>") {
		t.Errorf("error does not name the message: %v", err)
	}
	srv.Restart()
	if err := sender.Send(context.Background(), message(true)); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

func checkDelivered(t *testing.T, msg *netmail.Message, inactive bool) {
	t.Helper()
	h := msg.Header
	wantSubject := "12 inactive users in Demo Co over the past 3 months"
	if !inactive {
		wantSubject = "No inactive users in Demo Co over the past 3 months"
	}
	for _, c := range []struct{ key, want string }{
		{"Message-Id", "<run-7-1-1768892400@usher.example.com>"},
		{"Subject", wantSubject},
		{"Auto-Submitted", "auto-generated"},
	} {
		if got := h.Get(c.key); got != c.want {
			t.Errorf("%s: got %q, want %q", c.key, got, c.want)
		}
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "usher@example.com" || from[0].Name != "Usher" {
		t.Errorf("From: got %v %v", from, err)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != "ada@example.com" || to[0].Name != "Ada Admin" {
		t.Errorf("To: got %v %v", to, err)
	}
	if d, err := h.Date(); err != nil || d.Unix() != 1768892400 {
		t.Errorf("Date: got %v %v", d, err)
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type: got %q %v, want multipart/alternative", h.Get("Content-Type"), err)
	}
	parts := map[string]string{}
	var order []string
	r := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		b, err := io.ReadAll(p) // quoted-printable is decoded by the reader
		if err != nil {
			t.Fatal(err)
		}
		parts[ct] = string(b)
		order = append(order, ct)
	}
	if strings.Join(order, ",") != "text/plain,text/html" {
		t.Fatalf("parts: got %v, want text/plain then text/html", order)
	}
	text, html := parts["text/plain"], parts["text/html"]
	if !strings.Contains(text, "Hello Ada Admin,") || !strings.Contains(html, "Hello Ada Admin,") {
		t.Errorf("a part lacks the greeting:\n%s\n%s", text, html)
	}
	hasButton := strings.Contains(html, `<a href="https://usher.example.com/reports/usage?status=inactive&amp;range=3m"`) &&
		strings.Contains(html, ">View inactive users</a>")
	hasTextLink := strings.Contains(text, "View inactive users:\n"+reportURL)
	if hasButton != inactive || hasTextLink != inactive {
		t.Errorf("button %v, text link %v; want %v:\n%s\n%s", hasButton, hasTextLink, inactive, text, html)
	}
	if inactive && (!strings.Contains(text, "Chloé <Dev> & Co <chloe@example.com>") || !strings.Contains(html, "Chloé &lt;Dev&gt; &amp; Co")) {
		t.Errorf("the first users are not listed as expected:\n%s\n%s", text, html)
	}
	if !inactive && (strings.Contains(text+html, "status=inactive") || strings.Contains(html, "View inactive users")) {
		t.Errorf("an email without inactive users links to the filtered report")
	}
}

// TestNoPasswordInClearText: a server that offers PLAIN and LOGIN over a
// clear connection still does not get the password from smtp://.
func TestNoPasswordInClearText(t *testing.T) {
	srv := smtptest.StartAuthServer(t, "usher@example.com", "s3cret", true)
	sender, err := mail.Open("smtp://usher%40example.com:s3cret@" + srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	err = sender.Send(context.Background(), message(true))
	if err == nil {
		t.Fatal("authenticated and delivered over a clear connection")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("the error shows the password: %v", err)
	}
	if n := len(smtptest.Messages(t, srv.Mailbox)); n != 0 {
		t.Fatalf("server accepted %d messages", n)
	}
	t.Logf("refused as wanted: %v", err)
}
