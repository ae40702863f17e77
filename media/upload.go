package media

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/crashpoint"
	"github.com/mediarepo/mediarepo/storage"
)

// Upload is one upload: who sends what, as the edge parsed it. Body is read
// once, to its end or its first error; limits on its length are the edge's.
type Upload struct {
	Origin      string // the homeserver the media belongs to
	UserID      string // the uploader; "" for shared-secret uploads
	Name        string // upload file name; "" for none
	ContentType string
	Body        io.Reader
	// Size is the length the client declared, or -1 if unknown: one over
	// uploads.maxBytes is refused before reading. The body is not trusted to
	// match it; the edge caps what is read.
	Size int64
}

// Upload stores u as new local media under a fresh media ID and returns its
// row. What can be known before reading (a declared size over the limit, a
// user at or, by the declared size, over their quota) is refused before a
// byte is read; what is known only after (the real size) is refused before
// the blob is published, so a refused upload leaves nothing behind.
func (s *Service) Upload(ctx context.Context, u Upload) (*storage.Media, error) {
	if err := s.checkBefore(ctx, u); err != nil {
		return nil, err
	}
	m, blob, err := s.receive(ctx, u)
	if err != nil {
		return nil, err
	}
	defer blob.Abort()
	crashpoint.Hit("upload-staged")
	quota, _ := s.Quota(m.UserID)
	// A collision of 192 random bits is not expected; retrying costs nothing.
	for attempt := 0; ; attempt++ {
		m.MediaID = newMediaID()
		err = s.media.CreateMedia(ctx, m, quota, publish(blob))
		if err == nil || !errors.Is(err, storage.ErrExists) || attempt == 2 {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	crashpoint.Hit("upload-stored")
	s.addBlurhash(ctx, m)
	s.uploaded(m)
	return m, nil
}

// addBlurhash computes and records the blurhash of an uploaded image, when
// MSC2448 is on. It is best effort: an image it cannot hash has none.
func (s *Service) addBlurhash(ctx context.Context, m *storage.Media) {
	if s.blurhash == nil || !strings.HasPrefix(m.ContentType, "image/") {
		return
	}
	hash, err := s.blurhash(ctx, m)
	if err == nil {
		err = s.hashes.SetBlurhash(ctx, m.Origin, m.MediaID, hash)
	}
	if err != nil {
		s.log.WithError(err).WithFields(logrus.Fields{"origin": m.Origin, "media_id": m.MediaID}).Debug("no blurhash")
		return
	}
	m.Blurhash = hash
}

// publish commits blob inside the row's transaction.
func publish(blob storage.StagedBlob) storage.Publish {
	return func(ctx context.Context) error {
		err := blob.Commit(ctx)
		crashpoint.Hit("upload-published") // the blob is durable, the row not yet
		return err
	}
}

// Save stores media this server made itself (a URL preview's image) as local
// media of origin: no uploader, so no quota.
func (s *Service) Save(ctx context.Context, origin, contentType string, data []byte) (*storage.Media, error) {
	id := s.blobs.Roles().LocalMedia
	sum, size, err := s.blobs.Put(ctx, id, bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	m := &storage.Media{
		Origin: origin, MediaID: newMediaID(), ContentType: ContentType(contentType),
		SHA256: sum, SizeBytes: size, DatastoreID: id, CreatedAt: time.Now(),
		Authenticated: s.cfg.Freeze,
	}
	if err := s.media.CreateMedia(ctx, m, storage.Quota{}, nil); err != nil {
		return nil, err
	}
	s.stored(m)
	return m, nil
}

// checkBefore refuses, before the body is read, an upload declared larger
// than uploads.maxBytes, and one that the user's quota cannot take: they are
// at it already, or the declared size would go over it. The final, atomic
// check happens when the row is written.
func (s *Service) checkBefore(ctx context.Context, u Upload) error {
	if limit := s.cfg.Uploads.MaxBytes; limit > 0 && u.Size > limit {
		return fmt.Errorf("%d bytes declared, limit %d: %w", u.Size, limit, ErrTooLarge)
	}
	q, _ := s.Quota(u.UserID)
	if u.UserID == "" || (q.MaxBytes <= 0 && q.MaxFiles <= 0) {
		return nil
	}
	used, err := s.media.Usage(ctx, u.UserID)
	if err != nil {
		return err
	}
	size := max(u.Size, 0)
	if (q.MaxBytes > 0 && (used.Bytes >= q.MaxBytes || used.Bytes+size > q.MaxBytes)) || (q.MaxFiles > 0 && used.Files >= q.MaxFiles) {
		return fmt.Errorf("%s stores %d bytes in %d files, %d more declared: %w", u.UserID, used.Bytes, used.Files, size, storage.ErrQuotaExceeded)
	}
	return nil
}

// receive stages u's body in the local datastore and returns the media row to
// write, without its MediaID, and the staged blob to publish with it. On any
// error nothing is left behind.
func (s *Service) receive(ctx context.Context, u Upload) (*storage.Media, storage.StagedBlob, error) {
	body := u.Body
	// Refuse a too-small upload before a byte reaches the datastore.
	if min := s.cfg.Uploads.MinBytes; min > 0 {
		head := make([]byte, min)
		n, err := io.ReadFull(body, head)
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("%d bytes, minimum %d: %w", n, min, ErrTooSmall)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read upload: %w", err)
		}
		body = io.MultiReader(bytes.NewReader(head[:n]), body)
	}
	id := s.blobs.Roles().LocalMedia
	blob, err := s.stage(ctx, id, body)
	if err != nil {
		return nil, nil, fmt.Errorf("store upload: %w", err)
	}
	return &storage.Media{
		Origin:        u.Origin,
		UploadName:    FileName(u.Name),
		ContentType:   ContentType(u.ContentType),
		UserID:        u.UserID,
		SHA256:        blob.SHA256(),
		SizeBytes:     blob.Size(),
		DatastoreID:   id,
		CreatedAt:     time.Now(),
		Authenticated: s.cfg.Freeze,
	}, blob, nil
}

// uploaded runs what follows every stored upload: waking downloads that wait
// for it, and the Stored hook (thumbnails).
func (s *Service) uploaded(m *storage.Media) {
	s.missing.Remove(m.Origin + "/" + m.MediaID)
	s.waiters.wake(m.Origin, m.MediaID)
	s.stored(m)
}

// Quota returns the storage quota and the pending-upload limit that apply to
// userID.
func (s *Service) Quota(userID string) (storage.Quota, int) {
	rule, ok := s.cfg.Uploads.Quotas.Quota(userID)
	if !ok {
		return storage.Quota{}, s.cfg.Uploads.MaxPending
	}
	pending := s.cfg.Uploads.MaxPending
	if rule.MaxPending > 0 {
		pending = rule.MaxPending
	}
	return storage.Quota{MaxBytes: rule.MaxBytes, MaxFiles: rule.MaxFiles}, pending
}

// Usage is what userID's uploads add up to.
func (s *Service) Usage(ctx context.Context, userID string) (storage.Usage, error) {
	return s.media.Usage(ctx, userID)
}

// newMediaID returns 32 characters of [A-Za-z0-9_-] (192 random bits).
func newMediaID() string {
	var b [24]byte
	rand.Read(b[:]) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b[:])
}
