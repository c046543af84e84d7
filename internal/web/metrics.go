package web

import (
	"bytes"
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/usher"
)

// durationBuckets are the upper bounds, in seconds, of the request duration
// histogram: fine below 100 ms, where the API's pages and reports should be.
var durationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Metrics counts requests per route and status and times them, for
// GET /metrics in Prometheus' text format. Routes are ServeMux patterns, never
// raw paths, so the number of series stays bounded whatever clients send.
type Metrics struct {
	start time.Time

	mu       sync.Mutex
	requests map[requestKey]uint64
	timings  map[string]*histogram // by route
}

type requestKey struct {
	route string
	code  int
}

type histogram struct {
	counts []uint64 // per bucket, not cumulative; one more for +Inf
	sum    float64
	n      uint64
}

// NewMetrics returns an empty registry.
func NewMetrics() *Metrics {
	return &Metrics{start: time.Now(), requests: map[requestKey]uint64{}, timings: map[string]*histogram{}}
}

// observe records one answered request. route is "" for requests no route
// matched; they are counted under "unmatched".
func (m *Metrics) observe(route string, code int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[requestKey{route, code}]++
	h := m.timings[route]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(durationBuckets)+1)}
		m.timings[route] = h
	}
	sec := d.Seconds()
	i, _ := slices.BinarySearch(durationBuckets, sec)
	h.counts[i]++
	h.sum += sec
	h.n++
}

// writeTo writes every series in the Prometheus text exposition format.
func (m *Metrics) writeTo(w io.Writer) error {
	m.mu.Lock()
	keys := make([]requestKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b requestKey) int {
		if a.route != b.route {
			if a.route < b.route {
				return -1
			}
			return 1
		}
		return a.code - b.code
	})
	counts := make([]uint64, len(keys))
	for i, k := range keys {
		counts[i] = m.requests[k]
	}
	routes := make([]string, 0, len(m.timings))
	for r := range m.timings {
		routes = append(routes, r)
	}
	slices.Sort(routes)
	hists := make([]histogram, len(routes))
	for i, r := range routes {
		h := m.timings[r]
		hists[i] = histogram{counts: slices.Clone(h.counts), sum: h.sum, n: h.n}
	}
	m.mu.Unlock()

	p := &promWriter{w: w}
	p.printf("# HELP usher_http_requests_total HTTP requests answered, by route pattern and status code.\n")
	p.printf("# TYPE usher_http_requests_total counter\n")
	for i, k := range keys {
		p.printf("usher_http_requests_total{route=%s,code=\"%d\"} %d\n", strconv.Quote(k.route), k.code, counts[i])
	}
	p.printf("# HELP usher_http_request_duration_seconds Time to answer HTTP requests, by route pattern.\n")
	p.printf("# TYPE usher_http_request_duration_seconds histogram\n")
	for i, r := range routes {
		h := hists[i]
		var cum uint64
		for j, le := range durationBuckets {
			cum += h.counts[j]
			p.printf("usher_http_request_duration_seconds_bucket{route=%s,le=\"%g\"} %d\n", strconv.Quote(r), le, cum)
		}
		p.printf("usher_http_request_duration_seconds_bucket{route=%s,le=\"+Inf\"} %d\n", strconv.Quote(r), h.n)
		p.printf("usher_http_request_duration_seconds_sum{route=%s} %g\n", strconv.Quote(r), h.sum)
		p.printf("usher_http_request_duration_seconds_count{route=%s} %d\n", strconv.Quote(r), h.n)
	}
	p.printf("# HELP usher_goroutines Goroutines in this process.\n")
	p.printf("# TYPE usher_goroutines gauge\n")
	p.printf("usher_goroutines %d\n", runtime.NumGoroutine())
	p.printf("# HELP usher_uptime_seconds Seconds since this process started serving.\n")
	p.printf("# TYPE usher_uptime_seconds gauge\n")
	p.printf("usher_uptime_seconds %g\n", time.Since(m.start).Seconds())
	return p.err
}

// promWriter keeps the first write error, so writeTo checks once.
type promWriter struct {
	w   io.Writer
	err error
}

func (p *promWriter) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

