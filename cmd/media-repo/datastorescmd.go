package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/bus"
	"github.com/mediarepo/mediarepo/tasks"
	"github.com/mediarepo/mediarepo/transfer"
)

const datastoresUsage = `usage:
  media-repo datastores transfer -config FILE --from ID --to ID [--before-ts MS]

Moves the blobs of datastore --from (media last used before --before-ts,
milliseconds since 1970, default now; their thumbnails; export parts) to
datastore --to: each is copied, read back and its SHA-256 checked, its rows
switched, and only then deleted from the source. The server may run; one
transfer per source datastore runs at a time. A run that stops (killed, the
destination full) loses nothing: run it again to go on. Blobs missing or
damaged at the source are listed and left where they are.
`

// runDatastores is "media-repo datastores ...".
func runDatastores(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "transfer" {
		fmt.Fprint(stderr, datastoresUsage)
		return 2
	}
	fs := flag.NewFlagSet("media-repo datastores transfer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, datastoresUsage) }
	cfgPath := fs.String("config", "media-repo.yaml", "mediarepo's config")
	from := fs.String("from", "", "the datastore the blobs leave")
	to := fs.String("to", "", "the datastore they go to")
	beforeTS := fs.String("before-ts", "", "only media last used before this time (ms since 1970; default now)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	before, ok := parseBeforeTS("media-repo datastores transfer", *beforeTS, stderr)
	if !ok {
		return 2
	}
	if *from == "" || *to == "" {
		fmt.Fprint(stderr, "media-repo datastores transfer: --from and --to are required\n"+datastoresUsage)
		return 2
	}
	m, code := openTarget(ctx, *cfgPath, stderr)
	if m == nil {
		return code
	}
	defer m.closeAll()
	log := m.Log.WithFields(logrus.Fields{"from": *from, "to": *to})
	runner, err := tasks.New(tasks.Options{Tasks: m.db, Leases: m.db, Log: log})
	if err != nil {
		fmt.Fprintln(stderr, "media-repo datastores transfer:", err)
		return 1
	}
	defer runner.Close()
	svc, err := transfer.NewService(transfer.ServiceOptions{
		Store: m.db, Blobs: m.blobs.ByID(), Tasks: runner, Log: log,
		Changed: func() {
			// Running servers on this database drop what they remember of
			// thumbnails' datastores.
			if m.cast != nil {
				m.cast.Broadcast(context.WithoutCancel(ctx), bus.Media, "")
			}
		},
	})
	if err != nil {
		fmt.Fprintln(stderr, "media-repo datastores transfer:", err)
		return 1
	}
	p, err := svc.Run(ctx, *from, *to, before, log, nil)
	fmt.Fprintf(stdout, "transferred %d blobs (%d bytes, %d rows) from %s to %s; %d deleted from %s, %d skipped\n",
		p.Blobs, p.Bytes, p.Rows, *from, *to, p.Deleted, *from, p.Skipped)
	for _, problem := range p.Problems {
		fmt.Fprintln(stdout, "  skipped:", problem)
	}
	if err != nil {
		fmt.Fprintln(stderr, "media-repo datastores transfer:", err)
		if errors.Is(err, transfer.ErrUnknownDatastore) {
			return 2
		}
		return 1
	}
	return 0
}

// parseBeforeTS reads a --before-ts flag (milliseconds since 1970; empty is
// now), or says what is wrong with it on stderr.
func parseBeforeTS(cmd, value string, stderr io.Writer) (time.Time, bool) {
	if value == "" {
		return time.Now(), true
	}
	ms, err := strconv.ParseInt(value, 10, 64)
	if err != nil || ms <= 0 {
		fmt.Fprintf(stderr, "%s: --before-ts %q is not a time in milliseconds\n", cmd, value)
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}
