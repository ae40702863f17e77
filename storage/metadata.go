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
	// Close releases the database. Calls after Close fail.
	Close() error
}
