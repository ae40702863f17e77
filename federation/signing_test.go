package federation_test

import (
	"strings"
	"testing"

	"github.com/mediarepo/mediarepo/federation"
)

// The spec's test key (server "domain", key ed25519:1).
const specKey = "ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"

func TestSpecVectors(t *testing.T) {
	k, err := federation.ParseSigningKey(specKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.PublicKey(); got != "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI" {
		t.Errorf("public key = %s", got)
	}
	sig, err := k.Sign(map[string]any{})
	if err != nil || sig != "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ" {
		t.Errorf("Sign({}) = %s, %v", sig, err)
	}
	h, err := k.Authorization("GET", "/_matrix/federation/v1/media/download/abcDEF123_-x?timeout_ms=20000", "domain", "media.example.org")
	want := `X-Matrix origin="domain",destination="media.example.org",key="ed25519:1",sig="cWA0XkpApwsMCAr1zDbVVYO3+8RLx3wRm5f0EUovdJc2Raks2rjDSBFxZkdp1VQmvRcEg/7hiKarmVvJy+z6Cw"`
	if err != nil || h != want {
		t.Errorf("Authorization =\n%s\nwant\n%s", h, want)
	}
}

func TestCanonicalJSON(t *testing.T) {
	got, err := federation.CanonicalJSON(map[string]any{"b": "<&>", "a": map[string]any{"z": 1, "y": "ü"}})
	if err != nil || string(got) != `{"a":{"y":"ü","z":1},"b":"<&>"}` {
		t.Errorf("CanonicalJSON = %s, %v", got, err)
	}
}

func TestParseSigningKeyErrors(t *testing.T) {
	for _, bad := range []string{"", "ed25519 1", "rsa 1 AAAA", "ed25519 bad-version " + strings.Fields(specKey)[2], "ed25519 1 short"} {
		if _, err := federation.ParseSigningKey(bad); err == nil {
			t.Errorf("ParseSigningKey(%q) accepted", bad)
		}
	}
}
