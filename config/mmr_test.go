package config_test

import (
	"os"
	"strings"
	"testing"

	"github.com/mediarepo/mediarepo/config"
)

// matrix-media-repo's own config, every key of its sample, loads: what
// mediarepo does is honoured, the rest is accepted with one warning line
// each, and a disabled datastore is left out.
func TestMMRConfigLoads(t *testing.T) {
	data, err := os.ReadFile("testdata/mmr-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("mmr.yaml", data)
	if err != nil {
		t.Fatalf("matrix-media-repo's config does not load:\n%v", err)
	}
	warned := map[string]bool{}
	for _, w := range c.Warnings() {
		key := w
		if parts := strings.SplitN(w, ": ", 3); len(parts) == 3 {
			key = parts[1]
		}
		if warned[key] {
			t.Errorf("more than one warning for %s", key)
		}
		warned[key] = true
	}
	for _, key := range []string{
		"repo.logDirectory", "repo.logColors", "federation.backoffAt", "homeservers[0].backoffAt",
		"accessTokens.useLocalAppserviceConfig", "accessTokens.appservices",
		"downloads.numWorkers", "downloads.defaultRangeChunkSizeBytes", "urlPreviews.oEmbed", "urlPreviews.proxyUrl",
		"identicons", "plugins", "sentry", "tasks", "pgo",
	} {
		if !warned[key] {
			t.Errorf("no warning for %s, which mediarepo ignores", key)
		}
	}
	if len(c.Datastores) != 1 || c.Datastores[0].ID != "files" {
		t.Errorf("datastores = %+v, want only the enabled file datastore", c.Datastores)
	}
	if n := c.Notices(); len(n) != 1 || n[0] != `datastores[1] (s3 "s3") has enabled: false and is not used` {
		t.Errorf("the disabled datastore is not named in one line; notices: %q", n)
	}
	for key := range warned {
		if strings.HasPrefix(key, "datastores[1].") {
			t.Errorf("a disabled datastore's option warned: %s", key)
		}
	}
	// Honoured: what mediarepo implements keeps the file's values.
	hs, _ := c.Homeserver("example.org")
	switch {
	case !c.Archiving.Enabled || c.Archiving.TargetBytesPerPart != 209715200:
		t.Errorf("archiving = %+v", c.Archiving)
	case hs == nil || hs.AdminAPIKind != "synapse":
		t.Errorf("homeserver = %+v", hs)
	case len(c.Thumbnails.Sizes) != 6 || c.Thumbnails.NumWorkers != 100 || c.Thumbnails.StillFrame != 0.5:
		t.Errorf("thumbnails = %+v", c.Thumbnails)
	case c.Uploads.MinBytes != 100 || c.Uploads.MaxAgeSeconds != 1800 || c.Uploads.MaxPending != 5:
		t.Errorf("uploads = %+v", c.Uploads)
	case c.RateLimit.RequestsPerSecond != 1 || c.RateLimit.Burst != 10:
		t.Errorf("rateLimit = %+v", c.RateLimit)
	case !c.Quarantine.ReplaceThumbnails || !c.Quarantine.AllowLocalAdmins:
		t.Errorf("quarantine = %+v", c.Quarantine)
	case c.Federation.IgnoredHosts[0] != "example.net" || c.Repo.UseForwardedHost != true:
		t.Errorf("federation/repo = %+v %+v", c.Federation, c.Repo)
	}
}
