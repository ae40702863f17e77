package config_test

import (
	"slices"
	"testing"

	"github.com/mediarepo/mediarepo/config"
)

func TestReloadAppliesWhatCanChangeLive(t *testing.T) {
	parse := func(yaml string) *config.Config {
		t.Helper()
		c, err := config.Parse("m.yaml", []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	const base = `
datastores: [{type: file, id: a, forKinds: [all], opts: {path: /tmp/a}}]
`
	old := parse(base + `
repo: {port: 8000, logLevel: info}
homeservers: [{name: example.org, csApi: "http://a", signingKeyPath: /keys/a}]
admins: ["@alice:example.org"]
thumbnails: {maxPixels: 1000}
`)
	live := config.NewLive(old)
	restart := live.Reload(parse(base + `
repo: {port: 9000, logLevel: debug}
homeservers:
  - {name: example.org, csApi: "http://b", signingKeyPath: /keys/a2, adminApiKind: synapse}
  - {name: new.example, csApi: "http://c"}
admins: ["@bob:example.org"]
thumbnails: {maxPixels: 2000}
quarantine: {allowLocalAdmins: false}
`))
	got := live.Get()
	if hs, ok := got.Homeserver("new.example"); !ok || hs.CSAPI != "http://c" {
		t.Errorf("new homeserver not served: %+v %v", hs, ok)
	}
	if hs, _ := got.Homeserver("example.org"); hs.CSAPI != "http://b" || hs.AdminAPIKind != "synapse" || hs.SigningKeyPath != "/keys/a" {
		t.Errorf("example.org after reload = %+v, want the new csApi and kind, the old key until restart", hs)
	}
	if !got.IsAdmin("@bob:example.org") || got.IsAdmin("@alice:example.org") {
		t.Error("admins not swapped")
	}
	if got.Repo.LogLevel != "debug" || got.Quarantine.AllowLocalAdmins {
		t.Errorf("log level %q, allowLocalAdmins %v: not applied", got.Repo.LogLevel, got.Quarantine.AllowLocalAdmins)
	}
	if got.Repo.Port != 8000 || got.Thumbnails.MaxPixels != 1000 {
		t.Errorf("port %d, maxPixels %d: changed live, want them kept until restart", got.Repo.Port, got.Thumbnails.MaxPixels)
	}
	want := []string{"repo.port", "homeservers[0].signingKeyPath", "thumbnails.maxPixels"}
	slices.Sort(want)
	slices.Sort(restart)
	if !slices.Equal(restart, want) {
		t.Errorf("waiting for a restart: %v, want %v", restart, want)
	}
	if old.Repo.LogLevel != "info" {
		t.Error("the old config was changed in place")
	}
}
