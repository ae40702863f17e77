package homeserver

import (
	"context"
	"errors"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/flight"
)

// Identity is who an access token belongs to.
type Identity struct {
	UserID   string
	DeviceID string
	IsGuest  bool
}

// Authenticator resolves access tokens. Errors: a *TokenError for a token the
// homeserver refused (ErrUnknownToken when it said 401), ErrUnreachable when
// the homeserver could not answer, or the context's error.
type Authenticator interface {
	WhoAmI(ctx context.Context, hs *config.Homeserver, token string) (Identity, error)
}

// Cache sizes: tokens are small, and a miss only costs one whoami.
const (
	cacheEntries     = 100_000
	rejectedEntries  = 10_000
	maxRejectedCache = 5 * time.Second
)

// CachedAuthenticator remembers answers of another Authenticator: accepted
// tokens for ttl, refused ones (401, 403) for at most five seconds, and
// anything else (unreachable, rate limited) not at all. Concurrent checks of
// one token make one call. Tokens are kept by TokenKey, never themselves. A
// logout drops a token (Forget) or every token of a user (ForgetUser) at once.
type CachedAuthenticator struct {
	next     Authenticator
	ttl      time.Duration
	ok       *lru.Cache[string, cached]
	rejected *lru.Cache[string, cached]
	revoked  *lru.Cache[string, time.Time] // user ID -> tokens cached before are stale
	flight   *flight.Group[Identity]
	now      func() time.Time
	observe  func(hit bool)
}

// CacheOption changes a CachedAuthenticator.
type CacheOption func(*CachedAuthenticator)

// ObserveCache has every lookup reported to fn (metrics).
func ObserveCache(fn func(hit bool)) CacheOption {
	return func(c *CachedAuthenticator) { c.observe = fn }
}

type cached struct {
	id      Identity
	err     error
	at      time.Time
	expires time.Time
}

// NewCachedAuthenticator wraps next. A ttl of zero or less disables caching
// (concurrent checks of one token are still merged).
func NewCachedAuthenticator(next Authenticator, ttl time.Duration, opts ...CacheOption) *CachedAuthenticator {
	ok, _ := lru.New[string, cached](cacheEntries)
	rejected, _ := lru.New[string, cached](rejectedEntries)
	revoked, _ := lru.New[string, time.Time](rejectedEntries)
	c := &CachedAuthenticator{
		next: next, ttl: ttl, ok: ok, rejected: rejected, revoked: revoked,
		flight: flight.New[Identity](0), now: time.Now, observe: func(bool) {},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Close cancels token checks under way and waits for them.
func (c *CachedAuthenticator) Close() error {
	c.flight.Close()
	return nil
}

// WhoAmI implements Authenticator.
func (c *CachedAuthenticator) WhoAmI(ctx context.Context, hs *config.Homeserver, token string) (Identity, error) {
	key := TokenKey(hs, token)
	now := c.now()
	if e, hit := c.ok.Get(key); hit && now.Before(e.expires) && !c.stale(e) {
		c.observe(true)
		return e.id, nil
	}
	c.observe(false)
	if e, hit := c.rejected.Get(key); hit && now.Before(e.expires) {
		return Identity{}, e.err
	}
	// The shared call goes on for the others when the first caller hangs up.
	id, err := c.flight.Do(ctx, key, func(ctx context.Context) (Identity, error) {
		return c.next.WhoAmI(ctx, hs, token)
	})
	if err != nil {
		// Only a refusal of the token itself is remembered: a homeserver that
		// is rate limiting or failing must be asked again next time.
		var te *TokenError
		if errors.As(err, &te) && (te.Status == 401 || te.Status == 403) && c.ttl > 0 {
			c.rejected.Add(key, cached{err: err, expires: now.Add(min(c.ttl, maxRejectedCache))})
		}
		return Identity{}, err
	}
	if c.ttl > 0 {
		c.ok.Add(key, cached{id: id, at: now, expires: now.Add(c.ttl)})
	}
	return id, nil
}

// stale reports whether e was cached before its user logged out everywhere.
func (c *CachedAuthenticator) stale(e cached) bool {
	at, ok := c.revoked.Get(e.id.UserID)
	return ok && !e.at.After(at)
}

// Forget drops the token TokenKey named key, after its logout.
func (c *CachedAuthenticator) Forget(key string) {
	c.ok.Remove(key)
	c.rejected.Remove(key)
}

// ForgetUser drops every token of userID cached until now, after a logout
// from all devices. Kept for ttl: older entries have expired by then.
func (c *CachedAuthenticator) ForgetUser(userID string) {
	c.revoked.Add(userID, c.now())
}
