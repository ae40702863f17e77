// Package disk is the file datastore: blobs in a directory tree named by
// SHA-256 (ab/cd/<hash>), written temp -> fsync -> rename so that a blob is
// either whole or absent. It imports only storage.
package disk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/mediarepo/mediarepo/storage"
)

var _ storage.BlobStore = (*Store)(nil)

// copyBufferSize is large enough that a fast disk, not syscalls, bounds uploads.
const copyBufferSize = 256 << 10

// Open-file cache: blobs up to smallBlob bytes stay open (at most openFiles of
// them). Larger ones are opened per request so net/http can sendfile them.
const (
	smallBlob = 64 << 10
	openFiles = 512
)

// Store is a file datastore rooted at one directory.
type Store struct {
	root   string
	tmp    string
	prefix string // of this process's temp files: put-<host>-<pid>-<start>-
	bufs   sync.Pool
	files  *fileCache
}

// staleAfter is the age past which a temp file nobody can be shown to own is
// removed: one of another machine sharing the directory, or of an older name.
const staleAfter = time.Hour

// Open prepares root (creating it if needed) and returns its store. Temporary
// files left by a crash are removed: at once when they name a process of this
// machine that is no longer running, else once they are an hour old.
func Open(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("resolve datastore path: %w", err)
	}
	tmp := filepath.Join(abs, "tmp")
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return nil, classify(fmt.Errorf("create datastore dir: %w", err))
	}
	me := self()
	s := &Store{root: abs, tmp: tmp, prefix: me.prefix(), files: newFileCache(openFiles)}
	s.bufs.New = func() any { b := make([]byte, copyBufferSize); return &b }
	if err := s.removeStale(me, time.Now().Add(-staleAfter)); err != nil {
		return nil, err
	}
	return s, nil
}

// Root is the directory the store lives in.
func (s *Store) Root() string { return s.root }

// Stage implements storage.BlobStore: the bytes go to a temporary file in the
// store's tmp directory, hashed while they are written, so each byte is read
// once and written once.
func (s *Store) Stage(ctx context.Context, r io.Reader) (storage.StagedBlob, error) {
	f, err := os.CreateTemp(s.tmp, s.prefix+"*")
	if err != nil {
		return nil, classify(fmt.Errorf("create temp blob: %w", err))
	}
	b := &staged{store: s, temp: f.Name()}
	h := sha256.New()
	bp := s.bufs.Get().(*[]byte)
	b.size, err = io.CopyBuffer(io.MultiWriter(f, h), storage.ContextReader(ctx, r), *bp)
	s.bufs.Put(bp)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, classify(fmt.Errorf("write blob: %w", err))
	}
	b.sum = hex.EncodeToString(h.Sum(nil))
	return b, nil
}

// staged is a blob in the tmp directory, waiting for Commit or Abort.
type staged struct {
	store     *Store
	temp      string
	sum       string
	size      int64
	mu        sync.Mutex
	done      bool
	commitErr error
}

func (b *staged) SHA256() string { return b.sum }
func (b *staged) Size() int64    { return b.size }

// Commit renames the temp file to ab/cd/<digest> and syncs the directory.
// Renaming over an identical blob is atomic and harmless, so concurrent
// commits of the same bytes need no lock, and the blob's time is then this
// write's.
func (b *staged) Commit(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return b.commitErr
	}
	b.done = true
	final := b.store.path(b.sum)
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		os.Remove(b.temp)
		b.commitErr = classify(fmt.Errorf("create blob dir: %w", err))
		return b.commitErr
	}
	if err := os.Rename(b.temp, final); err != nil {
		os.Remove(b.temp)
		b.commitErr = classify(fmt.Errorf("rename blob: %w", err))
		return b.commitErr
	}
	b.commitErr = classify(syncDir(dir))
	return b.commitErr
}

// Abort removes the temp file unless the blob was committed.
func (b *staged) Abort() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return nil
	}
	b.done = true
	if err := os.Remove(b.temp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove staged blob: %w", err)
	}
	return nil
}

// Open implements storage.BlobStore. Small blobs come from the open-file
// cache; a large one is its *os.File, which lets net/http use sendfile.
func (s *Store) Open(_ context.Context, sum string) (io.ReadSeekCloser, error) {
	if !storage.ValidSHA256(sum) {
		return nil, fmt.Errorf("open blob %q: malformed digest: %w", sum, storage.ErrNotFound)
	}
	if r, ok := s.files.get(sum); ok {
		return r, nil
	}
	f, err := os.Open(s.path(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open blob %s: %w", sum, storage.ErrNotFound)
	}
	if err != nil {
		return nil, classify(fmt.Errorf("open blob %s: %w", sum, err))
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat blob %s: %w", sum, err)
	}
	if info.Size() > smallBlob {
		return f, nil
	}
	return s.files.add(sum, f, info.Size()), nil
}

// Close closes the files the store keeps open. Readers still in use stay valid.
func (s *Store) Close() error {
	s.files.closeAll()
	return nil
}

// Delete implements storage.BlobStore.
func (s *Store) Delete(_ context.Context, sum string) error {
	if !storage.ValidSHA256(sum) {
		return fmt.Errorf("delete blob %q: malformed digest", sum)
	}
	s.files.remove(sum)
	if err := os.Remove(s.path(sum)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", sum, err)
	}
	return nil
}

// path maps a validated digest to ab/cd/<digest>.
func (s *Store) path(sum string) string {
	return filepath.Join(s.root, sum[0:2], sum[2:4], sum)
}

// removeStale removes the temp files that no live process owns: those of a
// process of this machine that has exited, and, for the rest, those modified
// before before. A blob a crashed sweep had taken aside goes back to its name.
func (s *Store) removeStale(me owner, before time.Time) error {
	dir := s.tmp
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list datastore temp dir: %w", err)
	}
	for _, e := range entries {
		if sum, ok := sweptName(e.Name()); ok {
			if err := os.MkdirAll(filepath.Dir(s.path(sum)), 0o750); err == nil {
				s.putBack(filepath.Join(dir, e.Name()), s.path(sum))
			}
			continue
		}
		o, ok := parseOwner(e.Name())
		if ok && o.host == me.host && o.start != 0 {
			if !o.running() {
				os.Remove(filepath.Join(dir, e.Name()))
			}
			continue
		}
		if info, err := e.Info(); err == nil && info.ModTime().Before(before) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open blob dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync blob dir: %w", err)
	}
	return nil
}

// classify marks the errors of a datastore that cannot be used right now with
// the storage sentinel for them, so the edge can say what is wrong.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: %w", storage.ErrFull, err)
	case errors.Is(err, syscall.EROFS), errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %w", storage.ErrReadOnly, err)
	case errors.Is(err, syscall.EIO), errors.Is(err, syscall.ENOTCONN), errors.Is(err, syscall.ESTALE):
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	return err
}

// Check writes and removes a small file where uploads are staged: the
// datastore can take blobs. Errors are classified as Stage's are.
func (s *Store) Check(context.Context) error {
	f, err := os.CreateTemp(s.tmp, s.prefix+"check-*")
	if err != nil {
		return classify(err)
	}
	_, err = f.Write([]byte("ok"))
	f.Close()
	os.Remove(f.Name())
	return classify(err)
}
