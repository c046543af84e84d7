package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/auth"
	"github.com/usherhq/usher/internal/demo"
	"github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/internal/scheduler"
	"github.com/usherhq/usher/internal/sso"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/web"
	"github.com/usherhq/usher/internal/web/console"
	"github.com/usherhq/usher/internal/web/scim"
)

const serveHelp = `Usage: usher serve [flags]

Runs the HTTP server: the admin console at /, the REST API under /api/v1,
GET /healthz, GET /readyz and GET /metrics; and the scheduler that sends
usage notification emails. It applies database migrations first.

SIGINT or SIGTERM stop it cleanly: /readyz answers 503 at once and the
scheduler claims no more emails; after --drain-delay it stops accepting
connections and lets requests in flight finish (within --shutdown-timeout);
an email being sent may finish, or its claim is handed back for another
replica; then it exits 0.

Flags (a flag wins over its environment variable):
  --addr HOST:PORT    address to listen on (default 127.0.0.1:8080)  env USHER_ADDR
` + dbFlagHelp + `  --base-url URL      public URL of this server, used in email links
                      (default http://<addr>)                    env USHER_BASE_URL
  --smtp URL          SMTP server for usage notification emails: smtp://host:port,
                      smtp+starttls://user:pass@host:587 or smtps://host:465;
                      empty means emails are not delivered        env USHER_SMTP_URL
  --mail-from ADDR    sender of notification emails, e.g. "Usher <usher@example.com>";
                      required with --smtp                       env USHER_MAIL_FROM
  --scheduler-interval DURATION
                      how often to look for due notification emails
                      (default 30s)                        env USHER_SCHEDULER_INTERVAL
  --trusted-proxies CIDRS
                      comma-separated networks of reverse proxies whose
                      X-Forwarded-For names the client (for the sign-in
                      limit) and X-Forwarded-Proto its scheme, e.g.
                      10.0.0.0/8,192.0.2.7; default none: the connection's
                      address is the client          env USHER_TRUSTED_PROXIES
  --log-level LEVEL   debug, info, warn or error (default info)  env USHER_LOG_LEVEL
  --log-format FMT    text or json (default text)                env USHER_LOG_FORMAT
  --usage-retention D how long raw usage events are kept before they are pruned
                      in the background, in days ("400" or "400d") or as a Go
                      duration ("9600h"); older events are refused (default 400d)
                                                                 env USHER_USAGE_RETENTION
  --tls-cert FILE     serve HTTPS with this PEM certificate (chain); needs
                      --tls-key                                   env USHER_TLS_CERT
  --tls-key FILE      the certificate's PEM private key            env USHER_TLS_KEY
  --metrics-addr HOST:PORT
                      serve GET /metrics on this address only, not on --addr
                                                                  env USHER_METRICS_ADDR
  --metrics-token T   GET /metrics wants "Authorization: Bearer T"
                                                                  env USHER_METRICS_TOKEN
  --drain-delay D     on SIGTERM, keep serving this long with /readyz at 503
                      so load balancers stop sending first (default 0s)
                                                                  env USHER_DRAIN_DELAY
  --shutdown-timeout D
                      the longest requests in flight may take to finish on
                      SIGTERM (default 20s)                env USHER_SHUTDOWN_TIMEOUT
  --demo              seed a demo account "Demo Co" unless it exists, and print a
                      fresh API token of its primary admin with a curl example;
                      the token printed by an earlier start is revoked
  -h, --help          show this help

Logs go to stderr. The demo's sign-in details go to stdout.

Examples:
  usher serve --demo
  USHER_DB=postgres://usher@db:5432/usher usher serve --addr :8080 --log-format json
`