// serveMetrics answers GET /metrics. Without a token it is public, like
// /healthz: it shows counts, nothing about accounts or users. With
// Config.MetricsToken it wants that token.
func (s *server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if s.metricsToken != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.metricsToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="usher"`)
			s.writeError(w, r, usher.Errorf(usher.EUNAUTHORIZED, "GET /metrics needs the metrics token as Authorization: Bearer <token>"))
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	var buf bytes.Buffer
	if err := s.metrics.writeTo(&buf); err != nil {
		s.log.DebugContext(r.Context(), "write metrics", "err", err)
	}
	s.writeDomainMetrics(r.Context(), &promWriter{w: &buf})
	_, _ = w.Write(buf.Bytes())
}

// writeDomainMetrics writes what the domain counted and what is waiting.
// The counters live in the domain services and the store as plain atomic
// numbers, so nothing below the edge knows the exposition format.
func (s *server) writeDomainMetrics(ctx context.Context, p *promWriter) {
	if s.usage != nil {
		st := s.usage.Stats()
		p.printf("# HELP usher_usage_events_total Usage events received, by outcome: accepted (stored), duplicate (sent before), rejected (refused, with a reason).\n")
		p.printf("# TYPE usher_usage_events_total counter\n")
		p.printf("usher_usage_events_total{outcome=\"accepted\"} %d\n", st.EventsAccepted.Load())
		p.printf("usher_usage_events_total{outcome=\"duplicate\"} %d\n", st.EventsDuplicate.Load())
		p.printf("usher_usage_events_total{outcome=\"rejected\"} %d\n", st.EventsRejected.Load())
	}
	if s.seats != nil {
		assigned, unassigned := s.seats()
		p.printf("# HELP usher_seat_changes_total Seats assigned and unassigned, committed, by change.\n")
		p.printf("# TYPE usher_seat_changes_total counter\n")
		p.printf("usher_seat_changes_total{change=\"assigned\"} %d\n", assigned)
		p.printf("usher_seat_changes_total{change=\"unassigned\"} %d\n", unassigned)
	}
	if s.reclaim != nil {
		st := s.reclaim.Stats()
		p.printf("# HELP usher_seats_reclaimed_total Seats that finished reclaim policy runs took back.\n")
		p.printf("# TYPE usher_seats_reclaimed_total counter\n")
		p.printf("usher_seats_reclaimed_total %d\n", st.SeatsReclaimed.Load())
	}
	if s.notify != nil {
		st := s.notify.Stats()
		p.printf("# HELP usher_emails_total Email send attempts by kind and outcome: sent, retried (failed, will retry), failed (for good), released (cut by a shutdown, handed back).\n")
		p.printf("# TYPE usher_emails_total counter\n")
		for _, o := range []struct {
			name string
			n    int64
		}{{"sent", st.Sent.Load()}, {"retried", st.Retried.Load()}, {"failed", st.Failed.Load()}, {"released", st.Released.Load()}} {
			p.printf("usher_emails_total{kind=\"notification\",outcome=\"%s\"} %d\n", o.name, o.n)
		}
		if s.reclaim != nil {
			// The reclaim emails share the family, told apart by kind.
			for _, kind := range []reclaim.EmailKind{reclaim.EmailWarning, reclaim.EmailNotice, reclaim.EmailDigest} {
				es := s.reclaim.Stats().Emails[kind]
				p.printf("usher_emails_total{kind=\"%s\",outcome=\"sent\"} %d\n", kind, es.Sent.Load())
				p.printf("usher_emails_total{kind=\"%s\",outcome=\"retried\"} %d\n", kind, es.Retried.Load())
				p.printf("usher_emails_total{kind=\"%s\",outcome=\"failed\"} %d\n", kind, es.Failed.Load())
			}
		}
		ctx, cancel := context.WithTimeout(ctx, healthTimeout)
		defer cancel()
		b, err := s.notify.Backlog(ctx)
		if err != nil {
			s.log.WarnContext(ctx, "metrics: notification backlog", slog.Any("err", err))
		} else {
			p.printf("# HELP usher_notification_runs Notification runs not yet delivered, by state: due (may be sent now), retry_wait (waiting out a backoff), sending (leased to a worker).\n")
			p.printf("# TYPE usher_notification_runs gauge\n")
			p.printf("usher_notification_runs{state=\"due\"} %d\n", b.DueRuns)
			p.printf("usher_notification_runs{state=\"retry_wait\"} %d\n", b.RetryRuns)
			p.printf("usher_notification_runs{state=\"sending\"} %d\n", b.SendingRuns)
			p.printf("# HELP usher_notification_occurrences_due Scheduled notification occurrences due but not yet planned into runs.\n")
			p.printf("# TYPE usher_notification_occurrences_due gauge\n")
			p.printf("usher_notification_occurrences_due %d\n", b.DueSettings)
			p.printf("# HELP usher_scheduler_lag_seconds Age of the oldest due notification work; 0 when nothing is due.\n")
			p.printf("# TYPE usher_scheduler_lag_seconds gauge\n")
			p.printf("usher_scheduler_lag_seconds %g\n", b.Lag(s.notify.Now()).Seconds())
		}
	}
	if s.pools != nil {
		pools := s.pools()
		names := slices.Sorted(maps.Keys(pools))
		p.printf("# HELP usher_db_connections Database connections by pool and state (in_use, idle).\n")
		p.printf("# TYPE usher_db_connections gauge\n")
		for _, n := range names {
			p.printf("usher_db_connections{pool=%s,state=\"in_use\"} %d\n", strconv.Quote(n), pools[n].InUse)
			p.printf("usher_db_connections{pool=%s,state=\"idle\"} %d\n", strconv.Quote(n), pools[n].Idle)
		}
		p.printf("# HELP usher_db_connections_max Most connections a pool may open.\n")
		p.printf("# TYPE usher_db_connections_max gauge\n")
		for _, n := range names {
			p.printf("usher_db_connections_max{pool=%s} %d\n", strconv.Quote(n), pools[n].MaxOpenConnections)
		}
		p.printf("# HELP usher_db_waits_total Times a query waited for a free connection.\n")
		p.printf("# TYPE usher_db_waits_total counter\n")
		for _, n := range names {
			p.printf("usher_db_waits_total{pool=%s} %d\n", strconv.Quote(n), pools[n].WaitCount)
		}
		p.printf("# HELP usher_db_wait_seconds_total Time spent waiting for a free connection.\n")
		p.printf("# TYPE usher_db_wait_seconds_total counter\n")
		for _, n := range names {
			p.printf("usher_db_wait_seconds_total{pool=%s} %g\n", strconv.Quote(n), pools[n].WaitDuration.Seconds())
		}
	}
}
