// Package admin is the logic of the admin API: who may act on what, and
// what quarantines, purges, protections and usage reports do, with
// matrix-media-repo's and Synapse's semantics. The api package is its edge
// (both route families parse into these calls). It imports storage,
// retention (for its Remover), archive, bus, homeserver, config and mxid,
// and starts no goroutine.
package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/antivirus"
	"github.com/mediarepo/mediarepo/archive"
	"github.com/mediarepo/mediarepo/bus"
	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/homeserver"
	"github.com/mediarepo/mediarepo/mxid"
	"github.com/mediarepo/mediarepo/retention"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/transfer"
)

// SharedSecretUser is who the shared secret acts as, as in
// matrix-media-repo.
const SharedSecretUser = "@sharedsecret"

// Kind is what went wrong, for the edge to answer.
type Kind int

// Kinds of Error.
const (
	Forbidden   Kind = iota // 403 M_FORBIDDEN
	Invalid                 // 400: a bad parameter
	NotFound                // 404 M_NOT_FOUND
	Unsupported             // 501: the homeserver cannot do it
	Upstream                // 502: the homeserver failed
)

// Error is a refusal with the message the caller sees.
type Error struct {
	Kind Kind
	Msg  string
	Err  error // the cause, for logs
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

func forbidden(msg string) *Error { return &Error{Kind: Forbidden, Msg: msg} }
func invalid(msg string) *Error   { return &Error{Kind: Invalid, Msg: msg} }

// Caller is who makes an admin call.
type Caller struct {
	UserID string // "" for the shared secret
	// Token is the caller's access token on Host, for the homeserver calls
	// made on their behalf (admin checks, room media lists); never logged.
	Token string
	// Host is the homeserver the request was sent for.
	Host *config.Homeserver
	// Global is a repository admin: listed in admins, or the shared secret.
	Global bool
}

// by is who a quarantine is recorded as made by.
func (c Caller) by() string {
	if c.UserID == "" {
		return SharedSecretUser
	}
	return c.UserID
}

// Homeservers are the homeserver calls the admin API makes for a caller.
type Homeservers interface {
	homeserver.AdminChecker
	RoomMedia(ctx context.Context, hs *config.Homeserver, token, roomID string) (local, remote []string, err error)
	AvatarURL(ctx context.Context, hs *config.Homeserver, token, userID string) (string, error)
}

// Stores are the metadata stores the admin API works on; one engine may be
// all of them.
type Stores struct {
	Media      storage.MediaStore
	Catalog    storage.CatalogStore
	Totals     storage.TotalsStore // the console's overview; nil leaves remote totals out
	Moderation storage.ModerationStore
	Purge      storage.PurgeStore
	Tasks      storage.TaskStore
}

// Options are the service's dependencies.
type Options struct {
	Config *config.Config
	// Live, if set, is the config in force, which a reload swaps.
	Live        *config.Live
	Stores      Stores
	Blobs       *storage.Datastores
	Homeservers Homeservers
	// Bus tells every process's caches what changed.
	Bus *bus.Bus
	Log *logrus.Entry
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Observer counts purges and quarantines; nil counts nothing.
	Observer Observer
	// Archives runs exports and imports; nil leaves archiving off.
	Archives *archive.Service
	// Transfers moves blobs between datastores; nil refuses transfers.
	Transfers *transfer.Service
	// Rescans scans stored media for viruses; nil (antivirus off) refuses
	// rescans.
	Rescans *antivirus.Rescanner
}

// Observer is told how much was purged and quarantined.
type Observer interface {
	Purged(n int)
	Quarantined(n int64)
}

type noObserver struct{}

func (noObserver) Purged(int)        {}
func (noObserver) Quarantined(int64) {}

// Service answers the admin API. Its methods are safe for concurrent use.
type Service struct {
	live     *config.Live
	db       Stores
	blobs    *storage.Datastores
	remover  *retention.Remover
	hs       Homeservers
	bus      *bus.Bus
	log      *logrus.Entry
	now      func() time.Time
	seen     Observer
	archives *archive.Service // nil: archiving off
	moves    *transfer.Service
	rescans  *antivirus.Rescanner
}

// New checks opts and returns the Service.
func New(opts Options) (*Service, error) {
	if opts.Config == nil || opts.Stores.Media == nil || opts.Stores.Catalog == nil || opts.Stores.Moderation == nil ||
		opts.Stores.Purge == nil || opts.Stores.Tasks == nil || opts.Blobs == nil || opts.Homeservers == nil || opts.Bus == nil || opts.Log == nil {
		return nil, errors.New("admin.New: Config, Stores, Blobs, Homeservers, Bus and Log are required")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if opts.Live == nil {
		opts.Live = config.NewLive(opts.Config)
	}
	return &Service{
		live: opts.Live, db: opts.Stores, blobs: opts.Blobs, hs: opts.Homeservers, bus: opts.Bus, log: opts.Log, now: now,
		remover: &retention.Remover{Store: opts.Stores.Purge, Blobs: opts.Blobs.ByID(), Log: opts.Log},
		seen:    orNoObserver(opts.Observer), archives: opts.Archives, moves: opts.Transfers,
		rescans: opts.Rescans,
	}, nil
}

func orNoObserver(o Observer) Observer {
	if o == nil {
		return noObserver{}
	}
	return o
}

// conf is the config in force.
func (s *Service) conf() *config.Config { return s.live.Get() }

// homeserverAdmin reports whether c is an admin of its Host homeserver, as
// the homeserver says.
func (s *Service) homeserverAdmin(ctx context.Context, c Caller) (bool, error) {
	if c.Host == nil || c.Token == "" {
		return false, nil
	}
	ok, err := s.hs.IsAdmin(ctx, c.Host, c.Token)
	if err != nil {
		return false, &Error{Kind: Upstream, Msg: "The homeserver could not be asked whether you are an admin", Err: err}
	}
	return ok, nil
}

// ServerAdmin returns nil if c is a repository admin or an admin of its
// Host homeserver, else the refusal.
func (s *Service) ServerAdmin(ctx context.Context, c Caller) error { return s.serverAdmin(ctx, c) }

// serverAdmin is Synapse's "server admin" for a repository: a repository
// admin, or an admin of the Host homeserver (who acts on its media only).
func (s *Service) serverAdmin(ctx context.Context, c Caller) error {
	if c.Global {
		return nil
	}
	ok, err := s.homeserverAdmin(ctx, c)
	if err != nil {
		return err
	}
	if !ok {
		return forbidden("You are not a server admin")
	}
	return nil
}

// RequireGlobal refuses callers who are not repository admins.
func RequireGlobal(c Caller) error {
	if !c.Global {
		return forbidden("Only repository admins may do this")
	}
	return nil
}

// isLocal reports whether origin is a homeserver this repository serves.
func (s *Service) isLocal(origin string) bool {
	_, ok := s.conf().Homeserver(origin)
	return ok
}

// localOrigins are the server names of the configured homeservers.
func (s *Service) localOrigins() []string {
	out := make([]string, len(s.conf().Homeservers))
	for i, hs := range s.conf().Homeservers {
		out[i] = hs.Name
	}
	return out
}

// sameServer compares server names as Host selection does.
func sameServer(a, b string) bool {
	return config.NormalizeHost(a) == config.NormalizeHost(b)
}

// hostName is c's Host server name, "" without one.
func (c Caller) hostName() string {
	if c.Host == nil {
		return ""
	}
	return c.Host.Name
}

// roomMedia lists a room's media through the Host homeserver, as the caller.
func (s *Service) roomMedia(ctx context.Context, c Caller, roomID string) ([]storage.MediaKey, []storage.MediaKey, error) {
	if !strings.HasPrefix(roomID, "!") || !strings.Contains(roomID, ":") {
		return nil, nil, invalid(fmt.Sprintf("%q is not a room ID", roomID))
	}
	if c.Token == "" || c.Host == nil {
		return nil, nil, invalid("Listing a room's media needs the access token of a homeserver admin, not the shared secret")
	}
	local, remote, err := s.hs.RoomMedia(ctx, c.Host, c.Token, roomID)
	switch {
	case errors.Is(err, homeserver.ErrNoRoomMediaAPI):
		return nil, nil, &Error{Kind: Unsupported, Msg: "This homeserver has no API listing a room's media (homeservers[].adminApiKind must be synapse); act on the media one by one", Err: err}
	case errors.Is(err, homeserver.ErrNotAdmin):
		return nil, nil, &Error{Kind: Forbidden, Msg: "The homeserver did not let you list this room's media", Err: err}
	case errors.Is(err, homeserver.ErrUnknownRoom):
		return nil, nil, &Error{Kind: NotFound, Msg: "Room not found", Err: err}
	case err != nil:
		return nil, nil, &Error{Kind: Upstream, Msg: "The homeserver could not list the room's media", Err: err}
	}
	return parseMXCs(local), parseMXCs(remote), nil
}

// parseMXCs keeps the valid mxc URIs of uris, as keys, once each.
func parseMXCs(uris []string) []storage.MediaKey {
	var out []storage.MediaKey
	for _, u := range uris {
		server, id, ok := mxid.ParseMXC(u)
		k := storage.MediaKey{Origin: server, MediaID: id}
		if ok && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// lookup returns the rows of keys that exist.
func (s *Service) lookup(ctx context.Context, keys []storage.MediaKey) ([]storage.Media, error) {
	var out []storage.Media
	for _, k := range keys {
		m, err := s.db.Media.Media(ctx, k.Origin, k.MediaID)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *m)
	}
	return out, nil
}

// changed tells every process's caches that media rows changed; a failure
// to reach the others is logged (this process's caches are current).
func (s *Service) changed(ctx context.Context) {
	if err := s.bus.Publish(ctx, bus.Media, ""); err != nil {
		s.log.WithError(err).Warn("other processes not told of a media change; their caches catch up within a minute")
	}
}
