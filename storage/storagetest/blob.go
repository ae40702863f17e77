package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/storage"
)

// blobContent is 1 MB: several copy buffers.
var blobContent = bytes.Repeat([]byte("mediarepo "), 100000)

// blobSum is the hex SHA-256 of blobContent.
func blobSum() string {
	sum := sha256.Sum256(blobContent)
	return hex.EncodeToString(sum[:])
}

// RunBlobStore checks the BlobStore contract against a fresh store from open
// for each case.
func RunBlobStore(t *testing.T, open func(t *testing.T) storage.BlobStore) {
	runCases(t, open, []testCase[storage.BlobStore]{
		{"put then open", blobPutOpen},
		{"open seeks", blobSeek},
		{"empty blob", blobEmpty},
		{"identical puts, also concurrent, are one blob", blobIdentical},
		{"failed reader leaves nothing", blobFailedReader},
		{"cancelled context stops put", blobCancelled},
		{"missing and malformed are ErrNotFound", blobMissing},
		{"delete", blobDelete},
		{"staged blob is invisible until committed", blobStagedInvisible},
		{"abort leaves nothing", blobAbort},
		{"commit over a stored blob keeps it", blobCommitOverExisting},
	})
}

func blobPutOpen(t *testing.T, s storage.BlobStore) {
	ctx := context.Background()
	got, size, err := storage.Put(ctx, s, bytes.NewReader(blobContent))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if got != blobSum() || size != int64(len(blobContent)) {
		t.Errorf("Put = %s, %d; want %s, %d", got, size, blobSum(), len(blobContent))
	}
	mustRead(t, s, got, blobContent)
}

func blobSeek(t *testing.T, s storage.BlobStore) {
	ctx := context.Background()
	got, _, err := storage.Put(ctx, s, bytes.NewReader(blobContent))
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Open(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(-7, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	tail, _ := io.ReadAll(f)
	if string(tail) != string(blobContent[len(blobContent)-7:]) {
		t.Errorf("tail = %q, want %q", tail, blobContent[len(blobContent)-7:])
	}
}

func blobEmpty(t *testing.T, s storage.BlobStore) {
	ctx := context.Background()
	got, size, err := storage.Put(ctx, s, bytes.NewReader(nil))
	if err != nil || size != 0 || got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Fatalf("Put(empty) = %s, %d, %v", got, size, err)
	}
	mustRead(t, s, got, nil)
}

func blobIdentical(t *testing.T, s storage.BlobStore) {
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, _, err := storage.Put(ctx, s, bytes.NewReader(blobContent)); err != nil || got != blobSum() {
				t.Errorf("Put = %s, %v", got, err)
			}
		}()
	}
	wg.Wait()
	mustRead(t, s, blobSum(), blobContent)
}

func blobFailedReader(t *testing.T, s storage.BlobStore) {
	ctx := context.Background()
	boom := errors.New("client went away")
	r := io.MultiReader(bytes.NewReader(blobContent[:1000]), errReader{boom})
	if _, _, err := storage.Put(ctx, s, r); !errors.Is(err, boom) {
		t.Fatalf("Put = %v, want wrapped %v", err, boom)
	}
	partial := sha256.Sum256(blobContent[:1000])
	if _, err := s.Open(ctx, hex.EncodeToString(partial[:])); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("partial blob is readable: %v", err)
	}
}

func blobCancelled(t *testing.T, s storage.BlobStore) {
	ctx := context.Background()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := storage.Put(cctx, s, bytes.NewReader(blobContent)); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with cancelled ctx = %v, want context.Canceled", err)
	}
}

func blobMissing(t *testing.T, s storage.BlobStore) {
	ctx := context.Background()
	for _, sum := range []string{
		blobSum(), "../../../../etc/passwd", "", "ABCDEF" + blobSum()[6:], blobSum()[:63] + "/",
	} {
		if _, err := s.Open(ctx, sum); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Open(%q) = %v, want ErrNotFound", sum, err)
		}
	}
}

func blobDelete(t *testing.T, s storage.BlobStore) {
	ctx := context.Background()
	got, _, err := storage.Put(ctx, s, bytes.NewReader(blobContent))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, got); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Open(ctx, got); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Open after Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, got); err != nil {
		t.Errorf("second Delete = %v, want nil", err)
	}
}

func blobStagedInvisible(t *testing.T, s storage.BlobStore) {
	ctx := context.Background()
	st, err := s.Stage(ctx, bytes.NewReader(blobContent))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Abort()
	if st.SHA256() != blobSum() || st.Size() != int64(len(blobContent)) {
		t.Errorf("staged = %s, %d; want %s, %d", st.SHA256(), st.Size(), blobSum(), len(blobContent))
	}
	if _, err := s.Open(ctx, st.SHA256()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Open before Commit = %v, want ErrNotFound", err)
	}
	if err := st.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(ctx); err != nil {
		t.Errorf("second Commit = %v, want the first's result", err)
	}
	if err := st.Abort(); err != nil {
		t.Errorf("Abort after Commit = %v, want nil", err)
	}
	mustRead(t, s, st.SHA256(), blobContent)
}

