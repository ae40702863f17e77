// Command media-repo is the mediarepo server: a Matrix media repository that
// serves /_matrix/media, /_matrix/client/v1/media and (later) federation media
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
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
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
	log := newLogger(cfg.Repo, stderr)
	m := NewMain(cfg, log)
	if err := m.Run(ctx); err != nil {
		log.WithError(err).Error("start-up failed")
		return 1
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down: finishing in-flight requests")
	case err := <-m.Done():
		if !errors.Is(err, http.ErrServerClosed) {
			log.WithError(err).Error("server stopped")
		}
	}
	if err := m.Close(); err != nil {
		log.WithError(err).Error("shutdown")
		return 1
	}
	log.Info("stopped")
	return 0
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
