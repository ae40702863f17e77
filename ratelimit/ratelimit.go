// Package ratelimit owns rate limiting: the Limiter interface that keeps
// buckets (in memory, memlimit; shared through Redis, redislimit) and the
// policy that applies rateLimit's settings to requests and downloaded bytes.
// It imports config only; ratelimittest holds the conformance suite.
package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/mediarepo/mediarepo/config"
)

// Limiter keeps rate-limit buckets by key. In one process it is memory; with
// Redis every process shares the same buckets. Implementations hold the
// contract checked by ratelimittest.RunLimiter.
type Limiter interface {
	// Allow takes one token from the token bucket key, which refills at rate
	// tokens a second up to burst. When none is left it returns false and how
	// long until one will be.
	Allow(ctx context.Context, key string, rate float64, burst int) (ok bool, retryAfter time.Duration, err error)
	// TakeBytes adds n bytes to the leaky bucket key, which drains at drain
	// bytes a second. It refuses, adding nothing, when the bucket is already at
	// capacity or would go more than overflow bytes past it; retryAfter is then
	// how long until the same request would fit.
	TakeBytes(ctx context.Context, key string, n, capacity, overflow int64, drain float64) (ok bool, retryAfter time.Duration, err error)
}

// ExceededError is the refusal of a request or download over its limit.
type ExceededError struct {
	// RetryAfter is how long until the same request would be allowed.
	RetryAfter time.Duration
}

func (e *ExceededError) Error() string {
	return "rate limit exceeded; retry after " + e.RetryAfter.String()
}

// Limits applies rateLimit's settings to requests and downloaded bytes, with
// buckets kept by a Limiter.
type Limits struct {
	cfg   config.RateLimit
	store Limiter
}

// New returns Limits for cfg over store.
func New(cfg config.RateLimit, store Limiter) *Limits {
	return &Limits{cfg: cfg, store: store}
}

// Request takes a request token for key (a client IP or a user), or returns
// *ExceededError. An error of the Limiter itself (Redis down) is returned as
// it is: the caller decides whether to let the request through.
func (l *Limits) Request(ctx context.Context, key string) error {
	ok, wait, err := l.store.Allow(ctx, key, l.cfg.RequestsPerSecond, l.cfg.Burst)
	if err != nil {
		return fmt.Errorf("rate limiter: %w", err)
	}
	if !ok {
		return &ExceededError{RetryAfter: max(wait, time.Second)}
	}
	return nil
}

// Download charges n served bytes to key's download bucket, or returns
// *ExceededError; errors of the Limiter are returned as in Request. Without a
// download bucket (capacityBytes 0) everything is allowed.
func (l *Limits) Download(ctx context.Context, key string, n int64) error {
	b := l.cfg.Buckets.Downloads
	if b.CapacityBytes == 0 {
		return nil
	}
	ok, wait, err := l.store.TakeBytes(ctx, key, n, b.CapacityBytes, b.OverflowLimitBytes, float64(b.DrainBytesPerMinute)/60)
	if err != nil {
		return fmt.Errorf("rate limiter: %w", err)
	}
	if !ok {
		return &ExceededError{RetryAfter: max(wait, time.Second)}
	}
	return nil
}
