package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	netmail "net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/auth"
	"github.com/usherhq/usher/internal/demo"
	"github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/internal/web"
	"github.com/usherhq/usher/internal/web/console"
)

const serveHelp = `Usage: usher serve [flags]

Runs the HTTP server: the admin console at /, the REST API under /api/v1 and
GET /healthz. It applies database migrations first. SIGINT or SIGTERM shut it
down gracefully: it stops accepting connections and lets requests in flight
finish.

Flags (a flag wins over its environment variable):
  --addr HOST:PORT    address to listen on (default 127.0.0.1:8080)  env USHER_ADDR
` + dbFlagHelp + `  --base-url URL      public URL of this server, used in email links
                      (default http://<addr>)                    env USHER_BASE_URL
  --smtp URL          SMTP server for usage notification emails: smtp://host:port,
                      smtp+starttls://user:pass@host:587 or smtps://host:465;
                      empty means emails are not delivered        env USHER_SMTP_URL
  --mail-from ADDR    sender of notification emails, e.g. "Usher <usher@example.com>"
                                                                 env USHER_MAIL_FROM
  --log-level LEVEL   debug, info, warn or error (default info)  env USHER_LOG_LEVEL
  --log-format FMT    text or json (default text)                env USHER_LOG_FORMAT
  --demo              seed a demo account "Demo Co" unless it exists, and print a
                      fresh API token of its primary admin with a curl example
  -h, --help          show this help

Logs go to stderr. The demo's sign-in details go to stdout.

Examples:
  usher serve --demo
  USHER_DB=postgres://usher@db:5432/usher usher serve --addr :8080 --log-format json
`

// serveConfig is everything serve reads from flags and environment.
type serveConfig struct {
	addr, db, baseURL, smtp, mailFrom, logLevel, logFormat string
	demo                                                   bool
	smtpSafe                                               string // smtp without its password, for logs
}

// defaultAddr is where serve listens unless told otherwise: loopback only.
const defaultAddr = "127.0.0.1:8080"

// Server timeouts: generous enough for a CSV report or a large usage
// upload, short enough that a stuck client cannot hold a connection forever.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 60 * time.Second
	writeTimeout      = 120 * time.Second
	idleTimeout       = 120 * time.Second
	shutdownTimeout   = 20 * time.Second
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c serveConfig
	fs := newFlagSet("serve")
	fs.StringVar(&c.addr, "addr", defaultAddr, "address to listen on")
	fs.StringVar(&c.db, "db", defaultDB, "database")
	fs.StringVar(&c.baseURL, "base-url", "", "public URL of this server")
	fs.StringVar(&c.smtp, "smtp", "", "SMTP server URL")
	fs.StringVar(&c.mailFrom, "mail-from", "", "sender of notification emails")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	fs.BoolVar(&c.demo, "demo", false, "seed and print a demo account")
	err := parse(fs, serveHelp, args, stdout, map[string]string{
		"addr": "USHER_ADDR", "db": "USHER_DB", "base-url": "USHER_BASE_URL", "smtp": "USHER_SMTP_URL",
		"mail-from": "USHER_MAIL_FROM", "log-level": "USHER_LOG_LEVEL", "log-format": "USHER_LOG_FORMAT",
	})
	if err != nil {
		return err
	}
	log, err := c.check(stderr)
	if err != nil {
		return err
	}

	db, err := openDB(ctx, c.db)
	if err != nil {
		return err
	}
	defer db.Close()
	log.Info("database ready", "engine", db.Engine(), "db", redact(c.db))
	svc := access.New(db.Access(), nil)
	authSvc := auth.New(db.Auth(), auth.Config{})

	// Listen before seeding, so a taken port fails at once.
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.addr, err)
	}
	defer ln.Close()
	base := c.baseURL
	if base == "" {
		base = localURL(ln.Addr().String())
	}
	base = strings.TrimRight(base, "/")

	if c.smtp == "" {
		log.Warn("no SMTP server configured (--smtp or USHER_SMTP_URL): usage notification emails will not be delivered")
	} else {
		log.Info("SMTP server configured", "smtp", c.smtpSafe, "mail_from", c.mailFrom)
	}

	if c.demo {
		if err := startDemo(ctx, svc, authSvc, log, base, stdout); err != nil {
			return err
		}
	}

	ui, err := console.New(console.Config{Access: svc, Auth: authSvc, Logger: log, SecureCookies: strings.HasPrefix(base, "https://")})
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	srv := &http.Server{
		Handler: web.NewHandler(web.Config{
			Access:  svc,
			Logger:  log,
			Health:  func(ctx context.Context) error { return db.SQL().PingContext(ctx) },
			Console: ui,
		}),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "base_url", base)

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

