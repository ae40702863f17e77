package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/mxid"
	"github.com/mediarepo/mediarepo/storage"
)

// A purge removes media rows and their thumbnails, then each blob no row
// references any more (a blob shared with other media stays). Local media
// IDs purged are never handed out again. Protected media is never selected
// by a purge of many; quarantined media is kept by the purges of cached
// remote media, so that its bytes stay blocked where they came from.

// Scope is what an MMR purge selects.
type Scope int

// Purge scopes, matrix-media-repo's routes.
const (
	PurgeOne         Scope = iota // one media: Server, MediaID
	PurgeUser                     // UserID's uploads created before Before
	PurgeRoom                     // the media a room uses (RoomID)
	PurgeServer                   // media of Server created before Before
	PurgeQuarantined              // quarantined media
	PurgeOld                      // media created before Before; local too with IncludeLocal
	PurgeRemote                   // cached remote media created before Before
)

// PurgeRequest is one MMR purge.
type PurgeRequest struct {
	Scope           Scope
	Server, MediaID string
	UserID, RoomID  string
	Before          time.Time // zero: now
	IncludeLocal    bool
}

// Purge runs an MMR purge and returns the mxc URIs of the media it removed.
// Every selected media is checked against the caller's rights first; one
// refusal refuses the whole purge.
func (s *Service) Purge(ctx context.Context, c Caller, r PurgeRequest) ([]string, error) {
	if r.Before.IsZero() {
		r.Before = s.now()
	}
	if err := s.purgeGate(ctx, c, r); err != nil {
		return nil, err
	}
	rows, err := s.selectPurge(ctx, c, r)
	if err != nil {
		return nil, err
	}
	for _, m := range rows {
		if err := s.mayPurge(ctx, c, r.Scope, m); err != nil {
			return nil, err
		}
	}
	removed, err := s.remove(ctx, c.by(), keys(rows))
	if err != nil {
		return nil, err
	}
	out := make([]string, len(removed))
	for i, m := range removed {
		out[i] = mxid.MXC(m.Origin, m.MediaID)
	}
	return out, nil
}

// purgeGate refuses, before anything is looked up, callers who may purge
// nothing of what r names: purges of many are for repository admins and the
// Host's homeserver admins (of their own users and server only), purges of
// old or remote media for repository admins.
func (s *Service) purgeGate(ctx context.Context, c Caller, r PurgeRequest) error {
	if c.Global || r.Scope == PurgeOne {
		return nil
	}
	if r.Scope == PurgeOld || r.Scope == PurgeRemote {
		return forbidden("Only repository admins may purge old or remote media")
	}
	ok, err := s.homeserverAdmin(ctx, c)
	if err != nil {
		return err
	}
	switch {
	case !ok:
		return forbidden("Only repository admins and homeserver admins may purge media in bulk")
	case r.Scope == PurgeUser && !sameServer(mxid.UserServer(r.UserID), c.hostName()):
		return forbidden("You may only purge the media of your own homeserver's users")
	case r.Scope == PurgeServer && !sameServer(r.Server, c.hostName()):
		return forbidden("You may only purge your own homeserver's media")
	}
	return nil
}

