package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/sirupsen/logrus"
	"golang.org/x/term"

	"github.com/mediarepo/mediarepo/archive"
	"github.com/mediarepo/mediarepo/bus"
	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/importer"
)

const importUsage = `usage:
  media-repo import synapse  -config FILE -db DSN -media-store DIR -server-name NAME [options]
  media-repo import dendrite -config FILE -db DSN -base-path DIR [options]
  media-repo import mmr      -config FILE -db DSN [-datastore ID=DIR ...] [options]
  media-repo import archive  -config FILE PART.tgz...

DSN is a PostgreSQL URL or key=value string, or sqlite:PATH (Synapse and Dendrite).
An archive is an export of mediarepo or matrix-media-repo: give every part, in
any order; media already here is kept as it is.
The source is only read. Running again imports nothing twice; a run killed
half-way is finished by the next.

options:
  -dry-run      count what would be imported, write nothing
  -workers N    media imported at once (default 4)
  -report FILE  write the media that could not be imported there (default: standard output)
`

// datastoreFlags collects -datastore ID=DIR.
type datastoreFlags map[string]string

func (d datastoreFlags) String() string { return fmt.Sprint(map[string]string(d)) }
func (d datastoreFlags) Set(v string) error {
	id, dir, ok := strings.Cut(v, "=")
	if !ok || id == "" || dir == "" {
		return fmt.Errorf("want ID=DIR, got %q", v)
	}
	d[id] = dir
	return nil
}

// runImport is "media-repo import KIND ...".
func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, importUsage)
		return 2
	}
	kind := args[0]
	fs := flag.NewFlagSet("media-repo import "+kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "media-repo.yaml", "mediarepo's config")
	dsn := fs.String("db", "", "the source's database")
	mediaStore := fs.String("media-store", "", "Synapse's media_store_path")
	serverName := fs.String("server-name", "", "Synapse's server_name")
	basePath := fs.String("base-path", "", "Dendrite's media_api base_path")
	datastores := datastoreFlags{}
	fs.Var(datastores, "datastore", "matrix-media-repo datastore ID=DIR (repeatable)")
	dryRun := fs.Bool("dry-run", false, "count, write nothing")
	workers := fs.Int("workers", 4, "media imported at once")
	reportPath := fs.String("report", "", "file for the media that could not be imported")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	switch {
	case kind == "archive" && fs.NArg() == 0:
		fmt.Fprint(stderr, "media-repo import archive: name the export's parts (.tgz files)\n"+importUsage)
		return 2
	case kind != "archive" && *dsn == "":
		fmt.Fprint(stderr, "media-repo import: -db is required\n"+importUsage)
		return 2
	}
	m, code := openTarget(ctx, *cfgPath, stderr)
	if m == nil {
		return code
	}
	defer m.closeAll()
	log := m.Log
	opts := importer.Options{
		Stores: importer.Stores{Media: m.db, Thumbnails: m.db, Moderation: m.db, Access: m.db, Blobs: m.blobs},
		Local:  homeserverNames(m.Config), Workers: *workers, DryRun: *dryRun, Log: logrus.NewEntry(log),
	}
	var report *importer.Report
	var err error
	if kind == "archive" {
		log.WithField("parts", fs.NArg()).Info("import of an export starting")
		report, err = archive.ImportFiles(ctx, opts, fs.Args())
	} else {
		src, openErr := openImportSource(ctx, kind, *dsn, *mediaStore, *serverName, *basePath, datastores)
		if openErr != nil {
			fmt.Fprintln(stderr, "media-repo import:", openErr)
			return 1
		}
		defer src.Close()
		items, bytes, countErr := src.Count(ctx)
		if countErr != nil {
			fmt.Fprintln(stderr, "media-repo import: count the source's media:", countErr)
			return 1
		}
		log.WithFields(logrus.Fields{"source": src.Name(), "media": items, "bytes": bytes, "dry_run": *dryRun}).Info("import starting")
		progress := newProgress(stderr, items, bytes, log)
		opts.Progress = progress.add
		report, err = importer.Run(ctx, src, opts)
		progress.finish()
	}
	if m.cast != nil && report.Imported > 0 && !*dryRun {
		// Running servers on this database may remember imported IDs as
		// missing; on SQLite that memory lasts seconds and needs no notice.
		if err := m.cast.Broadcast(ctx, bus.Media, ""); err != nil {
			log.WithError(err).Warn("running servers not told of the import: imported media may answer 404 for a few seconds")
		}
	}
	printReport(stdout, report, *dryRun)
	if len(report.Problems) > 0 {
		if err := writeProblems(stdout, *reportPath, report.Problems); err != nil {
			fmt.Fprintln(stderr, "media-repo import:", err)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "media-repo import:", err)
		return 1
	}
	return 0
}

