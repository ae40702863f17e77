// Package memlimit is the in-process ratelimit.Limiter: buckets in a bounded
// LRU, so a flood of distinct keys (IPs) cannot grow memory without bound;
// an evicted bucket simply starts full again. It imports only ratelimit.
package memlimit

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/mediarepo/mediarepo/ratelimit"
)

var _ ratelimit.Limiter = (*Limiter)(nil)

// maxBuckets bounds memory: about 100 bytes a bucket. The buckets are split
// over shards, each with its own lock, so that concurrent requests for
// different clients do not queue on one mutex.
const (
	maxBuckets = 200_000
	shards     = 64
)

// Limiter is a ratelimit.Limiter in this process's memory.
type Limiter struct {
	seed   maphash.Seed
	shards [shards]shard
	now    func() time.Time
}

type shard struct {
	mu      sync.Mutex
	buckets *lru.Cache[string, *bucket]
}

// bucket is either a token bucket (level = tokens left) or a leaky bucket
// (level = bytes in it), as of last.
type bucket struct {
	level float64
	last  time.Time
}

// New returns an empty Limiter.
func New() *Limiter {
	l := &Limiter{seed: maphash.MakeSeed(), now: time.Now}
	for i := range l.shards {
		l.shards[i].buckets, _ = lru.New[string, *bucket](maxBuckets / shards)
	}
	return l
}

// bucket returns the bucket for key, created by fresh if missing, with its
// shard locked; the caller unlocks.
func (l *Limiter) bucket(key string, fresh func() *bucket) (*bucket, *shard) {
	sh := &l.shards[maphash.String(l.seed, key)%shards]
	sh.mu.Lock()
	b, ok := sh.buckets.Get(key)
	if !ok {
		b = fresh()
		sh.buckets.Add(key, b)
	}
	return b, sh
}

// Allow implements ratelimit.Limiter.
func (l *Limiter) Allow(_ context.Context, key string, rate float64, burst int) (bool, time.Duration, error) {
	now := l.now()
	b, sh := l.bucket("t:"+key, func() *bucket { return &bucket{level: float64(burst), last: now} })
	defer sh.mu.Unlock()
	b.level = math.Min(float64(burst), b.level+now.Sub(b.last).Seconds()*rate)
	b.last = now
	if b.level >= 1 {
		b.level--
		return true, 0, nil
	}
	return false, seconds((1 - b.level) / rate), nil
}

// TakeBytes implements ratelimit.Limiter.
func (l *Limiter) TakeBytes(_ context.Context, key string, n, capacity, overflow int64, drain float64) (bool, time.Duration, error) {
	now := l.now()
	b, sh := l.bucket("b:"+key, func() *bucket { return &bucket{last: now} })
	defer sh.mu.Unlock()
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
