package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"sync"
	"testing"

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
