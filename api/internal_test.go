package api

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/config"
)

func FuzzContentDisposition(f *testing.F) {
	for _, s := range []string{"a.png", "with space", "a;b", `q"q`, "\r\nX: y", "🐱", "%41", ""} {
		f.Add("image/png", s)
	}
	f.Fuzz(func(t *testing.T, contentType, name string) {
		h := contentDisposition(contentType, name)
		if strings.ContainsAny(h, "\r\n\x00") {
			t.Fatalf("header %q has a control character", h)
		}
		disp, params, err := mime.ParseMediaType(h)
		if err != nil {
			t.Fatalf("ParseMediaType(%q): %v", h, err)
		}
		if disp != "inline" && disp != "attachment" {
			t.Fatalf("disposition %q", disp)
		}
		if params["filename"] != name {
			t.Fatalf("filename %q round-tripped as %q via %q", name, params["filename"], h)
		}
	})
}

func TestClientIP(t *testing.T) {
	tests := map[string]struct {
		trustAny bool
		peer     string
		xff      []string
		want     string
	}{
		"no header":                    {false, "203.0.113.9:5000", nil, "203.0.113.9"},
		"untrusted peer ignored":       {false, "203.0.113.9:5000", []string{"1.2.3.4"}, "203.0.113.9"},
		"proxy on loopback":            {false, "127.0.0.1:5000", []string{"198.51.100.7"}, "198.51.100.7"},
		"spoofed left value ignored":   {false, "127.0.0.1:5000", []string{"6.6.6.6, 198.51.100.7"}, "198.51.100.7"},
		"chain of private proxies":     {false, "10.0.0.1:5000", []string{"198.51.100.7, 10.0.0.2"}, "198.51.100.7"},
		"two header lines":             {false, "127.0.0.1:1", []string{"6.6.6.6", "198.51.100.7"}, "198.51.100.7"},
		"garbage stops the walk":       {false, "127.0.0.1:1", []string{"nonsense"}, "127.0.0.1"},
		"ipv6 peer":                    {false, "[::1]:1", []string{"2001:db8::1"}, "2001:db8::1"},
		"mapped ipv4":                  {false, "[::ffff:127.0.0.1]:1", []string{"::ffff:198.51.100.7"}, "198.51.100.7"},
		"trust any takes the leftmost": {true, "203.0.113.9:5000", []string{"198.51.100.7, 203.0.113.1"}, "198.51.100.7"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s := &Server{cfg: &config.Config{Repo: config.Repo{TrustAnyForwardedAddress: tt.trustAny}}}
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := s.clientIP(r); got != tt.want {
				t.Errorf("clientIP = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRecoverAnswersJSON(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	s := &Server{log: log, cfg: &config.Config{}}
	h := s.withRequestLog(s.withRecover(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	var body map[string]string
	json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 500 || body["errcode"] != "M_UNKNOWN" {
		t.Errorf("panic answered %d %s, want 500 M_UNKNOWN", rec.Code, rec.Body)
	}
}