// openTarget loads mediarepo's config and opens its stores for a command
// that writes to them while the server may run; nil with the exit code
// when it cannot.
func openTarget(ctx context.Context, cfgPath string, stderr io.Writer) (*Main, int) {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "media-repo: configuration is not valid:\n%s\n", indent(err.Error()))
		return nil, 1
	}
	m := NewMain(cfg, newLogger(cfg.Repo, stderr))
	if err := m.openMeta(ctx); err != nil {
		fmt.Fprintln(stderr, "media-repo:", err)
		m.closeAll()
		return nil, 1
	}
	if err := m.openBlobs(ctx); err != nil {
		fmt.Fprintln(stderr, "media-repo:", err)
		m.closeAll()
		return nil, 1
	}
	return m, 0
}

func openImportSource(ctx context.Context, kind, dsn, mediaStore, serverName, basePath string, datastores map[string]string) (importer.Source, error) {
	switch kind {
	case "synapse":
		if mediaStore == "" || serverName == "" {
			return nil, fmt.Errorf("synapse needs -media-store and -server-name")
		}
		return importer.OpenSynapse(ctx, dsn, mediaStore, serverName)
	case "dendrite":
		if basePath == "" {
			return nil, fmt.Errorf("dendrite needs -base-path")
		}
		return importer.OpenDendrite(ctx, dsn, basePath)
	case "mmr":
		return importer.OpenMMR(ctx, dsn, datastores)
	}
	return nil, fmt.Errorf("%q is not synapse, dendrite or mmr", kind)
}

func homeserverNames(cfg *config.Config) []string {
	out := make([]string, len(cfg.Homeservers))
	for i, hs := range cfg.Homeservers {
		out[i] = hs.Name
	}
	return out
}

func printReport(w io.Writer, r *importer.Report, dry bool) {
	verb := "imported"
	if dry {
		verb = "would import"
	}
	fmt.Fprintf(w, "%s: %d media seen; %s %d (%d bytes), %d already here, %d skipped, %d thumbnails imported, %d problems\n",
		r.Source, r.Items, verb, r.Imported, r.Bytes, r.Present, r.Skipped, r.Thumbnails, len(r.Problems))
}

func writeProblems(stdout io.Writer, path string, problems []string) error {
	text := strings.Join(problems, "\n") + "\n"
	if path == "" {
		_, err := io.WriteString(stdout, "not imported:\n"+text)
		return err
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "the %d media not imported are listed in %s\n", len(problems), path)
	return nil
}

// progress shows an import's progress: a bar with rate and ETA on a
// terminal, a log line every ten seconds otherwise.
type progress struct {
	bar   *progressbar.ProgressBar
	items atomic.Int64
	bytes atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

func newProgress(out io.Writer, items, bytes int64, log *logrus.Logger) *progress {
	p := &progress{stop: make(chan struct{})}
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions64(items, progressbar.OptionSetWriter(out), progressbar.OptionSetDescription("importing"),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("media"),
			progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(200*time.Millisecond))
		return p
	}
	start := time.Now()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				done := p.items.Load()
				rate := float64(done) / time.Since(start).Seconds()
				eta := "unknown"
				if rate > 0 {
					eta = (time.Duration(float64(items-done)/rate) * time.Second).Round(time.Second).String()
				}
				log.WithFields(logrus.Fields{"done": done, "of": items, "bytes": p.bytes.Load(), "per_second": fmt.Sprintf("%.1f", rate), "eta": eta}).Info("importing")
			}
		}
	}()
	return p
}

func (p *progress) add(items, bytes int64) {
	p.items.Add(items)
	p.bytes.Add(bytes)
	if p.bar != nil {
		p.bar.Add64(items)
	}
}

func (p *progress) finish() {
	close(p.stop)
	p.wg.Wait()
	if p.bar != nil {
		p.bar.Finish()
	}
}
