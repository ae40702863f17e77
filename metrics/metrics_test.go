package metrics_test

import (
	"database/sql"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/mediarepo/mediarepo/metrics"
)

// exposition records one of everything and returns the scrape.
func exposition(t *testing.T) string {
	s := metrics.New()
	s.Request("/r", "GET", 200, 0.01, 5, 10)
	s.Cache("media", true)
	s.ThumbnailMade(0.1)
	s.RemoteFetch(false)
	s.Purged(2)
	s.Quarantined(1)
	s.Queue("thumbnail", "help", func() int { return 3 })
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s.Database(db, "metadata")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestExposition(t *testing.T) {
	out := exposition(t)
	for _, want := range []string{
		`mediarepo_http_requests_total{method="GET",route="/r",status="200"} 1`,
		`mediarepo_cache_lookups_total{cache="media",result="hit"} 1`,
		`mediarepo_remote_fetches_total{result="failed"} 1`,
		`mediarepo_media_purged_total 2`,
		`mediarepo_thumbnail_queue_depth 3`,
		`go_sql_open_connections{db_name="metadata"}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("exposition lacks %s", want)
		}
	}
}

// Every series the Grafana dashboard in docs/ plots exists.
func TestDashboardSeriesExist(t *testing.T) {
	raw, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	out := exposition(t)
	name := regexp.MustCompile(`\b(mediarepo|go_sql|go|process)_[a-z_]+`)
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			for _, series := range name.FindAllString(target.Expr, -1) {
				series = strings.TrimSuffix(series, "_bucket")
				if !strings.Contains(out, "\n"+series) && !strings.Contains(out, "# TYPE "+series+" ") {
					t.Errorf("panel %q plots %s, which is not exposed", p.Title, series)
				}
			}
		}
	}
}
