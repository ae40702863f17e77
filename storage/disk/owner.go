package disk

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// owner names the process that writes a temp file, in the file's name, so
// that a later start can tell a crashed writer's leftovers from the files of
// a live process sharing the directory: its host, PID and the time it started
// (so a reused PID is told apart).
type owner struct {
	host  string
	pid   int
	start uint64 // clock ticks after boot (/proc/<pid>/stat field 22); 0 unknown
}

// self is the current process.
func self() owner {
	host, _ := os.Hostname()
	return owner{host: strings.ReplaceAll(host, "-", "_"), pid: os.Getpid(), start: startTime(os.Getpid())}
}

// prefix begins the names of the owner's temp files.
func (o owner) prefix() string {
	return fmt.Sprintf("put-%s-%d-%d-", o.host, o.pid, o.start)
}

// parseOwner reads a temp file name made with prefix.
func parseOwner(name string) (owner, bool) {
	parts := strings.Split(name, "-")
	if len(parts) != 5 || parts[0] != "put" {
		return owner{}, false
	}
	pid, err1 := strconv.Atoi(parts[2])
	start, err2 := strconv.ParseUint(parts[3], 10, 64)
	if err1 != nil || err2 != nil {
		return owner{}, false
	}
	return owner{host: parts[1], pid: pid, start: start}, true
}

// running reports whether the owner process is still alive.
func (o owner) running() bool {
	return startTime(o.pid) == o.start
}

// startTime is when process pid started, from /proc, or 0 if it is not
// running (or /proc cannot tell).
func startTime(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the ")" that closes the command name; starttime is the
	// 22nd field of the whole line.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 20 {
		return 0
	}
	t, _ := strconv.ParseUint(fields[19], 10, 64)
	return t
}