// serveConfig is everything serve reads from flags and environment.
type serveConfig struct {
	addr, db, baseURL, smtp, mailFrom, logLevel, logFormat string
	trustedProxies                                         string
	proxies                                                web.TrustedProxies // trustedProxies parsed
	demo                                                   bool
	interval                                               time.Duration // of the scheduler
	smtpSafe                                               string        // smtp without its password, for logs
	retention                                              retentionFlag
	tlsCert, tlsKey                                        string
	metricsAddr, metricsToken                              string
	drainDelay, shutdownTimeout                            time.Duration
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
	shutdownTimeout   = 20 * time.Second // default of --shutdown-timeout
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c serveConfig
	fs := newFlagSet("serve")
	fs.StringVar(&c.addr, "addr", defaultAddr, "address to listen on")
	fs.StringVar(&c.db, "db", defaultDB, "database")
	fs.StringVar(&c.baseURL, "base-url", "", "public URL of this server")
	fs.StringVar(&c.smtp, "smtp", "", "SMTP server URL")
	fs.StringVar(&c.mailFrom, "mail-from", "", "sender of notification emails")
	fs.StringVar(&c.trustedProxies, "trusted-proxies", "", "networks of reverse proxies whose X-Forwarded-For is believed")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	fs.BoolVar(&c.demo, "demo", false, "seed and print a demo account")
	fs.DurationVar(&c.interval, "scheduler-interval", scheduler.DefaultInterval, "how often to look for due emails")
	c.retention = retentionFlag(usage.DefaultRetention)
	fs.Var(&c.retention, "usage-retention", "how long raw usage events are kept")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate for HTTPS")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key for HTTPS")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "serve /metrics on this address only")
	fs.StringVar(&c.metricsToken, "metrics-token", "", "bearer token /metrics wants")
	fs.DurationVar(&c.drainDelay, "drain-delay", 0, "keep serving this long after SIGTERM with /readyz at 503")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", shutdownTimeout, "the longest requests may take to finish on SIGTERM")
	err := parse(fs, serveHelp, args, stdout, map[string]string{
		"addr": "USHER_ADDR", "db": "USHER_DB", "base-url": "USHER_BASE_URL", "smtp": "USHER_SMTP_URL",
		"mail-from": "USHER_MAIL_FROM", "log-level": "USHER_LOG_LEVEL", "log-format": "USHER_LOG_FORMAT",
		"scheduler-interval": "USHER_SCHEDULER_INTERVAL", "usage-retention": "USHER_USAGE_RETENTION",
		"tls-cert": "USHER_TLS_CERT", "tls-key": "USHER_TLS_KEY", "metrics-addr": "USHER_METRICS_ADDR",
		"metrics-token": "USHER_METRICS_TOKEN", "drain-delay": "USHER_DRAIN_DELAY", "shutdown-timeout": "USHER_SHUTDOWN_TIMEOUT",
		"trusted-proxies": "USHER_TRUSTED_PROXIES",
	})
	if err != nil {
		return err
	}
	if c.drainDelay < 0 || c.shutdownTimeout <= 0 {
		return usageErrorf("serve: --drain-delay must not be negative and --shutdown-timeout must be positive")
	}
	log, err := c.check(stderr)
	if err != nil {
		return err
	}
	now, err := clockFromEnv(log)
	if err != nil {
		return err
	}

	// A shared lock on an SQLite file tells `usher restore` that a server
	// uses it; it is taken before the database is opened and let go after
	// it is closed.
	if path, ok := store.SQLitePath(c.db); ok {
		unlock, err := lockFile(path+lockSuffix, false)
		if err != nil {
			return fmt.Errorf("lock %s: %w", path+lockSuffix, err)
		}
		defer unlock()
	}
	db, err := openDB(ctx, c.db)
	if err != nil {
		return err
	}
	defer db.Close()
	log.Info("database ready", "engine", db.Engine(), "db", redact(c.db))
	svc := access.New(db.Access(), now)
	use := usage.New(db.Usage(), usage.Config{Now: now, Retention: time.Duration(c.retention)})

	// Listen before seeding, so a taken port fails at once.
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.addr, err)
	}
	defer ln.Close()
	base := c.baseURL
	if base == "" {
		base = localURL(ln.Addr().String())
		if c.tlsCert != "" {
			base = "https" + strings.TrimPrefix(base, "http")
		}
	}
	base = strings.TrimRight(base, "/")
	// Single sign-on decides who may still sign in with a password, so the
	// auth service asks it.
	ssoSvc := sso.New(db.SSO(), sso.Config{BaseURL: base, Now: now, Logger: log})
	authSvc := auth.New(db.Auth(), auth.Config{PasswordPolicy: ssoSvc.PasswordAllowed})

	notifications, err := newNotifyService(db, mailConfig{smtp: c.smtp, from: c.mailFrom, baseURL: base}, now, log)
	if err != nil {
		return err
	}
	reclaims, err := newReclaimService(db, svc, mailConfig{smtp: c.smtp, from: c.mailFrom, baseURL: base}, now, log)
	if err != nil {
		return err
	}
	if c.smtp == "" {
		log.Warn("no SMTP server configured (--smtp or USHER_SMTP_URL): usage notification emails will not be delivered; they are planned and wait, unsent, until Usher runs with a mail server")
	} else {
		log.Info("SMTP server configured", "smtp", c.smtpSafe, "mail_from", c.mailFrom)
	}

	if c.demo {
		if err := startDemo(ctx, db, svc, use, authSvc, log, base, stdout); err != nil {
			return err
		}
	}

	ui, err := console.New(console.Config{Access: svc, Auth: authSvc, Usage: use, Notify: notifications, Reclaim: reclaims, SSO: ssoSvc, Now: now, Logger: log,
		SecureCookies: strings.HasPrefix(base, "https://"), TrustedProxies: c.proxies})
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	var stopping atomic.Bool
	webCfg := web.Config{
		Access:  svc,
		Notify:  notifications,
		Reclaim: reclaims,
		Usage:   use,
		Logger:  log,
		Health:  func(ctx context.Context) error { return db.SQL().PingContext(ctx) },
		Console: ui,
		SCIM:    scim.NewHandler(scim.Config{Access: svc, Logger: log, BaseURL: base}),
		SSO:     ssoSvc,
		Ready: func(ctx context.Context) error {
			if stopping.Load() {
				return web.ErrStopping
			}
			return ready(ctx, db)
		},
		Metrics:          web.NewMetrics(),
		MetricsToken:     c.metricsToken,
		MetricsElsewhere: c.metricsAddr != "",
		Pools:            db.PoolStats,
		Seats: func() (int64, int64) {
			return db.Stats().SeatsAssigned.Load(), db.Stats().SeatsUnassigned.Load()
		},
	}
	srv := &http.Server{
		Handler:           web.NewHandler(webCfg),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	var (
		metricsSrv *http.Server
		mln        net.Listener
	)
	if c.metricsAddr != "" {
		if mln, err = net.Listen("tcp", c.metricsAddr); err != nil {
			return fmt.Errorf("listen on %s for metrics: %w", c.metricsAddr, err)
		}
		defer mln.Close()
		metricsSrv = &http.Server{Handler: web.MetricsHandler(webCfg), ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout: readTimeout, WriteTimeout: writeTimeout, ErrorLog: srv.ErrorLog}
	}
	served := make(chan error, 2)
	go func() {
		if c.tlsCert != "" {
			served <- srv.ServeTLS(ln, c.tlsCert, c.tlsKey)
			return
		}
		served <- srv.Serve(ln)
	}()
	log.Info("listening", "addr", ln.Addr().String(), "base_url", base, "tls", c.tlsCert != "")
	if metricsSrv != nil {
		go func() { served <- metricsSrv.Serve(mln) }()
		log.Info("metrics listening", "addr", mln.Addr().String())
	}

	// The scheduler lives exactly as long as the server: stopScheduler
	// ends it and waits for the pass in progress, on every way out.
	schedCtx, cancelScheduler := context.WithCancel(ctx)
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		superviseScheduler(schedCtx, scheduler.All{notifications, reclaims}, c.interval, log)
	}()
	stopScheduler := func() { cancelScheduler(); <-schedDone }
	defer stopScheduler()
	// Background work lives as long as the server and is waited for on the
	// way out, after requests in flight have finished.
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var background sync.WaitGroup
	defer func() {
		stopBackground()
		background.Wait()
	}()
	background.Go(func() { prunePeriodically(bgCtx, use, pruneInterval, log) })

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// The scheduler saw ctx end too: it claims nothing more, and an email
	// being sent finishes or is handed back (notify.Config.StopGrace).
	stopping.Store(true)
	log.Info("shutting down", "drain_delay", c.drainDelay.String(), "timeout", c.shutdownTimeout.String())
	if c.drainDelay > 0 {
		// Still serving, with /readyz at 503, so load balancers take this
		// replica out before its listener closes.
		time.Sleep(c.drainDelay)
	}
	sctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
	defer cancel()
	if metricsSrv != nil {
		defer metricsSrv.Close()
	}
	if err := srv.Shutdown(sctx); err != nil {
		stopScheduler()
		return fmt.Errorf("shut down: requests still running after %s were cut: %w", c.shutdownTimeout, err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	stopScheduler()
	log.Info("stopped")
	return nil
}

// ready is nil when the database answers and has every migration this
// binary knows, so a replica started before `usher migrate` finished gets
// no traffic.
func ready(ctx context.Context, db *store.DB) error {
	pending, err := db.PendingMigrations(ctx)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		return fmt.Errorf("migrations not applied: %s", strings.Join(pending, ", "))
	}
	return nil
}

