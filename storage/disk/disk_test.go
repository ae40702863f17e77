package disk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/disk"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

func TestBlobStore(t *testing.T) {
	storagetest.RunBlobStore(t, func(t *testing.T) storage.BlobStore { return storagetest.OpenDisk(t) })
}

func TestLayoutAndNoTempLeft(t *testing.T) {
	s := storagetest.OpenDisk(t)
	sum, _, err := storage.Put(context.Background(), s, bytes.NewReader([]byte("test")))
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(s.Root(), "9f", "86", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
	if sum != filepath.Base(want) {
		t.Fatalf("sum = %s", sum)
	}
	if _, err := os.Stat(want); err != nil {
		t.Errorf("blob not at %s: %v", want, err)
	}
	tmp, _ := os.ReadDir(filepath.Join(s.Root(), "tmp"))
	if len(tmp) != 0 {
		t.Errorf("temp dir holds %d files after Put, want 0", len(tmp))
	}
}

func TestOpenRemovesOnlyStaleTemp(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o750); err != nil {
		t.Fatal(err)
	}
	stale, fresh := filepath.Join(root, "tmp", "put-old"), filepath.Join(root, "tmp", "put-new")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := mustTime(t, "2020-01-01T00:00:00Z")
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := disk.Open(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temp file kept: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temp file removed: %v", err)
	}
}

func mustTime(t *testing.T, s string) (tm time.Time) {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestOpenFileCache(t *testing.T) {
	s := storagetest.OpenDisk(t)
	ctx := context.Background()
	put := func(content string) string {
		sum, _, err := storage.Put(ctx, s, bytes.NewReader([]byte(content)))
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	read := func(r io.ReadSeeker) string {
		r.Seek(0, io.SeekStart)
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	first := put("blob 0")
	held, err := s.Open(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	// Readers of one cached file keep their own offsets.
	other, _ := s.Open(ctx, first)
	other.Seek(3, io.SeekStart)
	if got := read(held); got != "blob 0" {
		t.Errorf("held reader = %q", got)
	}
	rest, _ := io.ReadAll(other)
	if string(rest) != "b 0" {
		t.Errorf("second reader = %q, want its own offset", rest)
	}
	other.Close()
	other.Close() // a second Close must not release twice

	// Push the first blob out of the cache while a reader still holds it.
	for i := 1; i <= 600; i++ {
		sum := put(fmt.Sprintf("blob %d", i))
		r, err := s.Open(ctx, sum)
		if err != nil {
			t.Fatal(err)
		}
		if got := read(r); got != fmt.Sprintf("blob %d", i) {
			t.Fatalf("blob %d read %q", i, got)
		}
		r.Close()
	}
	if got := read(held); got != "blob 0" {
		t.Errorf("reader of an evicted file = %q, want it still readable", got)
	}
	held.Close()

	// Deleting drops the cached file: the blob is gone at once.
	again, _ := s.Open(ctx, first)
	again.Close()
	if err := s.Delete(ctx, first); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, first); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Open after Delete = %v, want ErrNotFound", err)
	}

	// Large blobs are plain files, so net/http can sendfile them.
	big := put(strings.Repeat("x", 100<<10))
	r, err := s.Open(ctx, big)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, ok := r.(*os.File); !ok {
		t.Errorf("large blob reader is %T, want *os.File", r)
	}
}

func TestOpenRemovesTempFilesOfExitedProcesses(t *testing.T) {
	root := t.TempDir()
	tmp := filepath.Join(root, "tmp")
	live, err := disk.Open(root) // this process's own temp files are live
	if err != nil {
		t.Fatal(err)
	}
	staged, err := live.Stage(context.Background(), strings.NewReader("in flight"))
	if err != nil {
		t.Fatal(err)
	}
	defer staged.Abort()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	host = strings.ReplaceAll(host, "-", "_")
	files := map[string]time.Time{
		fmt.Sprintf("put-%s-%d-12345-111", host, dead.Process.Pid): time.Now(),                     // exited: removed however fresh
		fmt.Sprintf("put-%s-%d-1-222", host, os.Getpid()):          time.Now(),                     // our PID, another start: removed
		"put-otherhost-77-99-333":                                  time.Now(),                     // another machine, fresh: kept
		"put-otherhost-78-99-444":                                  time.Now().Add(-2 * time.Hour), // another machine, old: removed
	}
	for name, mtime := range files {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mtime, mtime)
	}
	if _, err := disk.Open(root); err != nil { // as a restart would
		t.Fatal(err)
	}
	var left []string
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if len(left) != 2 || !slices.Contains(left, "put-otherhost-77-99-333") {
		t.Errorf("temp files left: %v; want this process's staged blob and the other machine's fresh file", left)
	}
	if err := staged.Commit(context.Background()); err != nil {
		t.Errorf("the live process's staged blob was removed: %v", err)
	}
}

func TestBlobSweeper(t *testing.T) {
	storagetest.RunBlobSweeper(t, func(t *testing.T) storage.BlobStore { return storagetest.OpenDisk(t) })
}
