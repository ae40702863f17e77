package admin

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/mxid"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/transfer"
)

// Reports of what is stored, and the tasks.

// Page selects a page of a listing.
type Page struct {
	From, Limit int
	Order       storage.MediaOrder
	Desc        bool
}

// localUser checks that userID is a user of a homeserver here the caller
// may look at: any for repository admins, the Host's for homeserver admins.
func (s *Service) localUser(ctx context.Context, c Caller, userID string) error {
	if err := s.serverAdmin(ctx, c); err != nil {
		return err
	}
	if !mxid.ValidUserID(userID) {
		return invalid(fmt.Sprintf("%q is not a user ID", userID))
	}
	server := mxid.UserServer(userID)
	if !s.isLocal(server) || (!c.Global && !sameServer(server, c.hostName())) {
		return invalid("Can only look up local users")
	}
	return nil
}

// UserMedia lists what userID uploaded to their homeserver, a page of it,
// and how much there is in all (Synapse's users/{userId}/media).
func (s *Service) UserMedia(ctx context.Context, c Caller, userID string, p Page) ([]storage.Media, int64, error) {
	if err := s.localUser(ctx, c, userID); err != nil {
		return nil, 0, err
	}
	return s.db.Catalog.FindMedia(ctx, storage.MediaFilter{
		Origins: []string{mxid.UserServer(userID)}, UserID: userID,
		Order: p.Order, Desc: p.Desc, Offset: p.From, Limit: p.Limit,
	})
}

// DeleteUserMedia deletes exactly the page of userID's media that
// UserMedia would list, and returns the media IDs deleted.
func (s *Service) DeleteUserMedia(ctx context.Context, c Caller, userID string, p Page) ([]string, error) {
	rows, _, err := s.UserMedia(ctx, c, userID, p)
	if err != nil {
		return nil, err
	}
	return s.removeIDs(ctx, c, keys(rows))
}

// MediaInfo returns one media's row (Synapse's GET media/{server}/{id}). A
// homeserver admin may look at their own homeserver's media and at cached
// remote media, not at another tenant's.
func (s *Service) MediaInfo(ctx context.Context, c Caller, server, mediaID string) (*storage.Media, error) {
	if err := s.serverAdmin(ctx, c); err != nil {
		return nil, err
	}
	if !c.Global && s.isLocal(server) && !sameServer(server, c.hostName()) {
		return nil, forbidden("You may only look at your own homeserver's media")
	}
	m, err := s.db.Media.Media(ctx, server, mediaID)
	if isNotFound(err) {
		return nil, &Error{Kind: NotFound, Msg: "Unknown media", Err: err}
	}
	return m, err
}

// UserStats returns per-user statistics of server's media.
func (s *Service) UserStats(ctx context.Context, c Caller, f storage.StatsFilter) ([]storage.UserStats, int64, error) {
	if err := s.adminOf(ctx, c, f.Origin, "Only repository admins and this homeserver's admins may read its statistics"); err != nil {
		return nil, 0, err
	}
	return s.db.Catalog.UserStats(ctx, f)
}

// ServerUsage adds up server's media and thumbnails.
func (s *Service) ServerUsage(ctx context.Context, c Caller, server string) (storage.ServerUsage, error) {
	if err := RequireGlobal(c); err != nil {
		return storage.ServerUsage{}, err
	}
	return s.db.Catalog.ServerUsage(ctx, server)
}

// UserUsage is what one user stored on a server.
type UserUsage struct {
	Bytes, Count int64
	Uploaded     []string // mxc URIs
}