// selectPurge finds the media a purge names, before any rights check.
func (s *Service) selectPurge(ctx context.Context, c Caller, r PurgeRequest) ([]storage.Media, error) {
	switch r.Scope {
	case PurgeOne:
		return s.lookup(ctx, []storage.MediaKey{{Origin: r.Server, MediaID: r.MediaID}})
	case PurgeRoom:
		local, remote, err := s.roomMedia(ctx, c, r.RoomID)
		if err != nil {
			return nil, err
		}
		keys := append(local, remote...)
		if !c.Global { // a homeserver admin's purge reaches their own media in the room
			keys = keys[:0:0]
			for _, k := range local {
				if sameServer(k.Origin, c.hostName()) {
					keys = append(keys, k)
				}
			}
		}
		rows, err := s.lookup(ctx, keys)
		return unprotected(rows), err
	}
	f := storage.MediaFilter{NotProtected: true, CreatedBefore: r.Before}
	switch r.Scope {
	case PurgeUser:
		if !mxid.ValidUserID(r.UserID) {
			return nil, invalid(fmt.Sprintf("%q is not a user ID", r.UserID))
		}
		f.UserID = r.UserID
	case PurgeServer:
		f.Origins = []string{r.Server}
	case PurgeQuarantined:
		f.Quarantined, f.CreatedBefore = true, time.Time{}
		if !c.Global {
			f.Origins = []string{c.hostName()}
		}
	case PurgeOld:
		if !r.IncludeLocal {
			f.NotOrigins = s.localOrigins()
		}
	case PurgeRemote:
		f.NotOrigins, f.NotQuarantined = s.localOrigins(), true
	default:
		return nil, invalid("Unknown purge")
	}
	rows, _, err := s.db.Catalog.FindMedia(ctx, f)
	return rows, err
}

// mayPurge is matrix-media-repo's rule for who may purge m in a purge of
// scope: repository admins anything; a homeserver admin their own
// homeserver's media (in purges of one media, a user, a room, a server or
// the quarantined); an uploader their own media, one at a time.
func (s *Service) mayPurge(ctx context.Context, c Caller, scope Scope, m storage.Media) error {
	if c.Global {
		return nil
	}
	if scope == PurgeOld || scope == PurgeRemote {
		return forbidden("Only repository admins may purge old or remote media")
	}
	if sameServer(m.Origin, c.hostName()) {
		ok, err := s.homeserverAdmin(ctx, c)
		if err != nil || ok {
			return err
		}
	}
	if scope == PurgeOne && c.UserID != "" && m.UserID == c.UserID {
		return nil
	}
	return forbidden(fmt.Sprintf("You may not purge %s", mxid.MXC(m.Origin, m.MediaID)))
}

// remove deletes the rows keys and then the blobs nothing references any
// more, and tells every process's caches. It returns the rows removed.
func (s *Service) remove(ctx context.Context, by string, ks []storage.MediaKey) ([]storage.Media, error) {
	if len(ks) == 0 {
		return nil, nil
	}
	removed, deleted, err := s.remover.Remove(ctx, ks, s.localOrigins())
	if len(removed) > 0 {
		s.changed(ctx)
	}
	if err != nil {
		return removed, err
	}
	s.seen.Purged(len(removed))
	var bytes int64
	for _, m := range removed {
		bytes += m.SizeBytes
	}
	s.log.WithFields(logrus.Fields{"by": by, "media": len(removed), "bytes": bytes, "blobs_deleted": deleted}).Info("media purged")
	return removed, nil
}

func keys(rows []storage.Media) []storage.MediaKey {
	out := make([]storage.MediaKey, len(rows))
	for i, m := range rows {
		out[i] = storage.MediaKey{Origin: m.Origin, MediaID: m.MediaID}
	}
	return out
}

func unprotected(rows []storage.Media) []storage.Media {
	out := rows[:0:0]
	for _, m := range rows {
		if !m.Protected {
			out = append(out, m)
		}
	}
	return out
}

func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }

// Synapse's media admin API deletes.

// minBeforeTS guards Synapse's before_ts against seconds given for
// milliseconds, as Synapse does.
const minBeforeTS = 30_000_000_000

// CheckBeforeTS refuses a before_ts that looks like seconds.
func CheckBeforeTS(ms int64) error {
	if ms < minBeforeTS {
		return invalid("before_ts you provided is from the year 1970. Double check that you are providing a timestamp in milliseconds")
	}
	return nil
}

