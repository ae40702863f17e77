//go:build faults

package crashpoint

import (
	"os"
	"syscall"
)

// Hit kills the process at once if MEDIAREPO_CRASH_AT names point.
func Hit(point string) {
	if os.Getenv("MEDIAREPO_CRASH_AT") == point {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is delivered before anything else runs
	}
}
