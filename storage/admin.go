package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The stores of operating a repository: moderation, listing what is stored,
// purges, background tasks, single-instance jobs and the batched record of
// accesses. Like the others they are small, one concern each, and one engine
// implements them all.

// MediaKey names one media.
type MediaKey struct {
	Origin, MediaID string
}

// BlobRef names one blob of one datastore.
type BlobRef struct {
	DatastoreID, SHA256 string
}

// MediaFilter selects media rows. Zero fields do not filter.
type MediaFilter struct {
	Origins    []string // origin is one of these
	NotOrigins []string // origin is none of these (remote media: not a configured homeserver)
	UserID     string
	SHA256     string
	// CreatedBefore keeps media created before it.
	CreatedBefore time.Time
	// IdleSince keeps media last accessed (or, never accessed, created)
	// before it.
	IdleSince      time.Time
	LargerThan     int64 // bytes
	Quarantined    bool  // quarantined media only
	NotQuarantined bool
	NotProtected   bool
	// Order is a MediaOrder; "" is by creation. Ties go by media ID.
	Order  MediaOrder
	Desc   bool
	Offset int
	Limit  int // 0: all
}

// MediaOrder is a column media may be listed by.
type MediaOrder string

// Media orders, Synapse's names.
const (
	ByCreated     MediaOrder = "created_ts"
	ByMediaID     MediaOrder = "media_id"
	ByUploadName  MediaOrder = "upload_name"
	ByLastAccess  MediaOrder = "last_access_ts"
	BySize        MediaOrder = "media_length"
	ByContentType MediaOrder = "media_type"
	ByQuarantined MediaOrder = "quarantined_by"
	ByProtected   MediaOrder = "safe_from_quarantine"
)

// StatsFilter selects and orders per-user statistics of one origin's media.
type StatsFilter struct {
	Origin string
	// From and Until bound creation, both inclusive; a zero Until is none.
	From, Until time.Time
	// Search keeps users whose localpart contains it.
	Search string
	Order  StatsOrder
	Desc   bool
	Offset int
	Limit  int // 0: all
}

// StatsOrder is what user statistics may be ordered by.
type StatsOrder string

// Statistics orders, Synapse's names.
const (
	ByUserID     StatsOrder = "user_id"
	ByMediaCount StatsOrder = "media_count"
	ByMediaBytes StatsOrder = "media_length"
)

// UserStats is what one user's media add up to.
type UserStats struct {
	UserID string
	Count  int64
	Bytes  int64
}

// ServerUsage is what one origin's media and thumbnails add up to.
type ServerUsage struct {
	MediaBytes, MediaCount         int64
	ThumbnailBytes, ThumbnailCount int64
}

// Estimate is what media and thumbnails of one datastore idle since a time
// add up to: rows, distinct blobs, and the bytes of those blobs.
type Estimate struct {
	Media, MediaBlobs, MediaBytes              int64
	Thumbnails, ThumbnailBlobs, ThumbnailBytes int64
	Blobs, Bytes                               int64 // both together, each blob once
}

// CatalogStore lists what is stored.
type CatalogStore interface {
	// FindMedia returns the media f selects, in f's order and page, and how
	// many f selects in all.
	FindMedia(ctx context.Context, f MediaFilter) ([]Media, int64, error)
	// UserStats returns per-user statistics f selects, in f's order and page,
	// and how many users f selects in all.
	UserStats(ctx context.Context, f StatsFilter) ([]UserStats, int64, error)
	// ServerUsage adds up origin's media and thumbnails.
	ServerUsage(ctx context.Context, origin string) (ServerUsage, error)
	// Estimate adds up what of datastoreID was last accessed before idleSince
	// (media never accessed is not counted, as matrix-media-repo does).
	Estimate(ctx context.Context, datastoreID string, idleSince time.Time) (Estimate, error)
}

// TotalsStore adds up media.
type TotalsStore interface {
	// MediaTotals counts the media f selects (its order and page aside) and
	// adds up their sizes.
	MediaTotals(ctx context.Context, f MediaFilter) (count, bytes int64, err error)
}

// ModerationStore quarantines bytes and protects media.
type ModerationStore interface {
	// Quarantine marks the bytes sums quarantined by by, for media of origin
	// scope only, or of every origin if scope is "". It skips bytes that
	// protected media in the scope has, and returns how many media rows
	// became quarantined.
	Quarantine(ctx context.Context, sums []string, scope, by string) (int64, error)
	// Unquarantine lifts the quarantines of sums with scope, or all of them
	// if everywhere, and returns how many media rows are no longer
	// quarantined.
	Unquarantine(ctx context.Context, sums []string, scope string, everywhere bool) (int64, error)
	// SetProtected protects or unprotects one media; unknown media is an
	// error wrapping ErrNotFound.
	SetProtected(ctx context.Context, origin, mediaID string, protected bool) error
}

// PurgeStore removes rows; the blobs they leave unreferenced go through
// DeleteBlob.
type PurgeStore interface {
	// DeleteMedia removes the media keys and their thumbnails' rows, takes
	// their bytes off their uploaders' usage, and tombstones the IDs of the
	// origins in local so they are never used again. It returns the rows it
	// removed and the blobs they referenced.
	DeleteMedia(ctx context.Context, keys []MediaKey, local []string) ([]Media, []BlobRef, error)
	// DeleteThumbnails removes the thumbnail rows created before before (of
	// one media only, if key is not nil) and returns their blobs.
	DeleteThumbnails(ctx context.Context, key *MediaKey, before time.Time) ([]BlobRef, error)
	// DeleteBlob runs del if no row references the blob, holding the lock that
	// an upload of the same bytes takes to publish them, so neither loses the
	// other's work. It reports whether del ran.
	DeleteBlob(ctx context.Context, b BlobRef, del func(context.Context) error) (bool, error)
}

