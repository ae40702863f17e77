package config_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mediarepo/mediarepo/config"
)

const minimal = `
homeservers:
  - name: example.org
    csApi: "http://127.0.0.1:8008"
datastores:
  - type: file
    id: local
    forKinds: [all]
    opts: {path: /tmp/media}
`

func TestSampleLoadsAndDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile("../config.sample.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("config.sample.yaml", data)
	if err != nil {
		t.Fatalf("sample does not load: %v", err)
	}
	if len(cfg.Warnings()) != 0 {
		t.Errorf("sample has warnings: %v", cfg.Warnings())
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	collectKeys(doc.Content[0], "", present)
	for _, want := range structKeys(reflect.TypeOf(config.Config{}), "") {
		if !present[want] {
			t.Errorf("config.sample.yaml does not document %s", want)
		}
	}
}

func collectKeys(n *yaml.Node, path string, into map[string]bool) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if path != "" {
				p = path + "." + p
			}
			into[p] = true
			collectKeys(n.Content[i+1], p, into)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			collectKeys(c, path+"[]", into)
		}
	}
}

func structKeys(t reflect.Type, path string) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		p := name
		if path != "" {
			p = path + "." + name
		}
		keys = append(keys, p)
		ft := f.Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			keys = append(keys, structKeys(ft.Elem(), p+"[]")...)
		} else if ft.Kind() == reflect.Struct {
			keys = append(keys, structKeys(ft, p)...)
		}
	}
	return keys
}

func TestDefaults(t *testing.T) {
	cfg, err := config.Parse("m.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Repo.Port != 8000 || cfg.Repo.BindAddress != "127.0.0.1" {
		t.Errorf("listen = %s:%d, want 127.0.0.1:8000", cfg.Repo.BindAddress, cfg.Repo.Port)
	}
	if !cfg.Repo.FreezeUnauthenticatedMedia {
		t.Error("freezeUnauthenticatedMedia defaults to false, want true")
	}
	if cfg.Uploads.MaxBytes != 104857600 {
		t.Errorf("uploads.maxBytes = %d, want 104857600", cfg.Uploads.MaxBytes)
	}
	if got := cfg.Uploads.ReportedUploadSize(); got != 104857600 {
		t.Errorf("ReportedUploadSize = %d, want maxBytes", got)
	}
}

