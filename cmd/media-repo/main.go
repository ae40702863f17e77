// Command media-repo is the mediarepo server: a Matrix media repository that
// serves /_matrix/media, /_matrix/client/v1/media and /_matrix/federation/v1/media
// for one or more homeservers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "keys":
			os.Exit(runKeys(os.Args[2:], os.Stdout, os.Stderr))
		case "init":
			os.Exit(runInit(os.Args[2:], os.Stdout, os.Stderr))
		case "import":
			os.Exit(runImport(ctx, os.Args[2:], os.Stdout, os.Stderr))
		case "export":
			os.Exit(runExport(ctx, os.Args[2:], os.Stdout, os.Stderr))
		case "datastores":
			os.Exit(runDatastores(ctx, os.Args[2:], os.Stdout, os.Stderr))
		case "antivirus":
			os.Exit(runAntivirus(ctx, os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stderr, hup))
}

// run is main without the process: it returns the exit code. A value on
// hup (SIGHUP) reloads the config file.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, hup <-chan os.Signal) int {
	fs := flag.NewFlagSet("media-repo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defaultPath := getenv("REPO_CONFIG")
	if defaultPath == "" {
		defaultPath = "media-repo.yaml"
	}
	path := fs.String("config", defaultPath, "path to media-repo.yaml (env REPO_CONFIG)")
	if err := fs.Parse(args); err != nil {
		return 2
	}

	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "media-repo: configuration is not valid:\n%s\n", indent(err.Error()))
		return 1
	}
	gc := tuneGC(getenv, cfg.Thumbnails.DecodeMemoryBytes)
	log := newLogger(cfg.Repo, stderr)
	log.WithFields(logrus.Fields{"gc_percent": gc.percent, "memory_limit_mib": gc.limit >> 20}).Info("garbage collector")
	m := NewMain(cfg, log)
	if err := m.Run(ctx); err != nil {
		log.WithError(err).Error("start-up failed")
		return 1
	}
wait:
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down: finishing in-flight requests")
			break wait
		case err := <-m.Done():
			if !errors.Is(err, http.ErrServerClosed) {
				log.WithError(err).Error("server stopped")
			}
			break wait
		case <-hup:
			m.Reload(*path)
		}
	}
	if err := m.Close(); err != nil {
		log.WithError(err).Error("shutdown")
		return 1
	}
	log.Info("stopped")
	return 0
}

// Garbage collector defaults, used unless GOGC or GOMEMLIMIT are set. The
// live heap of a media server is small (tens of MiB) while each request
// allocates a little, so Go's default GOGC=100 collects very often: at 400,
// an authenticated 10 KiB download costs about a fifth less CPU (see
// docs/benchmarks.md). The soft memory limit makes the collector work harder
// instead of letting the heap grow to five times a burst of thumbnail
// decodes: it is the decode budget (thumbnails.decodeMemoryBytes) plus
// memoryHeadroom for everything else (page fetches for previews, caches,
// buffers), 384 MiB with the defaults. See docs/deployment.md.
const (
	defaultGCPercent = 400
	memoryHeadroom   = 192 << 20
)

type gcSettings struct {
	percent int
	limit   int64
}

// tuneGC applies the defaults above where the environment leaves them unset,
// and returns the settings in force.
func tuneGC(getenv func(string) string, decodeBudget int64) gcSettings {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(decodeBudget + memoryHeadroom)
	}
	percent := debug.SetGCPercent(-1) // reads the current value...
	debug.SetGCPercent(percent)       // ...and puts it back
	return gcSettings{percent: percent, limit: debug.SetMemoryLimit(-1)}
}

// newLogger builds the one logger the program uses, from repo.logLevel and repo.jsonLogs.
func newLogger(repo config.Repo, out io.Writer) *logrus.Logger {
	log := logrus.New()
	log.SetOutput(out)
	if repo.JSONLogs {
		log.SetFormatter(&logrus.JSONFormatter{})
	} else {
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, DisableColors: true})
	}
	if lvl, err := logrus.ParseLevel(repo.LogLevel); err == nil {
		log.SetLevel(lvl)
	}
	return log
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
