package storage

import (
	"context"
	"time"
)

// The metadata stores are small interfaces, one per concern, so that each
// service depends on the part it uses. One engine (sqlstore, under postgres
// and sqlite) implements them all; storagetest holds one conformance suite
// per interface. Implementations are safe for concurrent use.

// MediaStore keeps the media rows.
type MediaStore interface {
	// CreateMedia inserts m and adds it to m.UserID's usage. It returns an
	// error wrapping ErrExists if (m.Origin, m.MediaID) is taken or was
	// purged, ErrQuarantined if m's bytes are quarantined (unless
	// m.QuarantinedBy says so already: an import of quarantined media), and
	// ErrQuotaExceeded if m.UserID's uploads would then go over q; it changes
	// nothing then. Concurrent inserts for one user cannot overshoot q
	// together. publish, if not nil, runs after every check and before the
	// row becomes visible; if it fails, nothing is written.
	CreateMedia(ctx context.Context, m *Media, q Quota, publish Publish) error
	// Media returns the media (origin, mediaID), or an error wrapping
	// ErrNotFound. It never returns nil, nil.
	Media(ctx context.Context, origin, mediaID string) (*Media, error)
	// Usage is what userID's uploads add up to.
	Usage(ctx context.Context, userID string) (Usage, error)
}

// BlurhashStore records the MSC2448 blurhash of a media, computed after
// its row was written.
type BlurhashStore interface {
	SetBlurhash(ctx context.Context, origin, mediaID, hash string) error
}

// Publish makes the blob of a row durable: a StagedBlob's Commit. Stores run
// it inside the transaction that writes the row, after every check, so that a
// row is never visible without its blob and a refused row leaves no blob.
type Publish func(ctx context.Context) error

// ThumbnailStore keeps the rows of generated thumbnails.
type ThumbnailStore interface {
	// CreateThumbnail inserts t. It returns an error wrapping ErrExists if a
	// thumbnail with the same key is stored already, and changes nothing then.
	// publish, if not nil, runs as in MediaStore.CreateMedia.
	CreateThumbnail(ctx context.Context, t *Thumbnail, publish Publish) error
	// Thumbnails lists the thumbnails of (origin, mediaID); none is not an error.
	Thumbnails(ctx context.Context, origin, mediaID string) ([]Thumbnail, error)
}

// ReservationStore keeps media IDs reserved for asynchronous uploads (MSC2246)
// and turns them into media rows.
type ReservationStore interface {
	// CreatePending reserves p.MediaID for p.UserID. It fails with ErrExists if
	// the ID is taken (pending or uploaded) and with ErrLimitExceeded if the user
	// already has maxPending unexpired reservations; concurrent calls cannot
	// overshoot that limit. maxPending <= 0 means no limit.
	CreatePending(ctx context.Context, p *Pending, maxPending int) error
	// Pending returns the unexpired reservation of (origin, mediaID), or an
	// error wrapping ErrNotFound.
	Pending(ctx context.Context, origin, mediaID string) (*Pending, error)
	// CompleteUpload turns the unexpired reservation of (m.Origin, m.MediaID)
	// held by m.UserID into the media row m, atomically. It fails with
	// ErrNotFound when there is no such reservation and ErrExists when the
	// media was uploaded already. Stores that implement UploadWatcher announce
	// the completion to every process.
	// The quota and publish are as in MediaStore.CreateMedia.
	CompleteUpload(ctx context.Context, m *Media, q Quota, publish Publish) error
	// DeleteExpiredPending removes reservations that expired before now and
	// returns how many.
	DeleteExpiredPending(ctx context.Context, now time.Time) (int64, error)
}

// PreviewStore caches answers to /preview_url.
type PreviewStore interface {
	// URLPreview returns the cached preview of (serverName, url, bucket,
	// lang), or an error wrapping ErrNotFound.
	URLPreview(ctx context.Context, serverName, url string, bucket int64, lang string) (*URLPreview, error)
	// CreateURLPreview caches p; an existing entry for its key is kept (no error).
	CreateURLPreview(ctx context.Context, p *URLPreview) error
	// DeleteURLPreviews removes the answers cached before before and returns
	// how many.
	DeleteURLPreviews(ctx context.Context, before time.Time) (int64, error)
}

// RetentionStore answers what the collectors of old and unreferenced data
// need to know.
type RetentionStore interface {
	// BlobReferenced reports whether any media, thumbnail or export part
	// row points at the blob sha256 of datastore datastoreID.
	BlobReferenced(ctx context.Context, datastoreID, sha256 string) (bool, error)
}

// Quota limits a user's uploads; zero fields mean no limit.
type Quota struct {
	MaxBytes int64
	MaxFiles int64
}

// Usage is what a user's uploads add up to.
type Usage struct {
	Bytes int64
	Files int64
}

// UploadWatcher is an optional capability of a ReservationStore: being told
// when any process completes an upload, so a download waiting for it can wake
// at once. PostgreSQL has it (LISTEN/NOTIFY); without it, waiters in other
// processes see the upload when they look again.
type UploadWatcher interface {
	// WatchUploads calls fn with the origin and media ID of every completed
	// upload until ctx is done, reconnecting as needed. It returns ctx.Err().
	WatchUploads(ctx context.Context, fn func(origin, mediaID string)) error
}

// Locker serialises work across every process sharing the store: one
// generation of a media's thumbnails, one fetch of a remote media. A
// process that dies holding a lock gives it up (with its connection).
type Locker interface {
	// Lock blocks until this process holds key or ctx ends; unlock
	// releases it.
	Lock(ctx context.Context, key string) (unlock func(), err error)
}

// NoLocker is the Locker of a process that shares its store with no other:
// it only returns.
type NoLocker struct{}

// Lock implements Locker.
func (NoLocker) Lock(context.Context, string) (func(), error) { return func() {}, nil }
