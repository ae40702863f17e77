// Package ratelimit owns rate limiting: the Limiter interface that keeps
// buckets (in memory, memlimit; shared through Redis, redislimit) and the
// policy that applies rateLimit's settings to requests and downloaded bytes.
// It imports config only; ratelimittest holds the conformance suite.
package ratelimit

import (
	"context"
	"time"
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