func TestHomeserverLookup(t *testing.T) {
	cfg, err := config.Parse("m.yaml", []byte(minimal+`
  - type: file
    id: other
    opts: {path: /tmp/other}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"example.org", "EXAMPLE.org:443", "example.org."} {
		hs, ok := cfg.Homeserver(host)
		if !ok || hs.Name != "example.org" {
			t.Errorf("Homeserver(%q) = %v, %v; want example.org", host, hs, ok)
		}
	}
	if _, ok := cfg.Homeserver("evil.example"); ok {
		t.Error("Homeserver(evil.example) found, want unknown")
	}
}

func TestErrors(t *testing.T) {
	tests := map[string]struct {
		yaml      string
		wantErrs  []string
		wantWarns []string
	}{
		"misspelled key": {
			yaml:     "repo:\n  useForwaredHost: true\n" + minimal,
			wantErrs: []string{"m.yaml:2: repo.useForwaredHost: unknown key, did you mean useForwardedHost?"},
		},
		"misspelled top level": {
			yaml:     "homeserver: []\n" + minimal,
			wantErrs: []string{"m.yaml:1: homeserver: unknown key, did you mean homeservers?"},
		},
		"unknown key without suggestion": {
			yaml:     "repo:\n  flux: 1\n" + minimal,
			wantErrs: []string{"m.yaml:2: repo.flux: unknown key"},
		},
		"key inside list item": {
			yaml: strings.Replace(minimal, "csApi:", "csapi:", 1),
			wantErrs: []string{
				"m.yaml:4: homeservers[0].csapi: unknown key, did you mean csApi?",
				"homeservers[0].csApi: must be an absolute http(s) URL",
			},
		},
		"mmr only keys warn": {
			yaml: "identicons:\n  enabled: true\nrepo:\n  logDirectory: logs\n" + strings.Replace(minimal, "csApi:", "backoffAt: 10\n    csApi:", 1),
			wantWarns: []string{
				"m.yaml:1: identicons: matrix-media-repo option not implemented by mediarepo yet; ignored",
				"m.yaml:4: repo.logDirectory:",
				"homeservers[0].backoffAt:",
			},
		},
		"every problem at once": {
			yaml: `
repo: {port: 70000, logLevel: loud}
database: {postgres: "postgres://x", sqlite: "/tmp/x.db"}
homeservers:
  - {name: "https://example.org", csApi: "example.org"}
  - {name: example.org, csApi: "ftp://x"}
  - {name: EXAMPLE.org, csApi: "http://x"}
admins: [alice]
sharedSecretAuth: {enabled: true, token: short}
datastores:
  - {type: s3, id: a, forKinds: [thumbnails]}
  - {type: file, id: a, forKinds: [everything]}
uploads: {maxBytes: -1, minBytes: -2, reportedMaxBytes: -5}
`,
			wantErrs: []string{
				"repo.port: 70000 is not a TCP port",
				`repo.logLevel: "loud"`,
				"database: set postgres or sqlite, not both",
				`homeservers[0].name: "https://example.org" is not a server name`,
				"homeservers[0].csApi: must be an absolute http(s) URL",
				"homeservers[1].csApi: must be an absolute http(s) URL",
				`homeservers[2].name: "EXAMPLE.org" is already used by homeservers[1]`,
				`admins[0]: "alice" is not a user ID`,
				"sharedSecretAuth.token: must be at least 16 characters",
				"datastores[0].opts.endpoint: required for an s3 datastore",
				"datastores[0].opts.bucketName: required for an s3 datastore",
				`datastores[1].id: "a" is already used by datastores[0]`,
				"datastores[1].opts.path: required",
				`datastores[1].forKinds[0]: "everything" is not one of`,
				"datastores: no datastore has local_media",
				"uploads.maxBytes: must not be negative",
				"uploads.minBytes: must not be negative",
				"uploads.reportedMaxBytes: must be -1, 0 or positive",
			},
		},
		"server names follow the spec's grammar, as storage does": {
			yaml: `
homeservers:
  - {name: my_server.local, csApi: "http://x"}
  - {name: "example.org:99999", csApi: "http://x"}
admins: ["@alice:my_server.local"]
datastores: [{type: file, id: a, forKinds: [all], opts: {path: /tmp/x}}]
`,
			wantErrs: []string{
				`homeservers[0].name: "my_server.local" is not a server name`,
				`homeservers[1].name: "example.org:99999" is not a server name`,
				`admins[0]: "@alice:my_server.local" is not a user ID`,
			},
		},
		"thumbnail sizes and pre-generated requests": {
			yaml: minimal + `thumbnails:
  sizes: [{width: 0, height: 32}, {width: 96, height: 96, method: fit}]
  pregenerate: [{width: 20000, height: 10}, {width: 50, height: 50, method: zoom}]
`,
			wantErrs: []string{
				"thumbnails.sizes[0]: width and height must be 1-10000, got 0x32",
				`thumbnails.sizes[1].method: "fit" is not scale or crop`,
				"thumbnails.pregenerate[0]: width and height must be 1-10000, got 20000x10",
				`thumbnails.pregenerate[1].method: "zoom" is not scale or crop`,
			},
		},
		"WebP quality and ffmpeg limits": {
			yaml: minimal + `thumbnails:
  webpQuality: 0
  ffmpeg: {path: "", timeoutSeconds: 0, memoryBytes: 1000}
`,
			wantErrs: []string{
				"thumbnails.webpQuality: must be 1-100",
				"thumbnails.ffmpeg.path: must not be empty",
				"thumbnails.ffmpeg.timeoutSeconds: must be at least 1",
				"thumbnails.ffmpeg.memoryBytes: ffmpeg needs at least 67108864 (64 MiB)",
			},
		},
		"wrong type names line": {
			yaml:     "repo:\n  port: lots\n" + minimal,
			wantErrs: []string{"m.yaml: yaml: unmarshal errors:\n  line 2: cannot unmarshal !!str `lots` into int"},
		},
		"nothing configured": {
			yaml:     "",
			wantErrs: []string{"homeservers: at least one homeserver is required", "datastores: at least one datastore is required"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, err := config.Parse("m.yaml", []byte(tt.yaml))
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				warns := strings.Join(cfg.Warnings(), "\n")
				if len(cfg.Warnings()) != len(tt.wantWarns) {
					t.Errorf("warnings = %q, want %d", warns, len(tt.wantWarns))
				}
				for _, w := range tt.wantWarns {
					if !strings.Contains(warns, w) {
						t.Errorf("warnings = %q, want one containing %q", warns, w)
					}
				}
				return
			}
			if err == nil {
				t.Fatal("Parse succeeded, want errors")
			}
			for _, w := range tt.wantErrs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error =\n%v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := config.Load("/nonexistent/media-repo.yaml"); err == nil || !strings.Contains(err.Error(), "/nonexistent/media-repo.yaml") {
		t.Errorf("Load error = %v, want one naming the file", err)
	}
}

func TestEnvironmentVariablesInValues(t *testing.T) {
	t.Setenv("MEDIAREPO_TEST_DSN", "postgres://mediarepo:s3cr3t@db/mediarepo")
	t.Setenv("MEDIAREPO_TEST_KEY", "AKIA123")
	cfg, err := config.Parse("env.yaml", []byte(`
database: {postgres: "${MEDIAREPO_TEST_DSN}"}
homeservers: [{name: example.org, csApi: "http://hs:8008"}]
datastores:
  - {type: s3, id: s3, forKinds: [all], opts: {endpoint: "s3:8333", bucketName: media, accessKeyId: "${MEDIAREPO_TEST_KEY}", accessSecret: "literal $${NOT_EXPANDED}"}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database.Postgres != "postgres://mediarepo:s3cr3t@db/mediarepo" || cfg.Datastores[0].Opts.AccessKeyID != "AKIA123" ||
		cfg.Datastores[0].Opts.AccessSecret != "literal ${NOT_EXPANDED}" {
		t.Errorf("expanded: dsn %q, key %q, secret %q", cfg.Database.Postgres, cfg.Datastores[0].Opts.AccessKeyID, cfg.Datastores[0].Opts.AccessSecret)
	}
	_, err = config.Parse("env.yaml", []byte(`
database: {postgres: "${MEDIAREPO_TEST_UNSET_VARIABLE}"}
homeservers: [{name: example.org, csApi: "http://hs:8008"}]
`))
	if err == nil || !strings.Contains(err.Error(), "env.yaml:2: environment variable MEDIAREPO_TEST_UNSET_VARIABLE is not set") {
		t.Errorf("unset variable: %v", err)
	}
}
