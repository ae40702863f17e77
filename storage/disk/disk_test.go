package disk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
