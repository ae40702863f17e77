package redislimit_test

import (
	"context"
	"testing"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/ratelimit"
	"github.com/mediarepo/mediarepo/ratelimit/ratelimittest"
	"github.com/mediarepo/mediarepo/ratelimit/redislimit"
)

func TestLimiter(t *testing.T) {
	ratelimittest.RunLimiter(t, func(t *testing.T) ratelimit.Limiter {
		cfg := config.Redis{Enabled: true, Shards: []config.RedisShard{{Name: "one", Addr: ratelimittest.RedisAddr(t)}}}
		l, err := redislimit.Open(context.Background(), cfg)
		if err != nil {
			t.Fatalf("redis at %s: %v (MEDIAREPO_TEST_SKIP_REDIS=1 skips)", cfg.Shards[0].Addr, err)
		}
		t.Cleanup(func() { l.Close() })
		return l.WithPrefix(ratelimittest.UniquePrefix(t))
	})
}

func TestSharedBetweenProcesses(t *testing.T) {
	// Two limiters (two processes) on one Redis see one bucket.
	cfg := config.Redis{Enabled: true, Shards: []config.RedisShard{{Name: "one", Addr: ratelimittest.RedisAddr(t)}}}
	prefix := ratelimittest.UniquePrefix(t)
	var ls []*redislimit.Limiter
	for range 2 {
		l, err := redislimit.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		ls = append(ls, l.WithPrefix(prefix))
	}
	ctx := context.Background()
	if ok, _, _ := ls[0].Allow(ctx, "ip", 0.001, 1); !ok {
		t.Fatal("first request refused")
	}
	if ok, _, _ := ls[1].Allow(ctx, "ip", 0.001, 1); ok {
		t.Error("the second process got a fresh bucket; want the shared, empty one")
	}
}
