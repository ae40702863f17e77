package federation_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/mediarepo/mediarepo/federation"
)

func TestParseXMatrix(t *testing.T) {
	want := federation.XMatrix{Origin: "origin.example", Destination: "dest.example", Key: "ed25519:1", Sig: "ABC/def+g"}
	tests := map[string]string{
		"canonical":         `X-Matrix origin="origin.example",destination="dest.example",key="ed25519:1",sig="ABC/def+g"`,
		"any order, spaces": `X-Matrix  key="ed25519:1" , sig="ABC/def+g",  origin="origin.example",destination="dest.example"`,
		"bare values":       `X-Matrix origin=origin.example,destination=dest.example,key=ed25519:1,sig=ABC/def+g`,
		"names in any case": `x-matrix Origin="origin.example",DESTINATION="dest.example",Key="ed25519:1",Sig="ABC/def+g"`,
		"signature alias":   `X-Matrix origin="origin.example",destination="dest.example",key="ed25519:1",signature="ABC/def+g"`,
		"unknown params":    `X-Matrix origin="origin.example",foo="bar,baz",destination="dest.example",key="ed25519:1",sig="ABC/def+g"`,
		"escapes":           `X-Matrix origin="origin.ex\ample",destination="dest.example",key="ed25519:1",sig="ABC/def+g"`,
	}
	for name, h := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := federation.ParseXMatrix(h)
			if err != nil || got != want {
				t.Errorf("ParseXMatrix = %+v, %v; want %+v", got, err, want)
			}
		})
	}
	for _, bad := range []string{"", "Bearer abc", "X-Matrix", `X-Matrix origin="a"`, `X-Matrix origin="a,key="k",sig="s"`, `X-Matrix origin`} {
		if _, err := federation.ParseXMatrix(bad); !errors.Is(err, federation.ErrBadAuth) {
			t.Errorf("ParseXMatrix(%q) = %v, want ErrBadAuth", bad, err)
		}
	}
}

func TestVerifySpecVector(t *testing.T) {
	x, err := federation.ParseXMatrix(`X-Matrix origin="domain",destination="media.example.org",key="ed25519:1",sig="cWA0XkpApwsMCAr1zDbVVYO3+8RLx3wRm5f0EUovdJc2Raks2rjDSBFxZkdp1VQmvRcEg/7hiKarmVvJy+z6Cw"`)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := base64.RawStdEncoding.DecodeString("XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI")
	uri := "/_matrix/federation/v1/media/download/abcDEF123_-x?timeout_ms=20000"
	if err := federation.VerifyRequest(x, ed25519.PublicKey(pub), "GET", uri, "media.example.org"); err != nil {
		t.Errorf("spec vector does not verify: %v", err)
	}
	for name, tamper := range map[string][3]string{
		"query":       {"GET", uri + "&x=1", "media.example.org"},
		"method":      {"POST", uri, "media.example.org"},
		"destination": {"GET", uri, "other.example.org"},
	} {
		if err := federation.VerifyRequest(x, ed25519.PublicKey(pub), tamper[0], tamper[1], tamper[2]); !errors.Is(err, federation.ErrBadAuth) {
			t.Errorf("tampered %s verified: %v", name, err)
		}
	}
}

func FuzzParseXMatrix(f *testing.F) {
	f.Add(`X-Matrix origin="o",destination="d",key="ed25519:1",sig="s"`)
	f.Add(`X-Matrix origin=o , key = "a\"b", sig=x`)
	f.Fuzz(func(t *testing.T, h string) {
		x, err := federation.ParseXMatrix(h)
		if err == nil && (x.Origin == "" || x.Key == "" || x.Sig == "") {
			t.Fatalf("accepted %q without origin, key or sig", h)
		}
	})
}

func FuzzCanonicalJSON(f *testing.F) {
	f.Add("a", "<&>", "ü")
	f.Fuzz(func(t *testing.T, k, v, w string) {
		a, err1 := federation.CanonicalJSON(map[string]any{k: v, "w": w})
		b, err2 := federation.CanonicalJSON(map[string]any{"w": w, k: v})
		if (err1 == nil) != (err2 == nil) || string(a) != string(b) {
			t.Fatalf("key order changed the encoding: %s vs %s", a, b)
		}
	})
}
