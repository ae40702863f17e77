package memlimit_test

import (
	"testing"

	"github.com/mediarepo/mediarepo/ratelimit"
	"github.com/mediarepo/mediarepo/ratelimit/memlimit"
	"github.com/mediarepo/mediarepo/ratelimit/ratelimittest"
)

func TestLimiter(t *testing.T) {
	ratelimittest.RunLimiter(t, func(t *testing.T) ratelimit.Limiter { return memlimit.New() })
}