// Task is a long job of the admin API, matrix-media-repo's shape.
type Task struct {
	ID     int64
	Name   string
	Params string // JSON object
	Start  time.Time
	End    time.Time // zero while it runs
	Error  string
	// Progress is what the task last reported of its work (a JSON object),
	// or "".
	Progress string
}

// TaskStore keeps the admin API's tasks.
type TaskStore interface {
	// CreateTask records a running task and sets t.ID.
	CreateTask(ctx context.Context, t *Task) error
	// FinishTask records the end of task id, with errMsg if it failed.
	FinishTask(ctx context.Context, id int64, end time.Time, errMsg string) error
	// SetTaskProgress records what task id has done so far (a JSON object).
	SetTaskProgress(ctx context.Context, id int64, progress string) error
	// Tasks lists tasks, oldest first; unfinished ones only if asked.
	Tasks(ctx context.Context, unfinished bool) ([]Task, error)
	// Task returns one task, or an error wrapping ErrNotFound.
	Task(ctx context.Context, id int64) (*Task, error)
}

// Export is one export in matrix-media-repo's archive format: of a user's
// media or a server's.
type Export struct {
	ID      string // the secret that reads it
	Entity  string // user ID or server name
	TaskID  int64
	Created time.Time
	Parts   []ExportPart // by index; the last one holds the manifest
}

// ExportPart is one stored part (a .tgz) of an export.
type ExportPart struct {
	Index       int // from 1
	Name        string
	Size        int64
	SHA256      string
	DatastoreID string
}

// ExportStore keeps exports and where their parts are.
type ExportStore interface {
	// CreateExport records e (without parts).
	CreateExport(ctx context.Context, e *Export) error
	// AddExportPart records a part of export id; publish, if not nil, runs
	// first, holding the lock that a blob delete takes, so a part's blob
	// is never deleted under it.
	AddExportPart(ctx context.Context, id string, p ExportPart, publish func(context.Context) error) error
	// Export returns an export with its parts, or an error wrapping
	// ErrNotFound.
	Export(ctx context.Context, id string) (*Export, error)
	// DeleteExport removes an export and its parts' rows and returns the
	// blobs they referenced; an unknown export is no error.
	DeleteExport(ctx context.Context, id string) ([]BlobRef, error)
}

// TransferBlob is one blob a transfer between datastores moves.
type TransferBlob struct {
	SHA256 string
	Size   int64
}

// TransferStore is what moving blobs between datastores needs besides
// DeleteBlob. A transfer selects the rows of one datastore idle since
// before (last accessed, or created if never, before it; thumbnails by
// their media; export parts by their export's creation).
type TransferStore interface {
	// TransferBlobs returns up to limit distinct blobs of datastore from
	// with a selected row, SHA-256 above after, in SHA-256 order.
	TransferBlobs(ctx context.Context, from string, before time.Time, after string, limit int) ([]TransferBlob, error)
	// MoveBlob points the selected rows of blob sha256 at datastore to,
	// holding the lock an upload or delete of the same bytes takes, and
	// returns how many rows moved.
	MoveBlob(ctx context.Context, sha256, from, to string, before time.Time) (int64, error)
}

// LeaseStore lets one process at a time run a periodic job.
type LeaseStore interface {
	// AcquireLease takes or renews lease name for holder until now+ttl and
	// reports whether holder has it: false while another holder's lease runs.
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
	// ReleaseLease gives up holder's lease name, if it has it.
	ReleaseLease(ctx context.Context, name, holder string) error
	// LeaseHolderOf returns who holds lease name at now, or "".
	LeaseHolderOf(ctx context.Context, name string, now time.Time) (string, error)
}

// LeaseHolder names this process in leases: host, pid and a random part.
func LeaseHolder() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// HolderGone reports whether holder (a LeaseHolder, not me) was a process
// of this host that is no longer running. A lease of such a holder may be
// taken over at once instead of waiting for it to run out. (A container
// restarted with the same hostname and pid cannot tell; it waits.)
func HolderGone(holder, me string) bool {
	host, _ := os.Hostname()
	rest, ok := strings.CutPrefix(holder, host+"-")
	if !ok || holder == me {
		return false
	}
	pidText, _, ok := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(pidText)
	if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// AccessStore records when media was last downloaded or thumbnailed.
type AccessStore interface {
	// RecordAccess sets the last access of each media that has a later one
	// here, in one transaction.
	RecordAccess(ctx context.Context, at map[MediaKey]time.Time) error
}

// Broadcaster tells every process sharing the database about a change that
// their caches must see (a quarantine, a purge, a logout). PostgreSQL has it
// (NOTIFY); a single process on SQLite needs none.
type Broadcaster interface {
	// Broadcast sends payload on topic to every process, this one included.
	Broadcast(ctx context.Context, topic, payload string) error
	// WatchBroadcasts calls fn with every broadcast until ctx is done,
	// reconnecting as needed. It returns ctx.Err().
	WatchBroadcasts(ctx context.Context, fn func(topic, payload string)) error
}
