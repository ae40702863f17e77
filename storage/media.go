// Package storage holds the boundary types and interfaces between the HTTP edge
// and the backends: media metadata (postgres, sqlite) and blobs (disk). It
// imports only the standard library; implementations live in subpackages and
// never import each other.
package storage

import "time"

// Media is the metadata of one piece of media, identified by (Origin, MediaID).
// Its bytes and what describes them never change; what moderation and
// retention set (QuarantinedBy, Protected, LastAccess) is as of when the row
// was read.
type Media struct {
	Origin      string // server name of the homeserver the media belongs to
	MediaID     string // [A-Za-z0-9_-]+, see mxid.ValidMediaID
	UploadName  string // filename given at upload; "" if none
	ContentType string // as the uploader sent it, verbatim
	UserID      string // uploader; "" for shared-secret uploads
	SHA256      string // lowercase hex digest of the blob
	SizeBytes   int64
	DatastoreID string // the datastore holding the blob
	CreatedAt   time.Time
	// Authenticated media was created while the media freeze was on and is only
	// served on authenticated routes.
	Authenticated bool
	// QuarantinedBy is who quarantined these bytes; "" unless they are. Set
	// by reads; quarantine goes through ModerationStore.
	QuarantinedBy string
	// Protected media (pinned) is never quarantined, nor purged by age.
	Protected bool
	// LastAccess is the last download or thumbnail recorded; zero if none.
	LastAccess time.Time
	// Blurhash is the image's MSC2448 blurhash, or "".
	Blurhash string
}

// Thumbnail is one stored thumbnail of a piece of media, keyed by the media
// and the size it was made for (Width x Height box, Method, Animated) and its
// ContentType.
type Thumbnail struct {
	Origin      string
	MediaID     string
	Width       int    // the box it was made for, not the output's size
	Height      int    //
	Method      string // "scale" or "crop"
	Animated    bool   // made for animated=true
	ContentType string // of the thumbnail
	SHA256      string
	SizeBytes   int64
	DatastoreID string
	CreatedAt   time.Time
}

// Pending is a media ID reserved by POST /_matrix/media/v1/create and not
// uploaded yet (MSC2246). Only UserID may upload it, until ExpiresAt.
type Pending struct {
	Origin    string
	MediaID   string
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// URLPreview is a cached answer to /preview_url: the JSON body sent, or the
// error, for one homeserver, URL, hour bucket and language.
type URLPreview struct {
	ServerName string // the homeserver whose users asked
	URL        string
	Bucket     int64  // hours since the epoch of the requested ts
	Lang       string // Accept-Language used
	Status     int    // HTTP status of the answer
	Errcode    string // "" for a preview
	Body       string // the JSON sent
	CreatedAt  time.Time
}
