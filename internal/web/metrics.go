package web

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"
)

// durationBuckets are the upper bounds, in seconds, of the request duration
// histogram: fine below 100 ms, where the API's pages and reports should be.
var durationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// metrics counts requests per route and status and times them, for
// GET /metrics in Prometheus' text format. Routes are ServeMux patterns, never
// raw paths, so the number of series stays bounded whatever clients send.
type metrics struct {
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

func newMetrics() *metrics {
	return &metrics{start: time.Now(), requests: map[requestKey]uint64{}, timings: map[string]*histogram{}}
}

// observe records one answered request. route is "" for requests no route
// matched; they are counted under "unmatched".
func (m *metrics) observe(route string, code int, d time.Duration) {
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
func (m *metrics) writeTo(w io.Writer) error {
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

// serveMetrics answers GET /metrics. Like /healthz it needs no token: it
// shows counts per route pattern, nothing about accounts or users.
func (s *server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	if err := s.metrics.writeTo(w); err != nil {
		s.log.DebugContext(r.Context(), "write metrics", "err", err)
	}
}
