package federation

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestServerKeysSelfSigned(t *testing.T) {
	k, err := ParseSigningKey("ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	doc, err := k.KeyResponse("domain", now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sk, err := parseServerKeys(bytes.NewReader(doc), "domain", now)
	if err != nil || sk.keys["ed25519:1"] == nil {
		t.Fatalf("parseServerKeys = %+v, %v", sk, err)
	}
	if sk.until.Sub(now) > time.Hour+time.Second {
		t.Errorf("trusted until %v, want valid_until_ts (an hour)", sk.until)
	}
	long, _ := k.KeyResponse("domain", now.Add(30*24*time.Hour))
	if sk, _ := parseServerKeys(bytes.NewReader(long), "domain", now); sk.until.Sub(now) > maxKeyValidity {
		t.Errorf("trusted for %v, want at most 7 days", sk.until.Sub(now))
	}
	if _, err := parseServerKeys(bytes.NewReader(doc), "other", now); !errors.Is(err, ErrBadAuth) {
		t.Errorf("keys for another server name = %v, want ErrBadAuth", err)
	}
	tampered := strings.Replace(string(doc), `"valid_until_ts":`, `"valid_until_ts":1`, 1)
	if _, err := parseServerKeys(strings.NewReader(tampered), "domain", now); !errors.Is(err, ErrBadAuth) {
		t.Errorf("tampered key response = %v, want ErrBadAuth", err)
	}
}
