package storage_test

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/mediarepo/mediarepo/storage"
)

func TestHolderGone(t *testing.T) {
	host, _ := os.Hostname()
	me := storage.LeaseHolder()
	// A process that ran and ended: its pid is free (until reused).
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	for _, c := range []struct {
		holder string
		want   bool
	}{
		{me, false},
		{fmt.Sprintf("%s-%d-abcd1234", host, os.Getppid()), false}, // running
		{fmt.Sprintf("%s-%d-abcd1234", host, os.Getpid()), false},  // another runner of this process
		{fmt.Sprintf("%s-%d-abcd1234", host, dead), true},
		{fmt.Sprintf("elsewhere-%d-abcd1234", dead), false}, // another host: cannot tell
		{"garbage", false},
		{host + "-x-y", false},
	} {
		if got := storage.HolderGone(c.holder, me); got != c.want {
			t.Errorf("HolderGone(%q) = %v, want %v", c.holder, got, c.want)
		}
	}
}
