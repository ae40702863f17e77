// Package memlimit is the in-process storage.Limiter: buckets in a bounded
// LRU, so a flood of distinct keys (IPs) cannot grow memory without bound;
// an evicted bucket simply starts full again. It imports only storage.
package memlimit

import (
	"context"
	"math"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/mediarepo/mediarepo/storage"
)

var _ storage.Limiter = (*Limiter)(nil)

// maxBuckets bounds memory: about 100 bytes a bucket.
const maxBuckets = 200_000

// Limiter is a storage.Limiter in this process's memory.
type Limiter struct {
	mu      sync.Mutex
	buckets *lru.Cache[string, *bucket]
	now     func() time.Time
}

// bucket is either a token bucket (level = tokens left) or a leaky bucket
// (level = bytes in it), as of last.
type bucket struct {
	level float64
	last  time.Time
}

// New returns an empty Limiter.
func New() *Limiter {
	c, _ := lru.New[string, *bucket](maxBuckets)
	return &Limiter{buckets: c, now: time.Now}
}

// Allow implements storage.Limiter.
func (l *Limiter) Allow(_ context.Context, key string, rate float64, burst int) (bool, time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets.Get("t:" + key)
	if !ok {
		b = &bucket{level: float64(burst), last: now}
		l.buckets.Add("t:"+key, b)
	}
	b.level = math.Min(float64(burst), b.level+now.Sub(b.last).Seconds()*rate)
	b.last = now
	if b.level >= 1 {
		b.level--
		return true, 0, nil
	}
	return false, seconds((1 - b.level) / rate), nil
}

// TakeBytes implements storage.Limiter.
func (l *Limiter) TakeBytes(_ context.Context, key string, n, capacity, overflow int64, drain float64) (bool, time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets.Get("b:" + key)
	if !ok {
		b = &bucket{last: now}
		l.buckets.Add("b:"+key, b)
	}
	b.level = math.Max(0, b.level-now.Sub(b.last).Seconds()*drain)
	b.last = now
	if ok, wait := fits(b.level, n, capacity, overflow, drain); !ok {
		return false, wait, nil
	}
	b.level += float64(n)
	return true, 0, nil
}

// fits decides a leaky-bucket request: level must be under capacity, and
// level+n within capacity+overflow, unless the bucket is empty (so one file
// larger than the bucket can still be had). Otherwise it says how long
// draining takes.
func fits(level float64, n, capacity, overflow int64, drain float64) (bool, time.Duration) {
	over := math.Max(level-float64(capacity), level+float64(n)-float64(capacity+overflow))
	if level <= 0 || (level < float64(capacity) && over <= 0) {
		return true, 0
	}
	return false, seconds(math.Max(over, level-float64(capacity)+1) / drain)
}

func seconds(s float64) time.Duration {
	return time.Duration(math.Ceil(s * float64(time.Second)))
}
