package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/mediarepo/mediarepo/antivirus"
	"github.com/mediarepo/mediarepo/bus"
)

const antivirusUsage = `usage:
  media-repo antivirus rescan -config FILE [--before-ts MS]

Scans the media stored before --before-ts (milliseconds since 1970; default
now), each blob once, with the clamd of the config's antivirus section, and
quarantines (everywhere) the bytes it finds infected, by "antivirus: SIGNATURE".
Media quarantined already is skipped. The server may run. It stops when clamd
cannot scan; running it again scans everything again. A running server does the
same as a task: POST /_matrix/media/unstable/admin/antivirus/rescan[?before_ts=MS].
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
	r := &antivirus.Rescanner{
		Store: m.db, Blobs: m.blobs, Scanner: scanner, Log: m.Log.WithField("job", "antivirus rescan"),
		Changed: func() {
			// Running servers on this database drop what they remember of the media.
			if m.cast != nil {
				m.cast.Broadcast(context.WithoutCancel(ctx), bus.Media, "")
			}
		},
	}
	p, err := r.Run(ctx, before, nil)
	fmt.Fprintf(stdout, "scanned %d blobs of %d media; %d infected, quarantined (%d media)\n", p.Scanned, p.Media, p.Infected, p.Quarantined)
	if err != nil {
		fmt.Fprintln(stderr, "media-repo antivirus rescan:", err)
		return 1
	}
	return 0
}
