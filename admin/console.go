package admin

import (
	"context"
	"strings"
	"time"

	"github.com/mediarepo/mediarepo/storage"
)

// What the operator console shows, with the admin API's access rules:
// repository admins see every homeserver, a homeserver's admins their own.

// Overview is what one homeserver's media add up to.
type Overview struct {
	Server string
	Local  storage.ServerUsage
	// RemoteCount and RemoteBytes are the remote media cached for every
	// homeserver here.
	RemoteCount, RemoteBytes int64
	// Days are the uploads of each of the last OverviewDays days, oldest
	// first, counted from the newest OverviewUploads uploads.
	Days []DayCount
	Top  []storage.UserStats // the largest uploaders, by bytes
}

// DayCount is the uploads of one day (UTC).
type DayCount struct {
	Day   time.Time
	Count int
}

// The overview's bounds: its chart reads at most OverviewUploads rows.
const (
	OverviewDays    = 30
	OverviewUploads = 5000
)

// consoleRefusal is what a caller who is no admin of the server is told.
const consoleRefusal = "Only repository admins and this homeserver's admins may see its media"

// Overview reports on server's media.
func (s *Service) Overview(ctx context.Context, c Caller, server string) (*Overview, error) {
	if err := s.adminOf(ctx, c, server, consoleRefusal); err != nil {
		return nil, err
	}
	o := &Overview{Server: server}
	var err error
	if o.Local, err = s.db.Catalog.ServerUsage(ctx, server); err != nil {
		return nil, err
	}
	remote := storage.MediaFilter{NotOrigins: s.localOrigins(), Limit: 1}
	if s.db.Totals != nil {
		o.RemoteCount, o.RemoteBytes, err = s.db.Totals.MediaTotals(ctx, remote)
	} else {
		_, o.RemoteCount, err = s.db.Catalog.FindMedia(ctx, remote)
	}
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	first := now.Truncate(24*time.Hour).AddDate(0, 0, -(OverviewDays - 1))
	rows, _, err := s.db.Catalog.FindMedia(ctx, storage.MediaFilter{
		Origins: []string{server}, Order: storage.ByCreated, Desc: true, Limit: OverviewUploads,
	})
	if err != nil {
		return nil, err
	}
	o.Days = make([]DayCount, OverviewDays)
	for i := range o.Days {
		o.Days[i].Day = first.AddDate(0, 0, i)
	}
	for _, m := range rows {
		if d := int(m.CreatedAt.UTC().Sub(first) / (24 * time.Hour)); d >= 0 && d < OverviewDays {
			o.Days[d].Count++
		}
	}
	o.Top, _, err = s.db.Catalog.UserStats(ctx, storage.StatsFilter{Origin: server, Order: storage.ByMediaBytes, Desc: true, Limit: 10})
	return o, err
}

// RecentMedia lists the newest limit media of server.
func (s *Service) RecentMedia(ctx context.Context, c Caller, server string, limit int) ([]storage.Media, error) {
	if err := s.adminOf(ctx, c, server, consoleRefusal); err != nil {
		return nil, err
	}
	rows, _, err := s.db.Catalog.FindMedia(ctx, storage.MediaFilter{Origins: []string{server}, Order: storage.ByCreated, Desc: true, Limit: limit})
	return rows, err
}

// SameBytes lists the media (at most limit) holding the bytes of sha256:
// every one for repository admins, the Host's and remote media for a
// homeserver's admins.
func (s *Service) SameBytes(ctx context.Context, c Caller, sha256 string, limit int) ([]storage.Media, error) {
	if err := s.serverAdmin(ctx, c); err != nil {
		return nil, err
	}
	rows, _, err := s.db.Catalog.FindMedia(ctx, storage.MediaFilter{SHA256: strings.ToLower(sha256), Order: storage.ByCreated, Desc: true, Limit: limit})
	if err != nil || c.Global {
		return rows, err
	}
	var out []storage.Media
	for _, m := range rows {
		if !s.isLocal(m.Origin) || sameServer(m.Origin, c.hostName()) {
			out = append(out, m)
		}
	}
	return out, nil
}

// RoomMedia lists the media stored here that the homeserver says room
// uses, local and remote.
func (s *Service) RoomMedia(ctx context.Context, c Caller, roomID string) ([]storage.Media, error) {
	if err := s.serverAdmin(ctx, c); err != nil {
		return nil, err
	}
	local, remote, err := s.roomMedia(ctx, c, roomID)
	if err != nil {
		return nil, err
	}
	return s.lookup(ctx, append(local, remote...))
}
