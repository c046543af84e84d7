package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/usherhq/usher/internal/notify"
)

// Security is how an SMTP connection is protected.
type Security string

const (
	// Plain sends in clear text and does not try STARTTLS: smtp://.
	Plain Security = "plain"
	// STARTTLS upgrades the connection and fails if the server cannot:
	// smtp+starttls://.
	STARTTLS Security = "starttls"
	// ImplicitTLS speaks TLS from the first byte: smtps://.
	ImplicitTLS Security = "tls"
)

// SMTPConfig says how to reach an SMTP server.
type SMTPConfig struct {
	Host     string
	Port     int
	Security Security
	Username string // "" for no authentication
	Password string
	// InsecureSkipVerify accepts any server certificate. For tests only.
	InsecureSkipVerify bool
	Timeout            time.Duration // per delivery; default 30 seconds
}

var defaultPorts = map[Security]int{Plain: 25, STARTTLS: 587, ImplicitTLS: 465}

// ParseURL reads an SMTP URL:
//
//	smtp://host[:port]             clear text, port 25
//	smtp+starttls://host[:port]    STARTTLS required, port 587
//	smtps://host[:port]            implicit TLS, port 465
//
// Any of them may carry user:password@ for SMTP AUTH (percent-encode
// reserved characters) and ?insecure_skip_verify=1 to accept any
// certificate (tests only). Errors name what is wrong and never show the
// password.
func ParseURL(raw string) (SMTPConfig, error) {
	fail := func(format string, args ...any) (SMTPConfig, error) {
		return SMTPConfig{}, fmt.Errorf("SMTP URL: "+format, args...)
	}
	u, err := url.Parse(raw)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err // url.Error repeats the URL, password included
		}
		return fail("cannot parse: %v", err)
	}
	var c SMTPConfig
	switch strings.ToLower(u.Scheme) {
	case "smtp":
		c.Security = Plain
	case "smtp+starttls":
		c.Security = STARTTLS
	case "smtps":
		c.Security = ImplicitTLS
	case "":
		return fail("%q has no scheme; use smtp://, smtp+starttls:// or smtps://", u.Redacted())
	default:
		return fail("scheme %q is not one of smtp, smtp+starttls, smtps", u.Scheme)
	}
	if u.Opaque != "" {
		return fail("%q: write the host after //, e.g. %s://mail.example.com:587", u.Redacted(), u.Scheme)
	}
	c.Host = u.Hostname()
	if c.Host == "" {
		return fail("%q has no host", u.Redacted())
	}
	c.Port = defaultPorts[c.Security]
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fail("port %q is not a number from 1 to 65535", p)
		}
		c.Port = n
	}
	if u.Path != "" && u.Path != "/" {
		return fail("%q has a path (%q); an SMTP URL has none", u.Redacted(), u.Path)
	}
	if u.User != nil {
		c.Username = u.User.Username()
		c.Password, _ = u.User.Password()
		if c.Username == "" {
			return fail("%q has a password but no user name", u.Redacted())
		}
	}
	for k, vs := range u.Query() {
		switch k {
		case "insecure_skip_verify":
			v := vs[len(vs)-1]
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fail("insecure_skip_verify=%q is not 1, 0, true or false", v)
			}
			c.InsecureSkipVerify = b
		default:
			return fail("unknown parameter %q; the only one is insecure_skip_verify", k)
		}
	}
	return c, nil
}

// String is the configuration as a URL without the password, for logs.
func (c SMTPConfig) String() string {
	scheme := map[Security]string{Plain: "smtp", STARTTLS: "smtp+starttls", ImplicitTLS: "smtps"}[c.Security]
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(c.Host, strconv.Itoa(c.Port))}
	if c.Username != "" {
		u.User = url.User(c.Username)
	}
	if c.InsecureSkipVerify {
		u.RawQuery = "insecure_skip_verify=1"
	}
	return u.String()
}

