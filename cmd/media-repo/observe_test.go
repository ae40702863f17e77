package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches and parses the exposition format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d", url, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	return families
}

// value sums the samples of family whose labels include want.
func value(families map[string]*dto.MetricFamily, family string, want map[string]string) (float64, bool) {
	f, ok := families[family]
	if !ok {
		return 0, false
	}
	sum, found := 0.0, false
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if !match {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum, found
}

func TestMetricsOnTheirOwnListener(t *testing.T) {
	m, base, _ := startMainWith(t, fmt.Sprintf("{sqlite: %q}", filepath.Join(t.TempDir(), "m.db")),
		"metrics: {enabled: true, bindAddress: 127.0.0.1, port: 0}\n")
	mon := "http://" + m.MetricsAddr()
	req := mustRequest(t, "POST", base+"/_matrix/media/v3/upload", bytes.NewReader([]byte("count me")))
	_, body := send(t, req)
	var up struct {
		ContentURI string `json:"content_uri"`
	}
	json.Unmarshal(body, &up)
	id := strings.TrimPrefix(up.ContentURI, "mxc://example.org/")
	for range 3 {
		send(t, mustRequest(t, "GET", base+"/_matrix/client/v1/media/download/example.org/"+id, nil))
	}
	send(t, mustRequest(t, "GET", base+"/_matrix/client/v1/media/download/example.org/missing", nil))

	families := scrape(t, mon+"/metrics")
	download := "/_matrix/client/v1/media/download/{serverName}/{mediaId}"
	checks := []struct {
		family string
		labels map[string]string
		min    float64
	}{
		{"mediarepo_http_requests_total", map[string]string{"route": download, "method": "GET", "status": "200"}, 3},
		{"mediarepo_http_requests_total", map[string]string{"route": download, "status": "404"}, 1},
		{"mediarepo_http_requests_total", map[string]string{"route": "/_matrix/media/v3/upload", "status": "200"}, 1},
		{"mediarepo_http_request_duration_seconds", map[string]string{"route": download}, 4},
		{"mediarepo_http_response_bytes_total", map[string]string{"route": download}, 3 * float64(len("count me"))},
		{"mediarepo_cache_lookups_total", map[string]string{"cache": "media", "result": "hit"}, 2},
		{"mediarepo_cache_lookups_total", map[string]string{"cache": "tokens", "result": "hit"}, 3},
		{"mediarepo_thumbnail_queue_depth", nil, 0},
		{"go_sql_open_connections", map[string]string{"db_name": "metadata"}, 0},
		{"go_goroutines", nil, 1},
	}
	for _, c := range checks {
		v, ok := value(families, c.family, c.labels)
		if !ok || v < c.min {
			t.Errorf("%s%v = %v (present %v), want at least %v", c.family, c.labels, v, ok, c.min)
		}
	}
	if v, _ := value(families, "mediarepo_http_request_bytes_total", nil); v < float64(len("count me")) {
		t.Errorf("request bytes = %v, want the upload counted", v)
	}
	// Not on the public listener, where any client could read it.
	resp, _ := send(t, mustRequest(t, "GET", base+"/metrics", nil))
	if resp.StatusCode != 404 {
		t.Errorf("/metrics on the public listener = %d, want 404", resp.StatusCode)
	}
	for _, url := range []string{base + "/readyz", mon + "/readyz", mon + "/healthz"} {
		resp, err := http.Get(url)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("GET %s = %v, %v", url, resp, err)
		}
		resp.Body.Close()
	}
}
