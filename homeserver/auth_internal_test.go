package homeserver

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/config"
)

// countingAuth refuses "bad" and accepts anything else, counting calls.
type countingAuth struct{ calls int }

func (c *countingAuth) WhoAmI(_ context.Context, _ *config.Homeserver, token string) (Identity, error) {
	c.calls++
	switch token {
	case "bad":
		return Identity{}, &TokenError{Status: 401, Code: "M_UNKNOWN_TOKEN"}
	case "busy":
		return Identity{}, &TokenError{Status: 429, Code: "M_LIMIT_EXCEEDED"}
	case "down":
		return Identity{}, ErrUnreachable
	}
	return Identity{UserID: "@" + token + ":example.org"}, nil
}

func TestCacheExpiry(t *testing.T) {
	next := &countingAuth{}
	c := NewCachedAuthenticator(next, time.Minute)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	hs := &config.Homeserver{Name: "example.org"}
	ctx := context.Background()

	steps := []struct {
		advance   time.Duration
		token     string
		wantCalls int
	}{
		{0, "good", 1},
		{59 * time.Second, "good", 1}, // still cached
		{2 * time.Second, "good", 2},  // expired after the ttl
		{0, "bad", 3},                 // refusal asked once
		{4 * time.Second, "bad", 3},   // and remembered briefly
		{2 * time.Second, "bad", 4},   // but not past five seconds
	}
	for i, st := range steps {
		now = now.Add(st.advance)
		_, err := c.WhoAmI(ctx, hs, st.token)
		if st.token == "bad" && !errors.Is(err, ErrUnknownToken) {
			t.Errorf("step %d: err = %v, want ErrUnknownToken", i, err)
		}
		if next.calls != st.wantCalls {
			t.Errorf("step %d: calls = %d, want %d", i, next.calls, st.wantCalls)
		}
	}
}

func TestCacheKeepsNoTransientAnswers(t *testing.T) {
	next := &countingAuth{}
	c := NewCachedAuthenticator(next, time.Minute)
	defer c.Close()
	hs := &config.Homeserver{Name: "example.org"}
	for _, token := range []string{"busy", "down"} {
		before := next.calls
		for range 3 {
			c.WhoAmI(context.Background(), hs, token)
		}
		if n := next.calls - before; n != 3 {
			t.Errorf("%s: 3 checks asked the homeserver %d times, want 3 (not cached)", token, n)
		}
	}
}