// SMTP delivers emails to one SMTP server. It is safe for concurrent use:
// each delivery uses its own connection.
type SMTP struct {
	cfg SMTPConfig
}

// NewSMTP returns a sender for cfg.
func NewSMTP(cfg SMTPConfig) *SMTP {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	return &SMTP{cfg: cfg}
}

// Open parses an SMTP URL (see ParseURL) and returns a sender for it.
func Open(rawURL string) (*SMTP, error) {
	cfg, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	return NewSMTP(cfg), nil
}

// Config returns the sender's configuration.
func (s *SMTP) Config() SMTPConfig { return s.cfg }

// Send renders a usage notification and delivers it; it implements
// notify.Mailer.
func (s *SMTP) Send(ctx context.Context, m notify.Message) error {
	e, err := Render(m)
	if err != nil {
		return err
	}
	return s.Deliver(ctx, e)
}

// Compose renders a usage notification and builds its MIME message, to be
// delivered later; it implements notify.Composer, so the scheduler renders
// the next email while the current one is on the wire.
func (s *SMTP) Compose(m notify.Message) (notify.Composed, error) {
	e, err := Render(m)
	if err != nil {
		return nil, err
	}
	msg, err := build(e)
	if err != nil {
		return nil, err
	}
	return composed{s: s, e: e, msg: msg}, nil
}

var _ notify.Composer = (*SMTP)(nil)

// composed is an email rendered by Compose.
type composed struct {
	s   *SMTP
	e   Email
	msg *gomail.Msg
}

// Deliver sends the composed email once.
func (c composed) Deliver(ctx context.Context) error { return c.s.deliver(ctx, c.e, c.msg) }

// Deliver sends e. It returns nil only when the server accepted it.
func (s *SMTP) Deliver(ctx context.Context, e Email) error {
	msg, err := build(e)
	if err != nil {
		return err
	}
	return s.deliver(ctx, e, msg)
}

// deliver sends msg, built from e by build, on a connection of its own.
func (s *SMTP) deliver(ctx context.Context, e Email, msg *gomail.Msg) error {
	opts := []gomail.Option{
		gomail.WithPort(s.cfg.Port),
		gomail.WithTimeout(s.cfg.Timeout),
		gomail.WithTLSConfig(&tls.Config{ServerName: s.cfg.Host, InsecureSkipVerify: s.cfg.InsecureSkipVerify, MinVersion: tls.VersionTLS12}),
	}
	switch s.cfg.Security {
	case Plain:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case STARTTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case ImplicitTLS:
		opts = append(opts, gomail.WithSSL())
	}
	if s.cfg.Username != "" {
		// Auto-discovery picks the strongest mechanism the server offers and
		// refuses to send a password in clear text (PLAIN, LOGIN) over a
		// connection without TLS.
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(s.cfg.Username), gomail.WithPassword(s.cfg.Password))
	}
	c, err := gomail.NewClient(s.cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("smtp client for %s: %w", s.cfg, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("deliver %s to %s through %s: %w", e.MessageID, e.To.Address, s.cfg, err)
	}
	return nil
}

// build makes the MIME message: multipart/alternative with the plain text
// first and the HTML last, as clients prefer the last part they can show.
func build(e Email) (*gomail.Msg, error) {
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := m.From(e.From); err != nil {
		return nil, fmt.Errorf("from address %q: %w", e.From, err)
	}
	if err := m.AddToFormat(e.To.Name, e.To.Address); err != nil {
		return nil, fmt.Errorf("to address %q: %w", e.To.Address, err)
	}
	m.Subject(e.Subject)
	m.SetMessageIDWithValue(strings.TrimSuffix(strings.TrimPrefix(e.MessageID, "<"), ">"))
	m.SetDateWithValue(e.Date)
	m.SetUserAgent("Usher")
	m.SetBulk() // no out-of-office replies to an automated email
	m.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	m.SetBodyString(gomail.TypeTextPlain, e.Text)
	m.AddAlternativeString(gomail.TypeTextHTML, e.HTML)
	return m, nil
}
