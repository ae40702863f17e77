package storage

import (
	"context"
	"io"
)

// BlobStore keeps blobs named by the lowercase hex SHA-256 of their bytes.
// Implementations hold the contract checked by storagetest.RunBlobStore.
type BlobStore interface {
	// Put stores everything r yields and returns its digest and size. The blob is
	// durable when Put returns nil (written to a temporary name, synced, renamed),
	// so a metadata row may then refer to it. Storing identical bytes twice is
	// harmless. On error nothing new is left behind; r's error is returned wrapped.
	Put(ctx context.Context, r io.Reader) (sha256 string, size int64, err error)
	// Open returns the blob for reading and seeking; the caller closes it. A
	// missing blob or a malformed digest is an error wrapping ErrNotFound.
	Open(ctx context.Context, sha256 string) (io.ReadSeekCloser, error)
	// Delete removes the blob; a missing one is not an error.
	Delete(ctx context.Context, sha256 string) error
}
