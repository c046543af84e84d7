// Package web is Usher's HTTP edge: the REST API under /api/v1, with the
// admin console (package console) mounted for every other path. It
// translates requests into calls of the domain services and their errors
// back into HTTP; it decides no permissions itself.
package web

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/sso"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// Config holds what the HTTP handler depends on.
type Config struct {
	Access  *access.Service                 // decides and does everything the API offers
	Notify  *notify.Service                 // usage notification settings and runs; nil = those endpoints answer 404
	Reclaim *reclaim.Service                // reclaim policies; nil = those endpoints answer 404
	Logger  *slog.Logger                    // one line per request, and internal errors; nil = discard
	Health  func(ctx context.Context) error // pings the database; nil = always healthy
	MaxBody int64                           // bytes; 0 = 1 MiB default for JSON bodies
	// Usage ingests usage events and answers the Usage Report; nil leaves
	// those endpoints out.
	Usage         *usage.Service
	MaxIngestBody int64 // bytes of one usage upload; 0 = DefaultMaxIngestBody
	// Console serves every path the API does not (the admin console, see
	// package console); nil = those paths answer 404 problems.
	Console http.Handler
	// SCIM serves the SCIM 2.0 service provider under /scim/v2/ (package
	// web/scim); nil leaves it out.
	SCIM http.Handler
	// SSO keeps single sign-on settings; nil leaves /api/v1/sso out.
	SSO *sso.Service

	// Ready says whether this server should get traffic (GET /readyz): nil
	// when the database answers and is migrated and the server is not
	// stopping; an error wrapping ErrStopping while it drains. nil = Health.
	Ready func(ctx context.Context) error
	// Metrics is the registry GET /metrics shows; share one between
	// NewHandler and MetricsHandler. nil = a new one.
	Metrics *Metrics
	// MetricsToken, when set, must come as "Authorization: Bearer <token>"
	// with every GET /metrics.
	MetricsToken string
	// MetricsElsewhere leaves GET /metrics off this handler: it is served
	// by MetricsHandler on another listener.
	MetricsElsewhere bool
	// Pools reports the database connection pools by name; nil = none.
	Pools func() map[string]sql.DBStats
	// Seats reports seats assigned and unassigned since start; nil = none.
	Seats func() (assigned, unassigned int64)
}

// ErrStopping is what Config.Ready answers while the server drains.
var ErrStopping = errors.New("stopping")

// DefaultMaxBody bounds JSON request bodies when Config.MaxBody is 0.
const DefaultMaxBody = 1 << 20

// healthTimeout bounds the database ping of GET /healthz, so a hung database
// answers 503 before the load balancer's own probe times out.
const healthTimeout = 2 * time.Second

// server is the set of dependencies the handlers are methods on.
type server struct {
	access  *access.Service
	notify  *notify.Service
	reclaim *reclaim.Service
	log     *slog.Logger
	health  func(ctx context.Context) error
	maxBody int64
	metrics *Metrics

	ready        func(ctx context.Context) error
	metricsToken string
	pools        func() map[string]sql.DBStats
	seats        func() (assigned, unassigned int64)

	usage         *usage.Service
	maxIngestBody int64
	sso           *sso.Service
}

// NewHandler returns the HTTP handler for the API and /healthz. Every request
// is logged, recovered from panics and answered with problem+json on errors.
func NewHandler(cfg Config) http.Handler {
	s := newServer(cfg)
	mux := http.NewServeMux()
	s.routes(mux, !cfg.MetricsElsewhere)
	if cfg.SCIM != nil {
		mux.Handle("/scim/v2/", cfg.SCIM)
	}
	api := s.unrouted(mux)
	if cfg.Console == nil {
		return s.observe(s.apiHeaders(api))
	}
	// The API keeps its own mux, so its 404 and 405 problems are not
	// swallowed by the console's catch-all "/".
	split := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" || isAPIPath(r.URL.Path) {
			api.ServeHTTP(w, r)
			return
		}
		cfg.Console.ServeHTTP(w, r)
	})
	return s.observe(s.apiHeaders(split))
}

// MetricsHandler serves GET /metrics alone, for a listener of its own
// (usher serve --metrics-addr). Give it the Config given to NewHandler, with
// the same Metrics, so that it shows that handler's requests.
func MetricsHandler(cfg Config) http.Handler {
	s := newServer(cfg)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", s.serveMetrics)
	return s.apiHeaders(s.unrouted(mux))
}

