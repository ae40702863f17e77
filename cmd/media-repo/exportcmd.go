package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/archive"
	"github.com/mediarepo/mediarepo/mxid"
)

const exportUsage = `usage:
  media-repo export -config FILE -user @USER:SERVER -out DIR [-part-bytes N]
  media-repo export -config FILE -server NAME -out DIR [-part-bytes N]

Writes the user's uploads (of any origin) or the server's media, quarantined
media left out, as matrix-media-repo's archive: DIR/export-part-1.tgz ... and
DIR/export-manifest.tgz, whose index.html lists every file. mediarepo and
matrix-media-repo import it (media-repo import archive). The server may run.
`

// runExport is "media-repo export ...".
func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("media-repo export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, exportUsage) }
	cfgPath := fs.String("config", "media-repo.yaml", "mediarepo's config")
	user := fs.String("user", "", "export this user's uploads")
	server := fs.String("server", "", "export this server's media")
	out := fs.String("out", "", "directory the parts are written to")
	partBytes := fs.Int64("part-bytes", 0, "start a new part after this many bytes (default archiving.targetBytesPerPart)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	e := archive.Entity{UserID: *user, Server: *server}
	switch {
	case (*user == "") == (*server == ""):
		fmt.Fprint(stderr, "media-repo export: give -user or -server\n"+exportUsage)
		return 2
	case *user != "" && !mxid.ValidUserID(*user):
		fmt.Fprintf(stderr, "media-repo export: -user %q is not a user ID (@name:server)\n", *user)
		return 2
	case *server != "" && !mxid.ValidServerName(*server):
		fmt.Fprintf(stderr, "media-repo export: -server %q is not a server name\n", *server)
		return 2
	case *out == "":
		fmt.Fprint(stderr, "media-repo export: -out is required\n"+exportUsage)
		return 2
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(stderr, "media-repo export:", err)
		return 1
	}
	m, code := openTarget(ctx, *cfgPath, stderr)
	if m == nil {
		return code
	}
	defer m.closeAll()
	target := *partBytes
	if target <= 0 {
		target = m.Config.Archiving.TargetBytesPerPart
	}
	log := m.Log.WithField("entity", e.String())
	var written []string
	w := archive.NewWriter(ctx, e.String(), time.Now(), target, func(_ context.Context, _ int, name string, r io.Reader) error {
		path := filepath.Join(*out, name)
		if err := writeFileAtomic(path, r); err != nil {
			return err
		}
		written = append(written, path)
		log.WithField("part", path).Info("part written")
		return nil
	})
	last := time.Now()
	err := archive.Write(ctx, archive.Source{Catalog: m.db, Blobs: m.blobs}, e, w, func(done, total int64) {
		if time.Since(last) >= 10*time.Second {
			last = time.Now()
			log.WithFields(logrus.Fields{"done": done, "of": total}).Info("exporting")
		}
	})
	if err != nil {
		w.Abort()
	} else {
		err = w.Close()
	}
	if err != nil {
		fmt.Fprintln(stderr, "media-repo export:", err)
		return 1
	}
	fmt.Fprintf(stdout, "exported %s: %d parts in %s\n", e, len(written), *out)
	return 0
}

// writeFileAtomic writes r to path through a synced temporary file, so a
// part is either whole or absent.
func writeFileAtomic(path string, r io.Reader) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".part-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