func blobAbort(t *testing.T, s storage.BlobStore) {
	ctx := context.Background()
	st, err := s.Stage(ctx, bytes.NewReader(blobContent))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(ctx); err == nil {
		if _, err := s.Open(ctx, blobSum()); err == nil {
			t.Error("a blob committed after Abort is readable")
		}
	}
	if _, err := s.Open(ctx, blobSum()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Open after Abort = %v, want ErrNotFound", err)
	}
}

func blobCommitOverExisting(t *testing.T, s storage.BlobStore) {
	ctx := context.Background()
	if _, _, err := storage.Put(ctx, s, bytes.NewReader(blobContent)); err != nil {
		t.Fatal(err)
	}
	held, err := s.Open(ctx, blobSum())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	st, err := s.Stage(ctx, bytes.NewReader(blobContent))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(ctx); err != nil {
		t.Fatalf("Commit over a stored blob: %v", err)
	}
	mustRead(t, s, blobSum(), blobContent)
	if got, _ := io.ReadAll(held); !bytes.Equal(got, blobContent) {
		t.Error("a reader opened before the second commit lost its bytes")
	}
}

func mustRead(t *testing.T, s storage.BlobStore, sum string, want []byte) {
	t.Helper()
	f, err := s.Open(context.Background(), sum)
	if err != nil {
		t.Fatalf("Open(%s): %v", sum, err)
	}
	defer f.Close()
	got, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("blob %s: read %d bytes, want %d identical", sum, len(got), len(want))
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// RunBlobSweeper checks the BlobSweeper contract of a BlobStore that has it.
func RunBlobSweeper(t *testing.T, open func(t *testing.T) storage.BlobStore) {
	sweeper := func(t *testing.T) (storage.BlobStore, storage.BlobSweeper) {
		s := open(t)
		sw, ok := s.(storage.BlobSweeper)
		if !ok {
			t.Fatal("not a BlobSweeper")
		}
		return s, sw
	}
	ctx := context.Background()
	never := func(context.Context) (bool, error) { return false, nil }
	future := func() time.Time { return time.Now().Add(time.Hour) } // every blob is old enough
	t.Run("lists and sweeps unreferenced old blobs only", func(t *testing.T) {
		s, sw := sweeper(t)
		sums := map[string]bool{}
		for _, b := range []string{"one", "two", "three"} {
			sum, _, err := storage.Put(ctx, s, strings.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			sums[sum] = true
		}
		var listed []storage.BlobInfo
		if err := sw.Blobs(ctx, func(b storage.BlobInfo) error { listed = append(listed, b); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(listed) != 3 || !sums[listed[0].SHA256] || listed[0].Modified.IsZero() {
			t.Fatalf("Blobs = %+v, want the 3 stored", listed)
		}
		var one, two, three string = listed[0].SHA256, listed[1].SHA256, listed[2].SHA256
		if ok, err := sw.Sweep(ctx, one, time.Now().Add(-time.Hour), never); err != nil || ok {
			t.Errorf("Sweep of a fresh blob = %v, %v; want it kept", ok, err)
		}
		referenced := func(context.Context) (bool, error) { return true, nil }
		if ok, err := sw.Sweep(ctx, two, future(), referenced); err != nil || ok {
			t.Errorf("Sweep of a referenced blob = %v, %v; want it kept", ok, err)
		}
		if ok, err := sw.Sweep(ctx, three, future(), never); err != nil || !ok {
			t.Errorf("Sweep of an old unreferenced blob = %v, %v; want it deleted", ok, err)
		}
		for sum, want := range map[string]bool{one: true, two: true, three: false} {
			if _, err := s.Open(ctx, sum); (err == nil) != want {
				t.Errorf("after the sweeps, Open(%s) = %v, want present %v", sum[:8], err, want)
			}
		}
	})
	t.Run("a commit of the same bytes during a sweep keeps the blob", func(t *testing.T) {
		s, sw := sweeper(t)
		sum, _, err := storage.Put(ctx, s, strings.NewReader("raced"))
		if err != nil {
			t.Fatal(err)
		}
		for name, commitOn := range map[string]int{"before it is taken aside": 1, "after it is taken aside": 2} {
			calls := 0
			uploadMeanwhile := func(context.Context) (bool, error) {
				if calls++; calls == commitOn {
					if _, _, err := storage.Put(ctx, s, strings.NewReader("raced")); err != nil {
						t.Fatal(err)
					}
				}
				return false, nil // the new row is not committed yet
			}
			// A cutoff just after now: the blob is old, the concurrent commit is
			// not. File times come from a coarse clock (a tick behind at worst):
			// the commit comes well past a tick after the cutoff.
			cutoff := time.Now().Add(time.Millisecond)
			time.Sleep(50 * time.Millisecond)
			sw.Sweep(ctx, sum, cutoff, uploadMeanwhile)
			r, err := s.Open(ctx, sum)
			if err != nil {
				t.Fatalf("%s: the blob is gone: %v", name, err)
			}
			b, _ := io.ReadAll(r)
			r.Close()
			if string(b) != "raced" {
				t.Errorf("%s: blob holds %q", name, b)
			}
		}
	})
}