// UsersUsage adds up, per uploader, server's media: of the users named, or
// of every uploader ("" for media without one) if none is.
func (s *Service) UsersUsage(ctx context.Context, c Caller, server string, userIDs []string) (map[string]*UserUsage, error) {
	if err := RequireGlobal(c); err != nil {
		return nil, err
	}
	out := map[string]*UserUsage{}
	add := func(rows []storage.Media) {
		for _, m := range rows {
			u := out[m.UserID]
			if u == nil {
				u = &UserUsage{Uploaded: []string{}}
				out[m.UserID] = u
			}
			u.Bytes += m.SizeBytes
			u.Count++
			u.Uploaded = append(u.Uploaded, mxid.MXC(m.Origin, m.MediaID))
		}
	}
	if len(userIDs) == 0 {
		rows, _, err := s.db.Catalog.FindMedia(ctx, storage.MediaFilter{Origins: []string{server}})
		if err != nil {
			return nil, err
		}
		add(rows)
		return out, nil
	}
	for _, id := range userIDs {
		rows, _, err := s.db.Catalog.FindMedia(ctx, storage.MediaFilter{Origins: []string{server}, UserID: id})
		if err != nil {
			return nil, err
		}
		add(rows)
	}
	return out, nil
}

// Uploads returns the rows of mxcs, all of server; unknown ones are left
// out.
func (s *Service) Uploads(ctx context.Context, c Caller, server string, mxcs []string) (map[string]storage.Media, error) {
	if err := RequireGlobal(c); err != nil {
		return nil, err
	}
	out := map[string]storage.Media{}
	for _, uri := range mxcs {
		origin, id, ok := mxid.ParseMXC(uri)
		if !ok {
			return nil, invalid(fmt.Sprintf("%q is not an mxc URI", uri))
		}
		if !sameServer(origin, server) {
			return nil, invalid(fmt.Sprintf("%s is not media of %s", uri, server))
		}
		m, err := s.db.Media.Media(ctx, origin, id)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[uri] = *m
	}
	return out, nil
}

// Datastores lists the configured datastores.
func (s *Service) Datastores(c Caller) ([]config.Datastore, error) {
	if err := RequireGlobal(c); err != nil {
		return nil, err
	}
	return s.conf().Datastores, nil
}

// Estimate adds up what of datastore id was last used before before.
func (s *Service) Estimate(ctx context.Context, c Caller, id string, before time.Time) (storage.Estimate, error) {
	if err := RequireGlobal(c); err != nil {
		return storage.Estimate{}, err
	}
	return s.db.Catalog.Estimate(ctx, id, before)
}

// Transfer starts moving what of datastore from was last used before
// before to datastore to, as a task, and returns its ID with the estimate
// of what it moves, matrix-media-repo's answer.
func (s *Service) Transfer(ctx context.Context, c Caller, from, to string, before time.Time) (storage.Estimate, int64, error) {
	if err := RequireGlobal(c); err != nil {
		return storage.Estimate{}, 0, err
	}
	if s.moves == nil {
		return storage.Estimate{}, 0, &Error{Kind: Invalid, Msg: "Transfers are not available"}
	}
	if err := s.moves.Check(from, to); err != nil {
		return storage.Estimate{}, 0, invalid(strings.TrimPrefix(err.Error(), transfer.ErrUnknownDatastore.Error()+": "))
	}
	e, err := s.db.Catalog.Estimate(ctx, from, before)
	if err != nil {
		return storage.Estimate{}, 0, err
	}
	id, err := s.moves.Start(ctx, from, to, before)
	return e, id, err
}

// Rescan starts a task scanning the media stored before before with clamd,
// quarantining the infected; it returns the task's ID.
func (s *Service) Rescan(ctx context.Context, c Caller, before time.Time) (int64, error) {
	if err := RequireGlobal(c); err != nil {
		return 0, err
	}
	if s.rescans == nil {
		return 0, &Error{Kind: Invalid, Msg: "Virus scanning is not enabled (antivirus.enabled)"}
	}
	return s.rescans.Start(ctx, before)
}

// Tasks lists the admin API's tasks, only the unfinished if asked.
func (s *Service) Tasks(ctx context.Context, c Caller, unfinished bool) ([]storage.Task, error) {
	if err := RequireGlobal(c); err != nil {
		return nil, err
	}
	return s.db.Tasks.Tasks(ctx, unfinished)
}

// Task returns one task.
func (s *Service) Task(ctx context.Context, c Caller, id int64) (*storage.Task, error) {
	if err := RequireGlobal(c); err != nil {
		return nil, err
	}
	t, err := s.db.Tasks.Task(ctx, id)
	if isNotFound(err) {
		return nil, &Error{Kind: NotFound, Msg: "Task not found", Err: err}
	}
	return t, err
}
