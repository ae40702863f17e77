package console

import (
	"strings"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/admin"
	"github.com/mediarepo/mediarepo/config"
)

func TestMaskedConfig(t *testing.T) {
	cfg := config.Default()
	cfg.SharedSecretAuth.Token = "very-secret-token"
	cfg.Database.Postgres = "postgres://mediarepo:hunter2@db:5432/media"
	cfg.Datastores = []config.Datastore{{Type: "s3", ID: "s3", Opts: config.DatastoreOpts{AccessKeyID: "AKIA1", AccessSecret: "s3cr3t", Endpoint: "s3.example:9000"}}}
	out, err := maskedConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"very-secret-token", "hunter2", "s3cr3t", "AKIA1"} {
		if strings.Contains(out, secret) {
			t.Errorf("masked config shows %q", secret)
		}
	}
	for _, kept := range []string{"s3.example:9000", "mediarepo:********@db:5432", "maxPixels"} {
		if !strings.Contains(out, kept) {
			t.Errorf("masked config lost %q", kept)
		}
	}
}

func TestSessions(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := newSessions(func() time.Time { return now })
	a := s.create(admin.Caller{UserID: "@a:example.org"}, "example.org")
	if s.get(a.id, "example.org") != a || s.get(a.id, "other.example") != nil || s.get("nope", "example.org") != nil {
		t.Fatal("a session is found by its ID, for its host only")
	}
	if a.csrf == a.id || len(a.id) < 26 {
		t.Error("session ID and CSRF token must be distinct random tokens")
	}
	for range maxSessions + 10 {
		s.create(admin.Caller{}, "example.org")
	}
	if len(s.m) > maxSessions {
		t.Errorf("%d sessions kept, bound %d", len(s.m), maxSessions)
	}
	b := s.create(admin.Caller{}, "example.org")
	now = now.Add(sessionTTL + time.Second)
	if s.get(b.id, "example.org") != nil {
		t.Error("an expired session is still found")
	}
}
