// Package transfer moves blobs from one datastore to another without ever
// leaving a row whose bytes are not where it says: each blob is copied,
// read back from the destination and its SHA-256 checked, then its rows are
// switched (holding the lock uploads and deletes of the same bytes take),
// and only then is the source copy deleted, if no row needs it any more. A
// transfer killed at any moment is finished by running it again. A
// destination that refuses writes stops it with the source intact.
// matrix-media-repo lost media here (its #308, #322, #353); this is the
// order that cannot. It imports storage and crashpoint.
package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/crashpoint"
	"github.com/mediarepo/mediarepo/storage"
)

// Store is what a transfer needs of the metadata.
type Store interface {
	storage.TransferStore
	DeleteBlob(ctx context.Context, b storage.BlobRef, del func(context.Context) error) (bool, error)
}

// Options are a transfer's dependencies and what it moves.
type Options struct {
	Store Store
	// Blobs are the datastores by ID; From and To must be among them.
	Blobs    map[string]storage.BlobStore
	From, To string
	// Before selects rows idle (last accessed, or created if never) before
	// it; zero is now.
	Before time.Time
	// Changed, if not nil, is told after a batch of blobs moved, so caches
	// of rows (thumbnails) everywhere forget where the bytes were.
	Changed func()
	// Progress, if not nil, is called after every blob.
	Progress func(Progress)
	Log      *logrus.Entry
	// Batch is how many blobs are listed at once; 0 is 100.
	Batch int
}

// Progress counts a transfer's work so far.
type Progress struct {
	Blobs   int64 `json:"blobs"`   // moved
	Bytes   int64 `json:"bytes"`   // of the moved blobs
	Rows    int64 `json:"rows"`    // switched to the destination
	Skipped int64 `json:"skipped"` // missing or damaged at the source, left as they are
	// Deleted counts source copies deleted; a blob still referenced in the
	// source by rows the selection left out is kept there.
	Deleted int64 `json:"deleted"`
	// Problems describe the skipped blobs (the first 100).
	Problems []string `json:"problems,omitempty"`
}

const maxProblems = 100

// Run moves every selected blob and returns what it did. It stops at the
// first error other than a blob missing or damaged at the source: the blob
// it was moving stays where it was, and running it again goes on from
// there.
func Run(ctx context.Context, o Options) (Progress, error) {
	var p Progress
	src, dst := o.Blobs[o.From], o.Blobs[o.To]
	switch {
	case o.From == o.To:
		return p, errors.New("the source and destination datastores are the same")
	case src == nil:
		return p, fmt.Errorf("source datastore %q is not configured", o.From)
	case dst == nil:
		return p, fmt.Errorf("destination datastore %q is not configured", o.To)
	}
	if o.Before.IsZero() {
		o.Before = time.Now()
	}
	if o.Batch <= 0 {
		o.Batch = 100
	}
	after := ""
	for {
		batch, err := o.Store.TransferBlobs(ctx, o.From, o.Before, after, o.Batch)
		if err != nil {
			return p, err
		}
		if len(batch) == 0 {
			return p, nil
		}
		for _, b := range batch {
			err := move(ctx, o, src, dst, b, &p)
			if o.Progress != nil {
				o.Progress(p)
			}
			if err != nil {
				if o.Changed != nil && p.Rows > 0 {
					o.Changed()
				}
				return p, fmt.Errorf("blob %s: %w", b.SHA256, err)
			}
			after = b.SHA256
		}
		if o.Changed != nil {
			o.Changed()
		}
	}
}

// errSkip marks a blob that cannot be moved but need not stop the transfer.
var errSkip = errors.New("skipped")

// move moves one blob, counting into p.
func move(ctx context.Context, o Options, src, dst storage.BlobStore, b storage.TransferBlob, p *Progress) error {
	err := copyVerified(ctx, src, dst, b)
	if errors.Is(err, errSkip) {
		p.Skipped++
		if len(p.Problems) < maxProblems {
			p.Problems = append(p.Problems, fmt.Sprintf("%s: %v", b.SHA256, err))
		}
		o.Log.WithField("sha256", b.SHA256).WithError(err).Warn("blob not transferred")
		return nil
	}
	if err != nil {
		return err
	}
	crashpoint.Hit("transfer-copied") // in both datastores, the rows at the source
	rows, err := o.Store.MoveBlob(ctx, b.SHA256, o.From, o.To, o.Before)
	if err != nil {
		return fmt.Errorf("switch rows: %w", err)
	}
	p.Blobs++
	p.Bytes += b.Size
	p.Rows += rows
	crashpoint.Hit("transfer-moved") // the rows at the destination, the source copy not yet deleted
	deleted, err := o.Store.DeleteBlob(ctx, storage.BlobRef{DatastoreID: o.From, SHA256: b.SHA256}, func(ctx context.Context) error {
		return src.Delete(ctx, b.SHA256)
	})
	if err != nil {
		// Every row is at the destination already: the source copy is an
		// unreferenced blob the sweep of unreferenced blobs collects.
		o.Log.WithField("sha256", b.SHA256).WithError(err).Warn("transferred blob not deleted from the source")
		return nil
	}
	if deleted {
		p.Deleted++
	}
	return nil
}

// copyVerified copies blob b from src to dst and reads it back from dst to
// check its SHA-256. A blob missing or damaged at the source is errSkip.
func copyVerified(ctx context.Context, src, dst storage.BlobStore, b storage.TransferBlob) error {
	r, err := src.Open(ctx, b.SHA256)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: missing from the source datastore", errSkip)
	}
	if err != nil {
		return fmt.Errorf("open at the source: %w", err)
	}
	staged, err := dst.Stage(ctx, r)
	r.Close()
	if err != nil {
		return fmt.Errorf("write to the destination: %w", err)
	}
	defer staged.Abort()
	if staged.SHA256() != b.SHA256 {
		return fmt.Errorf("%w: the source's bytes hash to %s, not their name (damaged)", errSkip, staged.SHA256())
	}
	if err := staged.Commit(ctx); err != nil {
		return fmt.Errorf("write to the destination: %w", err)
	}
	back, err := dst.Open(ctx, b.SHA256)
	if err != nil {
		return fmt.Errorf("read back from the destination: %w", err)
	}
	defer back.Close()
	h := sha256.New()
	n, err := io.Copy(h, back)
	if err != nil {
		return fmt.Errorf("read back from the destination: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != b.SHA256 || n != staged.Size() {
		return fmt.Errorf("the destination returned other bytes (%d bytes hashing to %s) than were written", n, got)
	}
	return nil
}
