// Package media is the media lifecycle: storing uploads under their quotas,
// finding media (rows cached in process, remote media fetched over federation
// once and its failures remembered), asynchronous uploads (reservations and
// downloads that wait for them; retention sweeps the expired ones), and the
// batched record of last accesses. It knows nothing
// of HTTP; the api package is its edge. It imports storage, federation and
// config, and owns the goroutines it starts until Close.
package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/federation"
	"github.com/mediarepo/mediarepo/flight"
	"github.com/mediarepo/mediarepo/storage"
)

// Errors of the service, for the edge to turn into Matrix errors. Lookups
// that find nothing wrap storage.ErrNotFound.
var (
	// ErrNotYetUploaded: a reserved media ID's upload did not come in time.
	ErrNotYetUploaded = errors.New("media not uploaded yet")
	// ErrCannotOverwrite: an upload to a media ID that has its bytes already.
	ErrCannotOverwrite = errors.New("media already uploaded")
	// ErrNotReserved: an upload to a media ID that was never reserved, or whose
	// reservation expired.
	ErrNotReserved = errors.New("media ID not reserved or expired")
	// ErrNotOwner: an upload to a media ID another user reserved.
	ErrNotOwner = errors.New("media ID reserved by another user")
	// ErrTooManyPending: the user holds uploads.maxPending reservations already.
	ErrTooManyPending = errors.New("too many media IDs reserved and not uploaded")
	// ErrTooLarge: an upload declared larger than uploads.maxBytes.
	ErrTooLarge = errors.New("upload larger than uploads.maxBytes")
	// ErrTooSmall: an upload under uploads.minBytes.
	ErrTooSmall = errors.New("upload smaller than uploads.minBytes")
	// ErrNoRemote: media of a server this repository does not fetch from
	// (federation off or federation.ignoredHosts).
	ErrNoRemote = errors.New("media of that server is not fetched")
	// ErrNotCached: remote media not stored here, on a lookup that may not fetch.
	ErrNotCached = errors.New("remote media not cached and not fetched")
	// ErrRemoteFailed wraps every failed remote fetch; federation.ErrNotFound
	// and ErrRemoteTooLarge say more where they apply.
	ErrRemoteFailed = errors.New("remote media fetch failed")
	// ErrRemoteTooLarge: remote media over downloads.maxBytes.
	ErrRemoteTooLarge = errors.New("remote media larger than downloads.maxBytes")
)

// Defaults where Config leaves a duration zero.
const (
	defaultRecheck = time.Second
	// mediaCacheEntries bounds the in-process cache of media rows. What can
	// change in a row (quarantine, protection) or remove it (purges) tells
	// every process's cache through Forget; rowTTL bounds how stale a row
	// can be when such a message is lost.
	mediaCacheEntries = 50_000
	rowTTL            = time.Minute
	// failureCacheEntries bounds the remembered remote failures.
	failureCacheEntries = 50_000
	// missingTTL is how long a local media ID that is neither stored nor
	// reserved answers 404 without a query. IDs are random, so one can only
	// appear later through an import.
	missingTTL = 10 * time.Second
)

// Config is what the service reads of media-repo.yaml.
type Config struct {
	Uploads   config.Uploads
	Downloads config.Downloads
	// IgnoredHosts are federation.ignoredHosts: servers whose media is never
	// fetched or served.
	IgnoredHosts []string
	// FetchTimeout bounds one remote fetch (timeouts.federationTimeoutSeconds).
	FetchTimeout time.Duration
	// Freeze marks new media as served on authenticated routes only
	// (repo.freezeUnauthenticatedMedia).
	Freeze bool
	// Recheck is how often a download waiting for an upload looks again when
	// no notification arrives; 0 means one second.
	Recheck time.Duration
}

// cachedRow is a media row as read, until it is read again.
type cachedRow struct {
	m     *storage.Media
	until time.Time
}

// Fetcher downloads media from other servers; *federation.Client is one.
type Fetcher interface {
	// Download fetches server's mediaID on behalf of the local homeserver
	// origin. The caller closes the body.
	Download(ctx context.Context, origin, server, mediaID string) (*federation.Remote, error)
}

// Options are the service's dependencies.
type Options struct {
	Config       Config
	Media        storage.MediaStore
	Reservations storage.ReservationStore
	Blobs        *storage.Datastores
	// Remote fetches remote media; nil serves local media only.
	Remote Fetcher
	// Watcher announces uploads completed by other processes; nil means
	// waiters there see them when they look again.
	Watcher storage.UploadWatcher
	// Stored is called with every new media row (uploads, remote media,
	// server-made media), e.g. to queue its thumbnails. Optional.
	Stored func(*storage.Media)
	// Access records last accesses in batches; nil records none.
	Access storage.AccessStore
	// Observer counts cache lookups and remote fetches; nil counts nothing.
	Observer Observer
	Log      *logrus.Entry
	// Locker makes one process at a time fetch a remote media, so several
	// instances ask the remote once; nil is this process only.
	Locker storage.Locker
	// Scanner, if not nil, scans uploads and fetched remote media as they
	// stream in; a file it refuses is not stored.
	Scanner Scanner
	// Blurhash, if not nil, computes an uploaded image's MSC2448 blurhash,
	// which Blurhashes records; an image it cannot hash has none.
	Blurhash   func(ctx context.Context, m *storage.Media) (string, error)
	Blurhashes storage.BlurhashStore
}

