//go:build e2e

package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"maunium.net/go/mautrix"

	"github.com/mediarepo/mediarepo/antivirus/clamdtest"
)

// checkAntivirus: a real clamd (with the suite's own signature) scans what
// mautrix-go uploads through nginx: a clean image is stored and served, an
// infected file is refused with 403 M_FORBIDDEN, and with clamd stopped
// uploads get 503 until it is back.
func checkAntivirus(t *testing.T, hs *dendrite, bin string, png []byte) {
	clamd := clamdtest.Start(t)
	repo := startRepoWith(t, bin, hs.port, "sqlite", true, fmt.Sprintf("antivirus: {enabled: true, clamdAddress: %q, timeoutSeconds: 5}", clamd.Unix))
	c := newE2EClient(t, startProxy(t, "nginx", repo.port, hs.port, true), true)
	cli := c.mautrix(t, "alice", "alice-password")
	ctx := context.Background()
	up, err := cli.UploadBytesWithName(ctx, png, "image/png", "clean.png")
	if err != nil {
		t.Fatalf("clean upload: %v", err)
	}
	if got, err := cli.DownloadBytes(ctx, up.ContentURI); err != nil || len(got) != len(png) {
		t.Errorf("clean download = %d bytes, %v", len(got), err)
	}
	infected := []byte("%PDF-1.4 " + clamdtest.Pattern)
	_, err = cli.UploadBytesWithName(ctx, infected, "application/pdf", "invoice.pdf")
	var httpErr mautrix.HTTPError
	if !errors.As(err, &httpErr) || httpErr.Response == nil || httpErr.Response.StatusCode != http.StatusForbidden ||
		httpErr.RespError == nil || httpErr.RespError.ErrCode != "M_FORBIDDEN" {
		t.Errorf("infected upload = %v, want 403 M_FORBIDDEN", err)
	}
	clamd.Stop()
	resp, body := c.do(t, "POST", "/_matrix/media/v3/upload", cli.AccessToken, png, map[string]string{"Content-Type": "image/png"})
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("upload with clamd stopped = %d %s (Retry-After %q), want 503 with Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	clamd.Restart(t)
	if _, err := cli.UploadBytesWithName(ctx, png, "image/png", "again.png"); err != nil {
		t.Errorf("upload after clamd is back: %v", err)
	}
}
