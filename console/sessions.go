package console

import (
	"crypto/rand"
	"crypto/subtle"
	"sync"
	"time"

	"github.com/mediarepo/mediarepo/admin"
	"github.com/mediarepo/mediarepo/homeserver"
)

// session is a signed-in admin: who they are (checked like an admin API
// request when they signed in), for which homeserver's Host, and the token
// their forms must carry.
type session struct {
	id, csrf string
	caller   admin.Caller
	host     string
	tokenKey string // homeserver.TokenKey of the caller's token; "" for the shared secret
	expires  time.Time
}

// sessions are the console's sign-ins, in memory: a restart signs everybody
// out. At most maxSessions are kept; the oldest go first.
type sessions struct {
	mu  sync.Mutex
	m   map[string]*session
	now func() time.Time
}

const (
	maxSessions = 1024
	sessionTTL  = 8 * time.Hour
)

func newSessions(now func() time.Time) *sessions {
	return &sessions{m: map[string]*session{}, now: now}
}

// create starts a session for caller on host.
func (s *sessions) create(caller admin.Caller, host string) *session {
	ses := &session{id: randomToken(), csrf: randomToken(), caller: caller, host: host, expires: s.now().Add(sessionTTL)}
	if caller.Token != "" && caller.Host != nil {
		ses.tokenKey = homeserver.TokenKey(caller.Host, caller.Token)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxSessions {
		s.evictLocked()
	}
	s.m[ses.id] = ses
	return ses
}

// evictLocked drops the expired sessions, or else the one closest to expiry.
func (s *sessions) evictLocked() {
	now := s.now()
	var oldest *session
	for id, ses := range s.m {
		if now.After(ses.expires) {
			delete(s.m, id)
			continue
		}
		if oldest == nil || ses.expires.Before(oldest.expires) {
			oldest = ses
		}
	}
	if len(s.m) >= maxSessions && oldest != nil {
		delete(s.m, oldest.id)
	}
}

// get returns the live session id names, for host.
func (s *sessions) get(id, host string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ses := s.m[id]
	if ses == nil || s.now().After(ses.expires) || ses.host != host {
		return nil
	}
	return ses
}

// removeWhere ends every session match picks.
func (s *sessions) removeWhere(match func(*session) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ses := range s.m {
		if match(ses) {
			delete(s.m, id)
		}
	}
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

// randomToken is 128 random bits, as text.
func randomToken() string { return rand.Text() }

// sameToken compares secrets in constant time.
func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
