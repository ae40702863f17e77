package disk

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mediarepo/mediarepo/storage"
)

var _ storage.BlobSweeper = (*Store)(nil)

// Blobs implements storage.BlobSweeper by walking the ab/cd directories.
func (s *Store) Blobs(ctx context.Context, fn func(storage.BlobInfo) error) error {
	return filepath.WalkDir(s.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path == s.tmp {
				return filepath.SkipDir
			}
			return ctx.Err()
		}
		if !storage.ValidSHA256(d.Name()) || path != s.path(d.Name()) {
			return nil // not a blob: nothing of ours to list
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // swept or replaced meanwhile
		}
		if err != nil {
			return err
		}
		return fn(storage.BlobInfo{SHA256: d.Name(), Size: info.Size(), Modified: info.ModTime()})
	})
}

// Sweep implements storage.BlobSweeper. The blob is renamed into tmp before
// the second look: a Commit of the same bytes from then on writes a new file
// under the name, untouched, and one that came just before left a file whose
// time says so, which is put back.
func (s *Store) Sweep(ctx context.Context, sum string, cutoff time.Time, referenced func(context.Context) (bool, error)) (bool, error) {
	if !storage.ValidSHA256(sum) {
		return false, fmt.Errorf("sweep blob %q: malformed digest", sum)
	}
	final := s.path(sum)
	if info, err := os.Stat(final); err != nil || !info.ModTime().Before(cutoff) {
		return false, ignoreMissing(err)
	}
	if ref, err := referenced(ctx); err != nil || ref {
		return false, err
	}
	var b [8]byte
	rand.Read(b[:])
	aside := filepath.Join(s.tmp, "sweep-"+sum+"-"+hex.EncodeToString(b[:]))
	if err := os.Rename(final, aside); err != nil {
		return false, ignoreMissing(err)
	}
	s.files.remove(sum)
	info, err := os.Stat(aside)
	if err != nil {
		return false, err
	}
	ref, err := referenced(ctx)
	if err != nil || ref || !info.ModTime().Before(cutoff) {
		s.putBack(aside, final)
		return false, err
	}
	if err := os.Remove(aside); err != nil {
		return false, fmt.Errorf("delete swept blob %s: %w", sum, err)
	}
	return true, nil
}

// putBack returns a blob taken aside to its name, unless a Commit wrote it
// again meanwhile (the same bytes).
func (s *Store) putBack(aside, final string) {
	if err := os.Link(aside, final); err != nil && !errors.Is(err, fs.ErrExist) {
		os.Rename(aside, final) // no hard links here: rename is the fallback
		return
	}
	os.Remove(aside)
}

func ignoreMissing(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// sweptName reads the digest of a blob Sweep took aside.
func sweptName(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, "sweep-")
	if !ok || len(rest) < 65 || !storage.ValidSHA256(rest[:64]) {
		return "", false
	}
	return rest[:64], true
}
