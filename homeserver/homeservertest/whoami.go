// Package homeservertest is a fake homeserver for unit tests: it answers
// /_matrix/client/v3/account/whoami from a fixed token table and counts calls.
// The end-to-end suite uses a real homeserver instead.
package homeservertest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// User is what the fake whoami answers for a token.
type User struct {
	UserID   string
	DeviceID string
	IsGuest  bool
}

// Server is a running fake homeserver.
type Server struct {
	*httptest.Server
	mu     sync.Mutex
	tokens map[string]User
	calls  int
	// Status, if set, is answered to every request instead (e.g. 503).
	status int
	delay  time.Duration
}

// WhoAmI starts a fake homeserver that knows tokens; it stops at test cleanup.
func WhoAmI(t testing.TB, tokens map[string]User) *Server {
	t.Helper()
	s := Start(tokens)
	t.Cleanup(s.Close)
	return s
}

// Start starts a fake homeserver outside a test (benchmarks); the caller closes it.
func Start(tokens map[string]User) *Server {
	s := &Server{tokens: tokens}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Calls is the number of whoami requests served.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Delay makes every later answer wait d first (0 restores prompt answers).
func (s *Server) Delay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// FailWith makes every later request answer status (0 restores normal answers).
func (s *Server) FailWith(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = status
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls++
	status, delay := s.status, s.delay
	user, known := s.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}

	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path != "/_matrix/client/v3/account/whoami":
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]string{"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"})
	case status == http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests", "retry_after_ms": 3000})
	case status != 0:
		w.WriteHeader(status)
		w.Write([]byte(`<html>bad gateway</html>`))
	case !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "):
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"errcode": "M_MISSING_TOKEN", "error": "Missing access token"})
	case !known:
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]any{"errcode": "M_UNKNOWN_TOKEN", "error": "Unknown access token", "soft_logout": true})
	default:
		json.NewEncoder(w).Encode(map[string]any{"user_id": user.UserID, "device_id": user.DeviceID, "is_guest": user.IsGuest})
	}
}
