//go:build faults

package crashpoint

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// hits counts the hits of the point named, for MEDIAREPO_CRASH_AT=point#N.
var hits atomic.Int64

// Hit kills the process at once if MEDIAREPO_CRASH_AT names point, or, as
// point#N, at its Nth hit.
func Hit(point string) {
	at, nth, _ := strings.Cut(os.Getenv("MEDIAREPO_CRASH_AT"), "#")
	if at != point {
		return
	}
	if n, err := strconv.ParseInt(nth, 10, 64); err == nil && hits.Add(1) < n {
		return
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is delivered before anything else runs
}
