package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/antivirus/clamdtest"
	"github.com/mediarepo/mediarepo/storage"
)

// TestAntivirusRescan: media stored before scanning was on is scanned by a
// real clamd; the infected bytes are quarantined (every media with them),
// the clean left alone, and a second run finds nothing new.
func TestAntivirusRescan(t *testing.T) {
	ctx := context.Background()
	clamd := clamdtest.Start(t)
	dir := t.TempDir()
	cfgPath := writeRepoConfig(t, dir)
	m, code := openTarget(ctx, cfgPath, io.Discard)
	if m == nil {
		t.Fatalf("open: exit %d", code)
	}
	infected := "before scanning " + clamdtest.Pattern
	for id, content := range map[string]string{"clean": "nothing to see", "bad": infected, "badtwin": infected} {
		staged, err := m.blobs.Stage(ctx, "local", strings.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		md := &storage.Media{Origin: "example.org", MediaID: id, ContentType: "text/plain", SHA256: staged.SHA256(),
			SizeBytes: staged.Size(), DatastoreID: "local", CreatedAt: time.Now().Add(-time.Minute)}
		if err := m.db.CreateMedia(ctx, md, storage.Quota{}, staged.Commit); err != nil {
			t.Fatal(err)
		}
	}
	m.closeAll()
	cfg, _ := os.ReadFile(cfgPath)
	os.WriteFile(cfgPath, append(cfg, fmt.Sprintf("antivirus: {enabled: true, clamdAddress: %q}\n", clamd.Unix)...), 0o600)

	var stdout, stderr bytes.Buffer
	if code := runAntivirus(ctx, []string{"rescan", "-config", cfgPath}, &stdout, &stderr); code != 0 {
		t.Fatalf("rescan: exit %d\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "scanned 2 blobs of 3 media; 1 infected, quarantined (2 media)") {
		t.Errorf("rescan said %q", stdout.String())
	}
	m, _ = openTarget(ctx, cfgPath, io.Discard)
	defer m.closeAll()
	for id, want := range map[string]string{"clean": "", "bad": "antivirus: " + clamdtest.Signature, "badtwin": "antivirus: " + clamdtest.Signature} {
		md, err := m.db.Media(ctx, "example.org", id)
		if err != nil || md.QuarantinedBy != want {
			t.Errorf("%s after the rescan: quarantined by %q (%v), want %q", id, md.QuarantinedBy, err, want)
		}
	}
	stdout.Reset()
	if code := runAntivirus(ctx, []string{"rescan", "-config", cfgPath}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "0 infected") {
		t.Errorf("second rescan: exit %d, %q", code, stdout.String())
	}
	clamd.Stop()
	if code := runAntivirus(ctx, []string{"rescan", "-config", cfgPath}, &stdout, &stderr); code != 1 {
		t.Errorf("rescan with clamd down: exit %d, want 1", code)
	}
}

func TestParseBeforeTS(t *testing.T) {
	for _, c := range []struct {
		in   string
		ok   bool
		want int64
	}{{"1700000000000", true, 1700000000000}, {"0", false, 0}, {"-5", false, 0}, {"yesterday", false, 0}} {
		var stderr bytes.Buffer
		got, ok := parseBeforeTS("cmd", c.in, &stderr)
		if ok != c.ok || (ok && got.UnixMilli() != c.want) || (!ok && !strings.Contains(stderr.String(), "--before-ts")) {
			t.Errorf("parseBeforeTS(%q) = %v, %v (%s)", c.in, got, ok, stderr.String())
		}
	}
	if got, ok := parseBeforeTS("cmd", "", io.Discard); !ok || time.Since(got) > time.Minute {
		t.Errorf("empty = %v, %v; want now", got, ok)
	}
}
