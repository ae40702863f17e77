// Package redislimit is the ratelimit.Limiter shared by every process through
// Redis (one Ring over the configured shards, as matrix-media-repo's redis
// section describes). Each decision is one Lua script, so it is atomic per
// key. It imports ratelimit and config.
package redislimit

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/ratelimit"
)

var _ ratelimit.Limiter = (*Limiter)(nil)

// Limiter is a ratelimit.Limiter on Redis.
type Limiter struct {
	ring   *redis.Ring
	prefix string
	allow  *redis.Script
	take   *redis.Script
}

// tokenScript: KEYS[1] bucket; ARGV rate, burst, now (s). Returns {ok, wait_ms}.
const tokenScript = `
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local s = redis.call('HMGET', KEYS[1], 'level', 'last')
local level, last = tonumber(s[1]) or burst, tonumber(s[2]) or now
level = math.min(burst, level + math.max(0, now - last) * rate)
local ok, wait = 0, math.ceil((1 - level) / rate * 1000)
if level >= 1 then level, ok, wait = level - 1, 1, 0 end
redis.call('HSET', KEYS[1], 'level', tostring(level), 'last', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {ok, wait}`

// leakyScript: KEYS[1] bucket; ARGV n, capacity, overflow, drain, now (s).
const leakyScript = `
local n, cap, overflow, drain, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local s = redis.call('HMGET', KEYS[1], 'level', 'last')
local level, last = tonumber(s[1]) or 0, tonumber(s[2]) or now
level = math.max(0, level - math.max(0, now - last) * drain)
local over = math.max(level - cap, level + n - (cap + overflow))
local ok, wait = 0, 0
if level <= 0 or (level < cap and over <= 0) then
  level, ok = level + n, 1
else
  wait = math.ceil(math.max(over, level - cap + 1) / drain * 1000)
end
redis.call('HSET', KEYS[1], 'level', tostring(level), 'last', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(level / drain * 1000) + 1000)
return {ok, wait}`

// Open connects to the shards in cfg and checks that they answer.
func Open(ctx context.Context, cfg config.Redis) (*Limiter, error) {
	addrs := make(map[string]string, len(cfg.Shards))
	for _, s := range cfg.Shards {
		addrs[s.Name] = s.Addr
	}
	ring := redis.NewRing(&redis.RingOptions{Addrs: addrs, DB: cfg.DatabaseNumber})
	if err := ring.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error {
		return c.Ping(ctx).Err()
	}); err != nil {
		ring.Close()
		return nil, fmt.Errorf("connect to redis: %w", err)
	}
	return &Limiter{ring: ring, prefix: "mediarepo:rl:", allow: redis.NewScript(tokenScript), take: redis.NewScript(leakyScript)}, nil
}

// WithPrefix returns a Limiter whose keys live under prefix, so tests (or
// deployments) sharing one Redis database do not meet.
func (l *Limiter) WithPrefix(prefix string) *Limiter {
	c := *l
	c.prefix = prefix
	return &c
}

// Allow implements ratelimit.Limiter.
func (l *Limiter) Allow(ctx context.Context, key string, rate float64, burst int) (bool, time.Duration, error) {
	return l.run(ctx, l.allow, "t:"+key, rate, burst)
}

// TakeBytes implements ratelimit.Limiter.
func (l *Limiter) TakeBytes(ctx context.Context, key string, n, capacity, overflow int64, drain float64) (bool, time.Duration, error) {
	return l.run(ctx, l.take, "b:"+key, n, capacity, overflow, drain)
}

func (l *Limiter) run(ctx context.Context, script *redis.Script, key string, args ...any) (bool, time.Duration, error) {
	now := float64(time.Now().UnixMicro()) / 1e6
	res, err := script.Run(ctx, l.ring, []string{l.prefix + key}, append(args, now)...).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("rate limit %s: %w", key, err)
	}
	return res[0] == 1, time.Duration(math.Max(0, float64(res[1]))) * time.Millisecond, nil
}

// Close disconnects from Redis.
func (l *Limiter) Close() error { return l.ring.Close() }
