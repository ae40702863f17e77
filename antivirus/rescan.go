package antivirus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/tasks"
)

// RescanTask is the task name of a rescan run by the admin API.
const RescanTask = "antivirus_rescan"

// RescanStore is what a rescan reads and changes.
type RescanStore interface {
	FindMedia(ctx context.Context, f storage.MediaFilter) ([]storage.Media, int64, error)
	Quarantine(ctx context.Context, sums []string, scope, by string) (int64, error)
}

// Rescanner scans stored media with clamd, each blob once, and quarantines
// (everywhere) the bytes found infected, by "antivirus: SIGNATURE".
type Rescanner struct {
	Store   RescanStore
	Blobs   *storage.Datastores
	Scanner *Scanner
	Log     *logrus.Entry
	// Changed is told after media was quarantined, for caches; nil: nobody.
	Changed func()
	// Tasks runs Start's tasks; nil refuses them.
	Tasks *tasks.Runner
}

// RescanProgress is how far a rescan got: the task row's progress.
type RescanProgress struct {
	BeforeTS    int64 `json:"before_ts"`
	Media       int64 `json:"media"`
	Scanned     int64 `json:"blobs_scanned"`
	Infected    int64 `json:"blobs_infected"`
	Quarantined int64 `json:"media_quarantined"`
}

// Start runs a rescan of the media stored before before as a task, one at a
// time across the processes sharing the database, and returns its ID.
func (r *Rescanner) Start(ctx context.Context, before time.Time) (int64, error) {
	if r.Tasks == nil {
		return 0, errors.New("antivirus: rescans are not available")
	}
	params := map[string]int64{"before_ts": before.UnixMilli()}
	return r.Tasks.Start(ctx, RescanTask, params, func(ctx context.Context, id int64) error {
		var p RescanProgress
		err := r.Tasks.Exclusive(ctx, RescanTask, func(ctx context.Context) error {
			var err error
			p, err = r.Run(ctx, before, func(p RescanProgress) { r.Tasks.Report(ctx, id, p, false) })
			return err
		})
		r.Tasks.Report(context.WithoutCancel(ctx), id, p, true)
		return err
	})
}

// Run rescans in this goroutine, the media stored before before, oldest
// first; media quarantined already is skipped. progress, if set, is called
// after each blob; the log hears every ten seconds. It stops at the first
// blob clamd cannot scan: running it again scans everything again.
func (r *Rescanner) Run(ctx context.Context, before time.Time, progress func(RescanProgress)) (RescanProgress, error) {
	p := RescanProgress{BeforeTS: before.UnixMilli()}
	seen := map[string]bool{}
	defer func() {
		if p.Quarantined > 0 && r.Changed != nil {
			r.Changed()
		}
	}()
	const page = 200
	last := time.Now()
	for offset := 0; ; offset += page {
		batch, _, err := r.Store.FindMedia(ctx, storage.MediaFilter{CreatedBefore: before, Order: storage.ByCreated, Offset: offset, Limit: page})
		if err != nil {
			return p, err
		}
		for _, md := range batch {
			p.Media++
			if md.QuarantinedBy != "" || seen[md.SHA256] {
				continue
			}
			seen[md.SHA256] = true
			if err := r.scan(ctx, md, &p); err != nil {
				return p, fmt.Errorf("media %s/%s: %w", md.Origin, md.MediaID, err)
			}
			if progress != nil {
				progress(p)
			}
			if time.Since(last) >= 10*time.Second {
				last = time.Now()
				r.Log.WithFields(logrus.Fields{"media": p.Media, "blobs": p.Scanned, "infected": p.Infected}).Info("rescanning")
			}
		}
		if len(batch) < page {
			return p, nil
		}
	}
}

func (r *Rescanner) scan(ctx context.Context, md storage.Media, p *RescanProgress) error {
	blob, err := r.Blobs.Open(ctx, md.DatastoreID, md.SHA256)
	if errors.Is(err, storage.ErrNotFound) {
		r.Log.WithFields(logrus.Fields{"origin": md.Origin, "media_id": md.MediaID}).Warn("blob missing; not scanned")
		return nil
	}
	if err != nil {
		return err
	}
	defer blob.Close()
	tee, verdict := r.Scanner.Wrap(ctx, blob)
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return err
	}
	p.Scanned++
	err = verdict()
	var infected *Infected
	if !errors.As(err, &infected) {
		return err
	}
	p.Infected++
	n, qerr := r.Store.Quarantine(ctx, []string{md.SHA256}, "", "antivirus: "+infected.Signature)
	if qerr != nil {
		return qerr
	}
	p.Quarantined += n
	r.Log.WithFields(logrus.Fields{"origin": md.Origin, "media_id": md.MediaID, "sha256": md.SHA256, "media_quarantined": n}).
		WithError(err).Warn("stored media infected: quarantined")
	return nil
}