// DeleteLocal deletes one local media (Synapse's DELETE media/{server}/{id}),
// quarantined and protected alike.
func (s *Service) DeleteLocal(ctx context.Context, c Caller, server, mediaID string) ([]string, error) {
	if err := s.serverAdmin(ctx, c); err != nil {
		return nil, err
	}
	if !s.isLocal(server) || (!c.Global && !sameServer(server, c.hostName())) {
		return nil, invalid("Can only delete local media")
	}
	rows, err := s.lookup(ctx, []storage.MediaKey{{Origin: server, MediaID: mediaID}})
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, &Error{Kind: NotFound, Msg: "Unknown media"}
	}
	return s.removeIDs(ctx, c, keys(rows))
}

// DeleteOld deletes the Host homeserver's media last used before before
// and larger than sizeGT bytes, never quarantined or protected media, and
// with keepProfiles not the uploaders' current avatars (Synapse's POST
// media/delete). Per-room and room avatars are not known here: see
// docs/admin.md.
func (s *Service) DeleteOld(ctx context.Context, c Caller, before time.Time, sizeGT int64, keepProfiles bool) ([]string, error) {
	if err := s.serverAdmin(ctx, c); err != nil {
		return nil, err
	}
	if c.Host == nil {
		return nil, invalid("No homeserver selected")
	}
	rows, _, err := s.db.Catalog.FindMedia(ctx, storage.MediaFilter{
		Origins: []string{c.Host.Name}, IdleSince: before, LargerThan: sizeGT, NotQuarantined: true, NotProtected: true,
	})
	if err != nil {
		return nil, err
	}
	if keepProfiles {
		rows = s.withoutAvatars(ctx, c, rows)
	}
	return s.removeIDs(ctx, c, keys(rows))
}

// withoutAvatars drops the media that are their uploader's avatar, asking
// the homeserver once per uploader. When it cannot tell, it keeps the
// uploader's media: a deleted avatar is not coming back.
func (s *Service) withoutAvatars(ctx context.Context, c Caller, rows []storage.Media) []storage.Media {
	avatars := map[string]string{}
	unknown := map[string]bool{}
	out := rows[:0:0]
	for _, m := range rows {
		if m.UserID == "" {
			out = append(out, m)
			continue
		}
		if _, asked := avatars[m.UserID]; !asked && !unknown[m.UserID] {
			url, err := s.avatar(ctx, c, m.UserID)
			if err != nil {
				s.log.WithError(err).WithField("user_id", m.UserID).Warn("avatar unknown; keeping the user's media")
				unknown[m.UserID] = true
			} else {
				avatars[m.UserID] = url
			}
		}
		if unknown[m.UserID] || avatars[m.UserID] == mxid.MXC(m.Origin, m.MediaID) {
			continue
		}
		out = append(out, m)
	}
	return out
}

func (s *Service) avatar(ctx context.Context, c Caller, userID string) (string, error) {
	if c.Token == "" {
		return "", errors.New("the shared secret has no homeserver token to read profiles with")
	}
	return s.hs.AvatarURL(ctx, c.Host, c.Token, userID)
}

// PurgeRemoteCache deletes cached remote media last used before before,
// never quarantined or protected media (Synapse's purge_media_cache). It
// returns how many were deleted.
func (s *Service) PurgeRemoteCache(ctx context.Context, c Caller, before time.Time) (int, error) {
	if err := s.serverAdmin(ctx, c); err != nil {
		return 0, err
	}
	rows, _, err := s.db.Catalog.FindMedia(ctx, storage.MediaFilter{
		NotOrigins: s.localOrigins(), IdleSince: before, NotQuarantined: true, NotProtected: true,
	})
	if err != nil {
		return 0, err
	}
	removed, err := s.remove(ctx, c.by(), keys(rows))
	return len(removed), err
}

// removeIDs removes the media and returns their media IDs, Synapse's answer.
func (s *Service) removeIDs(ctx context.Context, c Caller, ks []storage.MediaKey) ([]string, error) {
	removed, err := s.remove(ctx, c.by(), ks)
	out := make([]string, len(removed))
	for i, m := range removed {
		out[i] = m.MediaID
	}
	return out, err
}
