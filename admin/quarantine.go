package admin

import (
	"context"
	"fmt"

	"github.com/mediarepo/mediarepo/mxid"
	"github.com/mediarepo/mediarepo/storage"
)

// Quarantine takes media down: its bytes are never served again on any
// route, and new uploads of them are refused. A repository admin's
// quarantine covers every media with those bytes; a homeserver admin's only
// media of their own homeserver. Protected media is skipped. The counts are
// of media rows newly quarantined.

// quarantineGate is who may quarantine, matrix-media-repo's rule: a
// repository admin, or, with quarantine.allowLocalAdmins, an admin of the
// Host homeserver. It returns whether the caller is the latter.
func (s *Service) quarantineGate(ctx context.Context, c Caller) (local bool, err error) {
	if c.Global {
		return false, nil
	}
	if s.conf().Quarantine.AllowLocalAdmins {
		ok, err := s.homeserverAdmin(ctx, c)
		if err != nil {
			return false, err
		}
		if ok {
			return true, nil
		}
	}
	return false, forbidden("Only repository admins, and homeserver admins where quarantine.allowLocalAdmins is on, may quarantine media")
}

// quarantineRows quarantines the bytes of rows in the caller's scope.
func (s *Service) quarantineRows(ctx context.Context, c Caller, local bool, rows []storage.Media) (int64, error) {
	scope := ""
	if local {
		scope = c.hostName()
	}
	var sums []string
	for _, m := range rows {
		if m.Protected || (local && !sameServer(m.Origin, scope)) {
			continue
		}
		sums = append(sums, m.SHA256)
	}
	if len(sums) == 0 {
		return 0, nil
	}
	n, err := s.db.Moderation.Quarantine(ctx, sums, scope, c.by())
	if err != nil {
		return 0, err
	}
	s.changed(ctx)
	s.seen.Quarantined(n)
	s.log.WithField("by", c.by()).WithField("scope", scope).WithField("hashes", len(sums)).WithField("media", n).Info("media quarantined")
	return n, nil
}

// QuarantineMedia quarantines one media (and every other with its bytes).
// Unknown media counts 0. A homeserver admin may only name their own
// homeserver's media.
func (s *Service) QuarantineMedia(ctx context.Context, c Caller, server, mediaID string) (int64, error) {
	local, err := s.quarantineGate(ctx, c)
	if err != nil {
		return 0, err
	}
	if local && !sameServer(server, c.hostName()) {
		return 0, invalid("Unable to quarantine media on other homeservers")
	}
	rows, err := s.lookup(ctx, []storage.MediaKey{{Origin: server, MediaID: mediaID}})
	if err != nil {
		return 0, err
	}
	return s.quarantineRows(ctx, c, local, rows)
}

// QuarantineRoom quarantines the media a room uses, as its homeserver lists
// them; a homeserver admin's reaches the room's local media only.
func (s *Service) QuarantineRoom(ctx context.Context, c Caller, roomID string) (int64, error) {
	local, err := s.quarantineGate(ctx, c)
	if err != nil {
		return 0, err
	}
	localKeys, remoteKeys, err := s.roomMedia(ctx, c, roomID)
	if err != nil {
		return 0, err
	}
	keys := localKeys
	if !local {
		keys = append(keys, remoteKeys...)
	}
	rows, err := s.lookup(ctx, keys)
	if err != nil {
		return 0, err
	}
	return s.quarantineRows(ctx, c, local, rows)
}

// QuarantineUser quarantines what userID uploaded: on any origin
// (matrix-media-repo), or of their own homeserver only (Synapse, localOnly).
// A homeserver admin may only name their own homeserver's users.
func (s *Service) QuarantineUser(ctx context.Context, c Caller, userID string, localOnly bool) (int64, error) {
	local, err := s.quarantineGate(ctx, c)
	if err != nil {
		return 0, err
	}
	if !mxid.ValidUserID(userID) {
		return 0, invalid(fmt.Sprintf("%q is not a user ID", userID))
	}
	if local && !sameServer(mxid.UserServer(userID), c.hostName()) {
		return 0, forbidden("You may only quarantine the media of your own homeserver's users")
	}
	f := storage.MediaFilter{UserID: userID}
	if localOnly {
		f.Origins = []string{mxid.UserServer(userID)}
	}
	rows, _, err := s.db.Catalog.FindMedia(ctx, f)
	if err != nil {
		return 0, err
	}
	return s.quarantineRows(ctx, c, local, rows)
}

