// Package homeservertest is a fake homeserver for unit tests: it answers
// whoami from a token table and counts calls, and the calls the admin API
// makes: admin whois (the spec's and Synapse's), Synapse's room media list,
// profiles and logout. The end-to-end suite uses a real homeserver instead.
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
	Admin    bool   // may read others' whois and rooms' media
	Avatar   string // avatar_url of the profile
}

// RoomMedia is what Synapse's admin API lists for a room.
type RoomMedia struct {
	Local, Remote []string
}

// Server is a running fake homeserver.
type Server struct {
	*httptest.Server
	mu     sync.Mutex
	tokens map[string]User
	rooms  map[string]RoomMedia
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

// AddToken makes token known as user.
func (s *Server) AddToken(token string, user User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = user
}

// SetRoom makes Synapse's room media API list media for roomID.
func (s *Server) SetRoom(roomID string, media RoomMedia) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rooms == nil {
		s.rooms = map[string]RoomMedia{}
	}
	s.rooms[roomID] = media
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
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case status == http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests", "retry_after_ms": 3000})
	case status != 0:
		w.WriteHeader(status)
		w.Write([]byte(`<html>bad gateway</html>`))
	case !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "):
		reply(w, http.StatusUnauthorized, "M_MISSING_TOKEN", "Missing access token")
	case !known:
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]any{"errcode": "M_UNKNOWN_TOKEN", "error": "Unknown access token", "soft_logout": true})
	default:
		s.route(w, r, token, user)
	}
}

// route answers an authenticated request.
func (s *Server) route(w http.ResponseWriter, r *http.Request, token string, user User) {
	p := r.URL.Path
	switch {
	case p == "/_matrix/client/v3/account/whoami":
		json.NewEncoder(w).Encode(map[string]any{"user_id": user.UserID, "device_id": user.DeviceID, "is_guest": user.IsGuest})
	case strings.HasPrefix(p, "/_matrix/client/v3/admin/whois/"), strings.HasPrefix(p, "/_synapse/admin/v1/whois/"):
		target := p[strings.LastIndexByte(p, '/')+1:]
		if !user.Admin && target != user.UserID {
			reply(w, http.StatusForbidden, "M_FORBIDDEN", "You are not a server admin")
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"user_id": target, "devices": map[string]any{}})
	case strings.HasPrefix(p, "/_synapse/admin/v1/room/") && strings.HasSuffix(p, "/media") && r.Method == http.MethodGet:
		if !user.Admin {
			reply(w, http.StatusForbidden, "M_FORBIDDEN", "You are not a server admin")
			return
		}
		room := strings.TrimSuffix(strings.TrimPrefix(p, "/_synapse/admin/v1/room/"), "/media")
		s.mu.Lock()
		media, ok := s.rooms[room]
		s.mu.Unlock()
		if !ok {
			reply(w, http.StatusNotFound, "M_NOT_FOUND", "Room not found")
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"local": nonNil(media.Local), "remote": nonNil(media.Remote)})
	case strings.HasPrefix(p, "/_matrix/client/v3/profile/") && strings.HasSuffix(p, "/avatar_url"):
		target := strings.TrimSuffix(strings.TrimPrefix(p, "/_matrix/client/v3/profile/"), "/avatar_url")
		s.mu.Lock()
		avatar := ""
		for _, u := range s.tokens {
			if u.UserID == target {
				avatar = u.Avatar
			}
		}
		s.mu.Unlock()
		if avatar == "" {
			reply(w, http.StatusNotFound, "M_NOT_FOUND", "No avatar")
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"avatar_url": avatar})
	case (p == "/_matrix/client/v3/logout" || p == "/_matrix/client/v3/logout/all") && r.Method == http.MethodPost:
		s.mu.Lock()
		for t, u := range s.tokens {
			if t == token || (p == "/_matrix/client/v3/logout/all" && u.UserID == user.UserID) {
				delete(s.tokens, t)
			}
		}
		s.mu.Unlock()
		w.Write([]byte("{}"))
	default:
		reply(w, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request")
	}
}

func reply(w http.ResponseWriter, status int, code, msg string) {
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"errcode": code, "error": msg})
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}