// check validates the configuration and builds the logger.
func (c *serveConfig) check(stderr io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, usageErrorf("serve: --log-level %q: want debug, info, warn or error", c.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, usageErrorf("serve: --tls-cert and --tls-key go together: give both for HTTPS, or neither")
	}
	if c.tlsCert != "" {
		if _, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey); err != nil {
			return nil, usageErrorf("serve: --tls-cert/--tls-key: %v", err)
		}
	}
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
	} else if c.smtp != "" {
		return nil, usageErrorf("serve: --smtp needs --mail-from (or USHER_MAIL_FROM), the sender of the emails, e.g. \"Usher <usher@example.com>\"")
	}
	if c.interval <= 0 {
		return nil, usageErrorf("serve: --scheduler-interval %s: want a positive duration such as 30s or 1m", c.interval)
	}
	proxies, err := web.ParseTrustedProxies(c.trustedProxies)
	if err != nil {
		return nil, usageErrorf("serve: --trusted-proxies: %v", err)
	}
	c.proxies = proxies
	return slog.New(web.LogHandler(h)), nil
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

func startDemo(ctx context.Context, db *store.DB, svc *access.Service, use *usage.Service, authSvc *auth.Service, log *slog.Logger, base string, stdout io.Writer) error {
	start := time.Now()
	rnd := rand.New(rand.NewPCG(demoSeed, demoSeed))
	// The account is set up as if months ago, so that its seats have a
	// history: a seat assigned then and never used is inactive today.
	// Once seeded, the account lives in the present.
	setUp := start.AddDate(0, -demo.HistoryMonths, 0)
	// The seeding clock moves, so that seats are assigned over two years
	// and leavers give theirs up before the set-up day.
	var clock atomic.Int64
	clock.Store(setUp.UnixNano())
	seeder := access.New(db.Access(), func() time.Time { return time.Unix(0, clock.Load()) })
	opt := demo.Options{SetUpAt: setUp, SetClock: func(t time.Time) { clock.Store(t.UnixNano()) }}
	accounts, err := svc.ListAccounts(ctx)
	if err != nil {
		return err
	}
	for _, a := range accounts {
		if a.Name == demo.AccountName {
			seeder = svc
		}
	}
	s, err := demo.EnsureWith(ctx, seeder, start, rnd, opt)
	if err != nil {
		return err
	}
	if r := s.Seeded; r != nil {
		u, err := demo.SeedUsage(ctx, svc, use, s, start, rnd)
		if err != nil {
			return err
		}
		log.Info("demo account seeded", "account_id", r.Account.ID, "users", r.Users, "subscriptions", r.Subscriptions,
			"seats", r.Seats, "seats_used", r.SeatsUsed+u.RecentSeats, "benefit_grants", r.BenefitGrants, "managers_without_seat", r.ManagersWithoutSeat,
			"usage_events", u.Events, "took", time.Since(start).Round(time.Millisecond).String())
	} else {
		log.Info("demo account exists; replaced its API token", "account_id", s.Account.ID, "revoked", s.Replaced)
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
              (the demo's one token: each --demo start revokes the one it
              printed before and prints a new one)
Try:
  curl -H "Authorization: Bearer %s" %s/api/v1/subscriptions
  curl -H "Authorization: Bearer %s" '%s/api/v1/users?limit=5'

`, s.Account.Name, s.Account.ID, s.Account.TimeZone, base, base, s.Admin.Name, s.Admin.Email, password, s.Token, s.Token, base, s.Token, base)
	return nil
}

// pruneInterval is how often raw usage events past their retention are
// deleted. Pruning is idempotent, so replicas may each run it.
const pruneInterval = time.Hour

// prunePeriodically deletes raw usage events past their retention now and
// then every interval, until ctx ends. A failure is logged and retried at
// the next tick; the events wait, nothing is lost.
func prunePeriodically(ctx context.Context, use *usage.Service, interval time.Duration, log *slog.Logger) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		n, err := use.Prune(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Error("pruning usage events failed; retrying later", "err", err, "retry_in", interval.String())
		case n > 0:
			log.Info("pruned usage events", "events", n, "retention_days", int(use.Retention().Hours()/24),
				"took", time.Since(start).Round(time.Millisecond).String())
		}
		t.Reset(interval)
	}
}

// retentionFlag reads a retention as days ("400", "400d") or a Go duration
// ("9600h"), at least one day.
type retentionFlag time.Duration

func (r *retentionFlag) String() string {
	d := time.Duration(*r)
	if d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

func (r *retentionFlag) Set(s string) error {
	s = strings.TrimSpace(s)
	var d time.Duration
	if n, err := strconv.Atoi(strings.TrimSuffix(s, "d")); err == nil {
		d = time.Duration(n) * 24 * time.Hour
	} else if d, err = time.ParseDuration(s); err != nil {
		return fmt.Errorf("want a number of days such as 400d, or a duration such as 9600h")
	}
	if d < 24*time.Hour {
		return fmt.Errorf("must be at least one day")
	}
	*r = retentionFlag(d)
	return nil
}