// Scanner scans a stream as it is read (antivirus.Scanner).
type Scanner interface {
	// Wrap returns r teed into the scan, and the verdict to ask for once r
	// has been read to its end.
	Wrap(ctx context.Context, r io.Reader) (io.Reader, func() error)
}

// Observer is told of row cache lookups and remote fetches (metrics).
type Observer interface {
	Cache(name string, hit bool)
	RemoteFetch(ok bool)
}

type noObserver struct{}

func (noObserver) Cache(string, bool) {}
func (noObserver) RemoteFetch(bool)   {}

// Service is the media lifecycle. Its methods are safe for concurrent use.
type Service struct {
	cfg      Config
	media    storage.MediaStore
	res      storage.ReservationStore
	blobs    *storage.Datastores
	remote   Fetcher
	stored   func(*storage.Media)
	log      *logrus.Entry
	rows     *lru.Cache[string, cachedRow]
	failures *lru.Cache[string, remoteFailure]
	missing  *lru.Cache[string, time.Time] // local IDs known absent, until
	fetches  *flight.Group[*storage.Media]
	waiters  waiters
	access   storage.AccessStore // nil: accesses not recorded
	accessed accesses
	observe  Observer
	locks    storage.Locker
	scanner  Scanner // nil: no scanning
	blurhash func(ctx context.Context, m *storage.Media) (string, error)
	hashes   storage.BlurhashStore

	stop       context.CancelFunc
	background sync.WaitGroup
}

// New checks opts and starts the background work (the watcher of other
// processes' uploads, the writer of last accesses); Close stops it.
func New(opts Options) (*Service, error) {
	if opts.Media == nil || opts.Reservations == nil || opts.Blobs == nil || opts.Log == nil {
		return nil, errors.New("media.New: Media, Reservations, Blobs and Log are required")
	}
	s := &Service{
		cfg: opts.Config, media: opts.Media, res: opts.Reservations, blobs: opts.Blobs,
		remote: opts.Remote, stored: opts.Stored, log: opts.Log, access: opts.Access, observe: opts.Observer, locks: opts.Locker,
		scanner: opts.Scanner, blurhash: opts.Blurhash, hashes: opts.Blurhashes,
		accessed: accesses{at: map[storage.MediaKey]time.Time{}, full: make(chan struct{}, 1)},
	}
	if s.stored == nil {
		s.stored = func(*storage.Media) {}
	}
	if s.observe == nil {
		s.observe = noObserver{}
	}
	if s.locks == nil {
		s.locks = storage.NoLocker{}
	}
	if s.blurhash != nil && s.hashes == nil {
		return nil, errors.New("media.New: Blurhash needs Blurhashes")
	}
	if s.cfg.Recheck <= 0 {
		s.cfg.Recheck = defaultRecheck
	}
	s.fetches = flight.New[*storage.Media](s.cfg.FetchTimeout)
	s.rows, _ = lru.New[string, cachedRow](mediaCacheEntries)
	s.failures, _ = lru.New[string, remoteFailure](failureCacheEntries)
	s.missing, _ = lru.New[string, time.Time](mediaCacheEntries)

	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	if opts.Watcher != nil {
		s.run(ctx, func(ctx context.Context) { s.watchUploads(ctx, opts.Watcher) })
	}
	if s.access != nil {
		s.run(ctx, s.recordAccesses)
	}
	return s, nil
}

// run starts job in a goroutine that Close waits for.
func (s *Service) run(ctx context.Context, job func(context.Context)) {
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		job(ctx)
	}()
}

// Close cancels remote fetches under way and stops the background work,
// and waits for both.
func (s *Service) Close() error {
	s.stop()
	s.fetches.Close()
	s.background.Wait()
	return nil
}

// RedirectURL is where a client can fetch m's bytes itself, answered
// with h, or "" if its datastore does not redirect.
func (s *Service) RedirectURL(ctx context.Context, m *storage.Media, h storage.RedirectHeaders) (string, error) {
	return s.blobs.RedirectURL(ctx, m.DatastoreID, m.SHA256, h)
}

// stage stages r's bytes in datastore id, scanned on the way in where a
// scanner is set: a file it refuses is aborted and its verdict returned.
func (s *Service) stage(ctx context.Context, id string, r io.Reader) (storage.StagedBlob, error) {
	verdict := func() error { return nil }
	if s.scanner != nil {
		r, verdict = s.scanner.Wrap(ctx, r)
	}
	blob, err := s.blobs.Stage(ctx, id, r)
	if err != nil {
		return nil, err
	}
	if err := verdict(); err != nil {
		blob.Abort()
		s.log.WithError(err).WithField("sha256", blob.SHA256()).Warn("file refused by the virus scanner")
		return nil, err
	}
	return blob, nil
}

// Open opens the bytes of m; the caller closes them. A missing blob is an
// error wrapping storage.ErrNotFound.
func (s *Service) Open(ctx context.Context, m *storage.Media) (io.ReadSeekCloser, error) {
	blob, err := s.blobs.Open(ctx, m.DatastoreID, m.SHA256)
	if errors.Is(err, storage.ErrNotFound) {
		// The row may have moved to another datastore (a transfer) since it
		// was cached: look again, past the cache.
		if now, lerr := s.media.Media(ctx, m.Origin, m.MediaID); lerr == nil && now.DatastoreID != m.DatastoreID {
			s.Forget(m.Origin, m.MediaID)
			blob, err = s.blobs.Open(ctx, now.DatastoreID, now.SHA256)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("blob of %s/%s: %w", m.Origin, m.MediaID, err)
	}
	return blob, nil
}
