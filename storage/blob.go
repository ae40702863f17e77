package storage

import (
	"context"
	"io"
	"time"
)

// BlobStore keeps blobs named by the lowercase hex SHA-256 of their bytes.
// Implementations hold the contract checked by storagetest.RunBlobStore.
type BlobStore interface {
	// Stage reads everything r yields into the store without making it
	// visible: hashed, written and synced where Open cannot see it. The caller
	// then Commits it (once the metadata it belongs to may exist) or Aborts
	// it; until then it holds space but no name. On error nothing is left
	// behind and r's error is returned wrapped.
	Stage(ctx context.Context, r io.Reader) (StagedBlob, error)
	// Open returns the blob for reading and seeking; the caller closes it. A
	// missing blob or a malformed digest is an error wrapping ErrNotFound.
	Open(ctx context.Context, sha256 string) (io.ReadSeekCloser, error)
	// Delete removes the blob; a missing one is not an error.
	Delete(ctx context.Context, sha256 string) error
}

// StagedBlob is a blob written by BlobStore.Stage and not yet named.
type StagedBlob interface {
	SHA256() string
	Size() int64
	// Commit makes the blob durable under its digest. Committing bytes that
	// are stored already is harmless, and leaves the stored blob as freshly
	// written as a new one (a collector of unreferenced blobs counts its grace
	// period from then). Calls after the first return its result.
	Commit(ctx context.Context) error
	// Abort discards an uncommitted blob; after Commit it does nothing. It is
	// safe to defer.
	Abort() error
}

// Put stages r's bytes in b and commits them at once, for blobs that need no
// metadata decision first (thumbnails, remote media). It returns the digest
// and size.
func Put(ctx context.Context, b BlobStore, r io.Reader) (sha256 string, size int64, err error) {
	st, err := b.Stage(ctx, r)
	if err != nil {
		return "", 0, err
	}
	defer st.Abort()
	if err := st.Commit(ctx); err != nil {
		return "", 0, err
	}
	return st.SHA256(), st.Size(), nil
}

// Checker is an optional BlobStore capability: telling whether blobs can
// be written right now, for readiness checks.
type Checker interface {
	Check(ctx context.Context) error
}

// BlobInfo describes a stored blob.
type BlobInfo struct {
	SHA256   string
	Size     int64
	Modified time.Time // when its bytes were last committed
}

// BlobSweeper is an optional BlobStore capability: listing the blobs and
// deleting an unreferenced one without racing a Commit of the same bytes.
// Callers find it with a type assertion.
type BlobSweeper interface {
	// Blobs calls fn with every stored blob, in no order, until fn fails.
	Blobs(ctx context.Context, fn func(BlobInfo) error) error
	// Sweep deletes the blob sha256 if it was last committed before cutoff
	// and referenced reports that nothing needs it, and says whether it did.
	// The blob is first taken out of sight and checked again (its time and
	// referenced), so a Commit of the same bytes meanwhile keeps its blob.
	Sweep(ctx context.Context, sha256 string, cutoff time.Time, referenced func(context.Context) (bool, error)) (bool, error)
}

// RedirectHeaders are what a redirected download must be answered with.
type RedirectHeaders struct {
	ContentType, ContentDisposition string
	// Inline says the media is safe to show inline (an image, a video):
	// only then may it be served with whatever type its bytes have.
	Inline bool
}

// Redirector is an optional BlobStore capability: a URL the client can
// fetch a blob from itself (a CDN before the bucket, a presigned URL), for
// the routes that may redirect.
type Redirector interface {
	// RedirectURL returns where blob sha256 can be fetched with h, or ""
	// if it cannot be (then it is served as always).
	RedirectURL(ctx context.Context, sha256 string, h RedirectHeaders) (string, error)
}

// ValidSHA256 accepts exactly 64 lowercase hex digits: what a blob is named
// by, so no caller input reaches a path or an object key unchecked.
func ValidSHA256(sum string) bool {
	if len(sum) != 64 {
		return false
	}
	for i := 0; i < len(sum); i++ {
		c := sum[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// ContextReader is r that stops a long copy once ctx is done (the request
// is gone).
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
