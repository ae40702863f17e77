package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mediarepo/mediarepo"
	"github.com/mediarepo/mediarepo/config"
)

// runInit is "media-repo init -config FILE": it writes the sample config
// there, with shared-secret auth on and a fresh random token, so that a
// newcomer can upload, download and thumbnail before any homeserver exists.
// An existing file is left alone.
func runInit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("media-repo init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "media-repo.yaml", "config file to write")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if _, err := os.Stat(*path); err == nil {
		fmt.Fprintf(stderr, "media-repo init: %s exists; left as it is\n", *path)
		return 0
	}
	token, data, err := initialConfig()
	if err != nil {
		fmt.Fprintln(stderr, "media-repo init:", err)
		return 1
	}
	if err := os.MkdirAll(filepath.Dir(*path), 0o750); err != nil {
		fmt.Fprintln(stderr, "media-repo init:", err)
		return 1
	}
	if err := os.WriteFile(*path, data, 0o600); err != nil {
		fmt.Fprintln(stderr, "media-repo init:", err)
		return 1
	}
	fmt.Fprintf(stdout, `Wrote %s with shared-secret auth on. Its token, shown this once:

    export TOKEN=%s

It acts as a repository admin: try the README's quick start with it, then point
homeservers[0] at your homeserver and turn sharedSecretAuth off (or keep it for tools).
`, *path, token)
	return 0
}

// initialConfig is the sample with sharedSecretAuth enabled and a random
// token, checked to load.
func initialConfig() (token string, data []byte, err error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	token = "mr_" + base64.RawURLEncoding.EncodeToString(b)
	sample := mediarepo.SampleConfig
	at := bytes.Index(sample, []byte("\nsharedSecretAuth:\n"))
	if at < 0 {
		return "", nil, errors.New("the sample config has no sharedSecretAuth section")
	}
	head, tail := sample[:at], sample[at:]
	tail = bytes.Replace(tail, []byte("  enabled: false"), []byte("  enabled: true"), 1)
	tail = bytes.Replace(tail, []byte(`  token: ""`), []byte(`  token: "`+token+`"`), 1)
	data = append(append([]byte(nil), head...), tail...)
	cfg, err := config.Parse("media-repo.yaml", data)
	if err != nil {
		return "", nil, fmt.Errorf("the written config does not load: %w", err)
	}
	if !cfg.SharedSecretAuth.Enabled || cfg.SharedSecretAuth.Token != token {
		return "", nil, errors.New("the sample config's sharedSecretAuth section could not be filled in")
	}
	return token, data, nil
}