// QuarantineServer quarantines every media stored of one origin (what is
// stored now; later media is not blocked).
func (s *Service) QuarantineServer(ctx context.Context, c Caller, server string) (int64, error) {
	local, err := s.quarantineGate(ctx, c)
	if err != nil {
		return 0, err
	}
	if local && !sameServer(server, c.hostName()) {
		return 0, forbidden("You may only quarantine your own homeserver's media")
	}
	rows, _, err := s.db.Catalog.FindMedia(ctx, storage.MediaFilter{Origins: []string{server}})
	if err != nil {
		return 0, err
	}
	return s.quarantineRows(ctx, c, local, rows)
}

// Unquarantine lifts the quarantine of one media's bytes (Synapse's
// route): a repository admin's lifts every quarantine of them, a homeserver
// admin's their own homeserver's.
func (s *Service) Unquarantine(ctx context.Context, c Caller, server, mediaID string) (int64, error) {
	if err := s.serverAdmin(ctx, c); err != nil {
		return 0, err
	}
	if !c.Global && !sameServer(server, c.hostName()) {
		return 0, forbidden("You may only act on your own homeserver's media")
	}
	m, err := s.db.Media.Media(ctx, server, mediaID)
	if err != nil {
		return 0, nil // unknown media: nothing to lift, as Synapse answers
	}
	n, err := s.db.Moderation.Unquarantine(ctx, []string{m.SHA256}, c.hostName(), c.Global)
	if err != nil {
		return 0, err
	}
	s.changed(ctx)
	s.log.WithField("by", c.by()).WithField("media", n).Info("quarantine lifted")
	return n, nil
}

// SetProtected protects or unprotects media of the Host homeserver
// (Synapse's protect: never quarantined, nor purged by age). Unknown media
// is no error, as in Synapse.
func (s *Service) SetProtected(ctx context.Context, c Caller, mediaID string, protected bool) error {
	if err := s.serverAdmin(ctx, c); err != nil {
		return err
	}
	if c.Host == nil {
		return invalid("No homeserver selected")
	}
	return s.setProtected(ctx, c.Host.Name, mediaID, protected)
}

func (s *Service) setProtected(ctx context.Context, server, mediaID string, protected bool) error {
	err := s.db.Moderation.SetProtected(ctx, server, mediaID, protected)
	if err != nil && !isNotFound(err) {
		return err
	}
	s.changed(ctx)
	return nil
}

// Purposes of matrix-media-repo's media attributes.
const (
	PurposeNone   = "none"
	PurposePinned = "pinned"
)

// adminOf refuses, with refusal, callers who are neither repository admins
// nor admins of server, which must be their Host.
func (s *Service) adminOf(ctx context.Context, c Caller, server, refusal string) error {
	if c.Global {
		return nil
	}
	if sameServer(server, c.hostName()) {
		if ok, err := s.homeserverAdmin(ctx, c); err != nil || ok {
			return err
		}
	}
	return forbidden(refusal)
}

const attributesRefusal = "Only repository admins and the media's homeserver admins may see or change its attributes"

// Attributes returns a media's purpose: pinned (protected) or none.
func (s *Service) Attributes(ctx context.Context, c Caller, server, mediaID string) (string, error) {
	if err := s.adminOf(ctx, c, server, attributesRefusal); err != nil {
		return "", err
	}
	m, err := s.db.Media.Media(ctx, server, mediaID)
	if isNotFound(err) {
		return "", &Error{Kind: NotFound, Msg: "Media not found", Err: err}
	}
	if err != nil {
		return "", err
	}
	if m.Protected {
		return PurposePinned, nil
	}
	return PurposeNone, nil
}

// SetAttributes sets a media's purpose.
func (s *Service) SetAttributes(ctx context.Context, c Caller, server, mediaID, purpose string) error {
	if err := s.adminOf(ctx, c, server, attributesRefusal); err != nil {
		return err
	}
	if purpose != PurposeNone && purpose != PurposePinned {
		return invalid("Unknown purpose")
	}
	return s.setProtected(ctx, server, mediaID, purpose == PurposePinned)
}
