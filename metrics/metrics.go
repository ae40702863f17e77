// Package metrics is mediarepo's Prometheus instrumentation: one registry
// with what an operator watches (requests by route and status, latency,
// bytes in and out, cache hits and misses, thumbnails made, remote fetches,
// purges and quarantines, the database pool, queue depths) and the handler
// that serves it on the metrics listener. The services see it through small
// interfaces of their own; only this package imports client_golang.
package metrics

import (
	"database/sql"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "mediarepo"

// latencyBuckets suit a media server: cached downloads in milliseconds,
// thumbnails in tenths of a second, large uploads in seconds.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// Set is the registry and its collectors. Its methods are safe for
// concurrent use.
type Set struct {
	registry     *prometheus.Registry
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	bytesIn      *prometheus.CounterVec
	bytesOut     *prometheus.CounterVec
	cache        *prometheus.CounterVec
	thumbnails   prometheus.Counter
	thumbSeconds prometheus.Histogram
	fetches      *prometheus.CounterVec
	purged       prometheus.Counter
	quarantined  prometheus.Counter
}

// New returns a Set with the Go runtime and process collectors.
func New() *Set {
	r := prometheus.NewRegistry()
	f := func(c prometheus.Collector) prometheus.Collector { r.MustRegister(c); return c }
	s := &Set{registry: r}
	s.requests = f(prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "http_requests_total", Help: "Requests answered, by route, method and status.",
	}, []string{"route", "method", "status"})).(*prometheus.CounterVec)
	s.duration = f(prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "http_request_duration_seconds", Help: "Time to answer a request, by route.", Buckets: latencyBuckets,
	}, []string{"route"})).(*prometheus.HistogramVec)
	s.bytesIn = f(prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "http_request_bytes_total", Help: "Request body bytes read, by route.",
	}, []string{"route"})).(*prometheus.CounterVec)
	s.bytesOut = f(prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "http_response_bytes_total", Help: "Response body bytes written, by route.",
	}, []string{"route"})).(*prometheus.CounterVec)
	s.cache = f(prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "cache_lookups_total", Help: "Cache lookups, by cache (media, tokens, thumbnails) and result (hit, miss).",
	}, []string{"cache", "result"})).(*prometheus.CounterVec)
	s.thumbnails = f(prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "thumbnails_generated_total", Help: "Thumbnails made and stored.",
	})).(prometheus.Counter)
	s.thumbSeconds = f(prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "thumbnail_generation_seconds", Help: "Time to make one thumbnail, decode included when it made one.", Buckets: latencyBuckets,
	})).(prometheus.Histogram)
	s.fetches = f(prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "remote_fetches_total", Help: "Remote media fetched over federation, by result (ok, failed).",
	}, []string{"result"})).(*prometheus.CounterVec)
	s.purged = f(prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "media_purged_total", Help: "Media removed by purges and retention.",
	})).(prometheus.Counter)
	s.quarantined = f(prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "media_quarantined_total", Help: "Media quarantined.",
	})).(prometheus.Counter)
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return s
}

// Handler serves the exposition format.
func (s *Set) Handler() http.Handler {
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{})
}

// Request records one answered request.
func (s *Set) Request(route, method string, status int, seconds float64, in, out int64) {
	s.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	s.duration.WithLabelValues(route).Observe(seconds)
	if in > 0 {
		s.bytesIn.WithLabelValues(route).Add(float64(in))
	}
	if out > 0 {
		s.bytesOut.WithLabelValues(route).Add(float64(out))
	}
}

// Cache records a lookup in cache name.
func (s *Set) Cache(name string, hit bool) {
	result := "miss"
	if hit {
		result = "hit"
	}
	s.cache.WithLabelValues(name, result).Inc()
}

// ThumbnailMade records one thumbnail made in seconds.
func (s *Set) ThumbnailMade(seconds float64) {
	s.thumbnails.Inc()
	s.thumbSeconds.Observe(seconds)
}

// RemoteFetch records a remote fetch.
func (s *Set) RemoteFetch(ok bool) {
	result := "failed"
	if ok {
		result = "ok"
	}
	s.fetches.WithLabelValues(result).Inc()
}

// Purged records n media removed.
func (s *Set) Purged(n int) { s.purged.Add(float64(n)) }

// Quarantined records n media quarantined.
func (s *Set) Quarantined(n int64) { s.quarantined.Add(float64(n)) }

// Database adds the connection pool of db, named name.
func (s *Set) Database(db *sql.DB, name string) {
	s.registry.MustRegister(collectors.NewDBStatsCollector(db, name))
}

// Queue adds a gauge of a queue's depth, read when scraped.
func (s *Set) Queue(name, help string, depth func() int) {
	s.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: name + "_queue_depth", Help: help,
	}, func() float64 { return float64(depth()) }))
}
