package storage

import "context"

// MetadataStore keeps media metadata. Implementations are safe for concurrent
// use and hold the same contract, checked by storagetest.RunMetadataStore.
type MetadataStore interface {
	// CreateMedia inserts m. It returns an error wrapping ErrExists if
	// (m.Origin, m.MediaID) is taken, and changes nothing then.
	CreateMedia(ctx context.Context, m *Media) error
	// Media returns the media (origin, mediaID), or an error wrapping
	// ErrNotFound. It never returns nil, nil.
	Media(ctx context.Context, origin, mediaID string) (*Media, error)
	// CreateThumbnail inserts t. It returns an error wrapping ErrExists if a
	// thumbnail with the same key is stored already, and changes nothing then.
	CreateThumbnail(ctx context.Context, t *Thumbnail) error
	// Thumbnails lists the thumbnails of (origin, mediaID); none is not an error.
	Thumbnails(ctx context.Context, origin, mediaID string) ([]Thumbnail, error)
	// Close releases the database. Calls after Close fail.
	Close() error
}