func newServer(cfg Config) *server {
	s := &server{access: cfg.Access, notify: cfg.Notify, reclaim: cfg.Reclaim, usage: cfg.Usage, log: cfg.Logger, health: cfg.Health,
		maxBody: cfg.MaxBody, maxIngestBody: cfg.MaxIngestBody, metrics: cfg.Metrics,
		ready: cfg.Ready, metricsToken: cfg.MetricsToken, pools: cfg.Pools, seats: cfg.Seats, sso: cfg.SSO}
	if s.metrics == nil {
		s.metrics = NewMetrics()
	}
	if s.ready == nil {
		s.ready = s.health
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBody
	}
	if s.maxIngestBody <= 0 {
		s.maxIngestBody = DefaultMaxIngestBody
	}
	return s
}

// requestInfo is filled in while a request is served and read when it is logged.
type requestInfo struct {
	accountID, userID int64
}

type requestInfoKey struct{}

// NoteActor records whom a request acts for, so its log line names them.
// Handlers outside this package that authenticate on their own (the
// console's sessions) call it; it does nothing outside a logged request.
func NoteActor(ctx context.Context, accountID, userID int64) {
	if info, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		info.accountID, info.userID = accountID, userID
	}
}

// recorder remembers the status written, for the log line and for deciding
// whether a panic can still be answered with a problem.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (rw *recorder) WriteHeader(code int) {
	if rw.status == 0 {
		rw.status = code
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	n, err := rw.ResponseWriter.Write(b)
	rw.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// observe logs one line per request and turns a handler's panic into a 500
// without taking the server down.
func (s *server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{}
		id := requestIDOf(r)
		w.Header().Set(RequestIDHeader, id)
		ctx := context.WithValue(r.Context(), requestInfoKey{}, info)
		r = r.WithContext(context.WithValue(ctx, requestIDKey{}, id))
		rw := &recorder{ResponseWriter: w}
		defer func() {
			abort := false
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				err := fmt.Errorf("panic: %v\n%s", v, debug.Stack())
				if rw.status == 0 {
					s.writeError(rw, r, err) // logs it
				} else {
					// Part of an answer is out: cut the connection so the
					// client sees a failure, not a truncated success.
					s.log.ErrorContext(r.Context(), "panic after the answer began",
						slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
					abort = true
				}
			}
			status := rw.status
			if status == 0 {
				status = http.StatusOK
			}
			elapsed := time.Since(start)
			// The mux has set r.Pattern on this request by now.
			s.metrics.observe(r.Pattern, status, elapsed)
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelError
			}
			attrs := []slog.Attr{
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Duration("duration", elapsed),
				slog.Int64("bytes", rw.bytes),
			}
			if info.userID != 0 {
				attrs = append(attrs, slog.Int64("account_id", info.accountID), slog.Int64("user_id", info.userID))
			}
			s.log.LogAttrs(r.Context(), level, "request", attrs...)
			if abort {
				panic(http.ErrAbortHandler)
			}
		}()
		next.ServeHTTP(rw, r)
	})
}

// apiHeaders keeps API answers out of caches and stops browsers from
// guessing content types.
func (s *server) apiHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if isAPIPath(r.URL.Path) {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

func isAPIPath(p string) bool {
	return p == "/healthz" || p == "/readyz" || p == "/metrics" || p == "/api/v1" || strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/scim/")
}

// unrouted answers requests no route matches (404) or matches only with
// another method (405) with a problem instead of ServeMux's plain text.
func (s *server) unrouted(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" || !isAPIPath(r.URL.Path) {
			mux.ServeHTTP(w, r)
			return
		}
		// Ask the mux what it would answer, without letting it write.
		probe := &statusProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		switch probe.status {
		case http.StatusNotFound:
			s.writeError(w, r, usher.Errorf(usher.ENOTFOUND, "no such endpoint: %s %s", r.Method, r.URL.Path))
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", probe.header.Get("Allow"))
			s.writeError(w, r, usher.Errorf(codeMethodNotAllowed, "%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, probe.header.Get("Allow")))
		default: // e.g. a redirect to the cleaned path
			mux.ServeHTTP(w, r)
		}
	})
}

// statusProbe is a ResponseWriter that only remembers the status and headers.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}
func (p *statusProbe) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

// healthz answers load balancers: 200 when the database answers, else 503.
func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	if s.health != nil {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		defer cancel()
		if err := s.health(ctx); err != nil {
			s.log.ErrorContext(r.Context(), "health check failed", slog.Any("err", err))
			s.writeJSON(w, r, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
			return
		}
	}
	s.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers whether this server should get traffic: 503 until the
// database answers and is migrated, and while the server drains before it
// stops, so a load balancer moves requests elsewhere first.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		defer cancel()
		if err := s.ready(ctx); errors.Is(err, ErrStopping) {
			s.writeJSON(w, r, http.StatusServiceUnavailable, map[string]string{"status": "stopping"})
			return
		} else if err != nil {
			s.log.WarnContext(r.Context(), "not ready", slog.Any("err", err))
			s.writeJSON(w, r, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
			return
		}
	}
	s.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
}
