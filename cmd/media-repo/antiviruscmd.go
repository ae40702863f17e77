package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/antivirus"
	"github.com/mediarepo/mediarepo/bus"
	"github.com/mediarepo/mediarepo/storage"
)

const antivirusUsage = `usage:
  media-repo antivirus rescan -config FILE [--before-ts MS]

Scans the media stored before --before-ts (milliseconds since 1970; default
now), each blob once, with the clamd of the config's antivirus section, and
quarantines (everywhere) the bytes it finds infected, by "antivirus: SIGNATURE".
Media quarantined already is skipped. The server may run. It stops when clamd
cannot scan; running it again scans everything again.
`

// runAntivirus is "media-repo antivirus ...".
func runAntivirus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "rescan" {
		fmt.Fprint(stderr, antivirusUsage)
		return 2
	}
	fs := flag.NewFlagSet("media-repo antivirus rescan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, antivirusUsage) }
	cfgPath := fs.String("config", "media-repo.yaml", "mediarepo's config")
	beforeTS := fs.String("before-ts", "", "only media stored before this time (ms since 1970; default now)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	before, ok := parseBeforeTS("media-repo antivirus rescan", *beforeTS, stderr)
	if !ok {
		return 2
	}
	m, code := openTarget(ctx, *cfgPath, stderr)
	if m == nil {
		return code
	}
	defer m.closeAll()
	av := m.Config.Antivirus
	if !av.Enabled {
		fmt.Fprintln(stderr, "media-repo antivirus rescan: antivirus.enabled is false in", *cfgPath)
		return 2
	}
	scanner, err := antivirus.New(antivirus.Options{Address: av.ClamdAddress, Timeout: time.Duration(av.TimeoutSeconds) * time.Second})
	if err != nil {
		fmt.Fprintln(stderr, "media-repo antivirus rescan:", err)
		return 1
	}
	r := rescan{m: m, scanner: scanner, log: m.Log.WithField("job", "antivirus rescan"), seen: map[string]bool{}}
	err = r.run(ctx, before)
	if r.quarantined > 0 && m.cast != nil {
		// Running servers on this database drop what they remember of the media.
		m.cast.Broadcast(context.WithoutCancel(ctx), bus.Media, "")
	}
	fmt.Fprintf(stdout, "scanned %d blobs of %d media; %d infected, quarantined (%d media)\n", r.scanned, r.media, r.infected, r.quarantined)
	if err != nil {
		fmt.Fprintln(stderr, "media-repo antivirus rescan:", err)
		return 1
	}
	return 0
}

// rescan scans stored media, each blob once.
type rescan struct {
	m       *Main
	scanner *antivirus.Scanner
	log     *logrus.Entry
	seen    map[string]bool

	media, scanned, infected, quarantined int64
}

func (r *rescan) run(ctx context.Context, before time.Time) error {
	const page = 200
	last := time.Now()
	for offset := 0; ; offset += page {
		batch, _, err := r.m.db.FindMedia(ctx, storage.MediaFilter{CreatedBefore: before, Order: storage.ByCreated, Offset: offset, Limit: page})
		if err != nil {
			return err
		}
		for _, md := range batch {
			r.media++
			if md.QuarantinedBy != "" || r.seen[md.SHA256] {
				continue
			}
			r.seen[md.SHA256] = true
			if err := r.scan(ctx, md); err != nil {
				return fmt.Errorf("media %s/%s: %w", md.Origin, md.MediaID, err)
			}
			if time.Since(last) >= 10*time.Second {
				last = time.Now()
				r.log.WithFields(logrus.Fields{"media": r.media, "blobs": r.scanned, "infected": r.infected}).Info("rescanning")
			}
		}
		if len(batch) < page {
			return nil
		}
	}
}

func (r *rescan) scan(ctx context.Context, md storage.Media) error {
	blob, err := r.m.blobs.Open(ctx, md.DatastoreID, md.SHA256)
	if errors.Is(err, storage.ErrNotFound) {
		r.log.WithFields(logrus.Fields{"origin": md.Origin, "media_id": md.MediaID}).Warn("blob missing; not scanned")
		return nil
	}
	if err != nil {
		return err
	}
	defer blob.Close()
	tee, verdict := r.scanner.Wrap(ctx, blob)
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return err
	}
	r.scanned++
	err = verdict()
	var infected *antivirus.Infected
	if !errors.As(err, &infected) {
		return err
	}
	r.infected++
	n, qerr := r.m.db.Quarantine(ctx, []string{md.SHA256}, "", "antivirus: "+infected.Signature)
	if qerr != nil {
		return qerr
	}
	r.quarantined += n
	r.log.WithFields(logrus.Fields{"origin": md.Origin, "media_id": md.MediaID, "sha256": md.SHA256, "media_quarantined": n}).
		WithError(err).Warn("stored media infected: quarantined")
	return nil
}
