// Package ratelimittest holds the conformance suite every ratelimit.Limiter
// runs, and the Redis address tests use.
package ratelimittest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/ratelimit"
)

// slow is a rate of a token, or a byte, per 1000 s: nothing refills or
// drains during a case, so no case depends on timing.
const slow = 0.001

// RunLimiter checks the Limiter contract against a fresh limiter from open
// for each case.
func RunLimiter(t *testing.T, open func(t *testing.T) ratelimit.Limiter) {
	cases := []struct {
		name string
		fn   func(t *testing.T, l ratelimit.Limiter)
	}{
		{"burst then refusal with retry time", limiterBurst},
		{"fast rate refills", limiterRefill},
		{"concurrent requests never exceed the burst", limiterRace},
		{"leaky bucket of bytes", limiterBytes},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

func limiterBurst(t *testing.T, l ratelimit.Limiter) {
	ctx := context.Background()
	for i := range 3 {
		if ok, _, err := l.Allow(ctx, "ip:1", slow, 3); err != nil || !ok {
			t.Fatalf("request %d = %v, %v; want allowed within the burst", i, ok, err)
		}
	}
	ok, wait, err := l.Allow(ctx, "ip:1", slow, 3)
	if err != nil || ok {
		t.Fatalf("request past the burst = %v, %v; want refused", ok, err)
	}
	if wait < 900*time.Second || wait > 1001*time.Second {
		t.Errorf("retry after %v, want about 1000 s", wait)
	}
	if ok, _, _ := l.Allow(ctx, "ip:2", slow, 3); !ok {
		t.Error("another key was refused")
	}
}

func limiterRefill(t *testing.T, l ratelimit.Limiter) {
	ctx := context.Background()
	l.Allow(ctx, "fast", 1000, 1)
	time.Sleep(20 * time.Millisecond) // 20 tokens' worth at 1000/s
	if ok, _, _ := l.Allow(ctx, "fast", 1000, 1); !ok {
		t.Error("bucket did not refill")
	}
}

func limiterRace(t *testing.T, l ratelimit.Limiter) {
	ctx := context.Background()
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, _, err := l.Allow(ctx, "race", slow, 10); err == nil && ok {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if allowed != 10 {
		t.Errorf("%d of 50 concurrent requests allowed, want the burst of 10", allowed)
	}
}

func limiterBytes(t *testing.T, l ratelimit.Limiter) {
	ctx := context.Background()
	steps := []struct {
		n      int64
		wantOK bool
	}{
		{60, true},    // 60
		{60, true},    // 120: past capacity 100, within overflow 50
		{1, false},    // at capacity: refused
		{1000, false}, // still refused
	}
	for i, st := range steps {
		ok, wait, err := l.TakeBytes(ctx, "dl:1", st.n, 100, 50, slow)
		if err != nil || ok != st.wantOK {
			t.Fatalf("step %d: TakeBytes(%d) = %v, %v; want %v", i, st.n, ok, err, st.wantOK)
		}
		if !ok && wait < time.Hour {
			t.Errorf("step %d: retry after %v, want the long drain time", i, wait)
		}
	}
	// An empty bucket lets one file through whatever its size.
	if ok, _, _ := l.TakeBytes(ctx, "dl:2", 10_000, 100, 50, slow); !ok {
		t.Error("empty bucket refused a large file")
	}
	if ok, _, _ := l.TakeBytes(ctx, "dl:3", 80, 100, 50, slow); !ok {
		t.Fatal("first 80 refused")
	}
	if ok, _, _ := l.TakeBytes(ctx, "dl:3", 80, 100, 50, slow); ok {
		t.Error("80 more (160 > 150) allowed, want refused: over the overflow")
	}
}

// RedisAddr is the Redis the tests use (MEDIAREPO_TEST_REDIS, default
// 127.0.0.1:6379). An unreachable Redis fails the test unless
// MEDIAREPO_TEST_SKIP_REDIS=1.
func RedisAddr(t testing.TB) string {
	t.Helper()
	if os.Getenv("MEDIAREPO_TEST_SKIP_REDIS") == "1" {
		t.Skip("MEDIAREPO_TEST_SKIP_REDIS=1")
	}
	if addr := os.Getenv("MEDIAREPO_TEST_REDIS"); addr != "" {
		return addr
	}
	return "127.0.0.1:6379"
}

// UniquePrefix returns a key prefix no other test uses.
func UniquePrefix(t testing.TB) string {
	return fmt.Sprintf("mediarepo-test:%s:", randomHex(t, 8))
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