// check validates the configuration and builds the logger.
func (c *serveConfig) check(stderr io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, usageErrorf("serve: --log-level %q: want debug, info, warn or error", c.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch c.logFormat {
	case "text":
		h = slog.NewTextHandler(stderr, opts)
	case "json":
		h = slog.NewJSONHandler(stderr, opts)
	default:
		return nil, usageErrorf("serve: --log-format %q: want text or json", c.logFormat)
	}
	if c.baseURL != "" {
		u, err := url.Parse(c.baseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, usageErrorf("serve: --base-url %q: want an http:// or https:// URL such as https://usher.example.com", c.baseURL)
		}
	}
	if c.smtp != "" {
		// mail.ParseURL's errors never show the password.
		smtp, err := mail.ParseURL(c.smtp)
		if err != nil {
			return nil, usageErrorf("serve: --smtp: %v", err)
		}
		c.smtpSafe = smtp.String()
	}
	if c.mailFrom != "" {
		if _, err := netmail.ParseAddress(c.mailFrom); err != nil {
			return nil, usageErrorf("serve: --mail-from %q: want an address such as usher@example.com or \"Usher <usher@example.com>\"", c.mailFrom)
		}
	}
	return slog.New(h), nil
}

// localURL is the URL at which this machine reaches a listener on addr: a
// wildcard address (":8080", "0.0.0.0:8080") becomes the loopback address.
func localURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// demoSeed fixes the demo's random choices, so every demo looks the same.
const demoSeed = 20240601

func startDemo(ctx context.Context, svc *access.Service, authSvc *auth.Service, log *slog.Logger, base string, stdout io.Writer) error {
	start := time.Now()
	s, err := demo.Ensure(ctx, svc, start, rand.New(rand.NewPCG(demoSeed, demoSeed)))
	if err != nil {
		return err
	}
	if r := s.Seeded; r != nil {
		log.Info("demo account seeded", "account_id", r.Account.ID, "users", r.Users, "subscriptions", r.Subscriptions,
			"seats", r.Seats, "seats_used", r.SeatsUsed, "benefit_grants", r.BenefitGrants, "managers_without_seat", r.ManagersWithoutSeat, "took", time.Since(start).Round(time.Millisecond).String())
	} else {
		log.Info("demo account exists; made a fresh API token", "account_id", s.Account.ID)
	}
	// The known password is set once; a password someone set since is kept.
	has, same, err := authSvc.PasswordIs(ctx, s.Account.ID, s.Admin.ID, demo.AdminPassword)
	if err != nil {
		return fmt.Errorf("demo password: %w", err)
	}
	password := demo.AdminPassword
	if !has {
		if err := authSvc.SetPassword(ctx, s.Account.ID, s.Admin.ID, demo.AdminPassword); err != nil {
			return fmt.Errorf("demo password: %w", err)
		}
	} else if !same {
		password = "(changed since the demo set it; usher user set-password sets a new one)"
	}
	fmt.Fprintf(stdout, `
Usher demo: account %q (id %d, time zone %s)
  URL:        %s
  Sign in:    %s/signin
  Admin:      %s <%s> (primary admin)
  Password:   %s
  API token:  %s
              (a new token on every --demo start; earlier ones keep working)
Try:
  curl -H "Authorization: Bearer %s" %s/api/v1/subscriptions
  curl -H "Authorization: Bearer %s" '%s/api/v1/users?limit=5'

`, s.Account.Name, s.Account.ID, s.Account.TimeZone, base, base, s.Admin.Name, s.Admin.Email, password, s.Token, s.Token, base, s.Token, base)
	return nil
}
