package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mediarepo/mediarepo/federation"
)

func TestKeysCommand(t *testing.T) {
	dir := t.TempDir()
	synapse := filepath.Join(dir, "signing.key")
	var out, errOut bytes.Buffer
	if code := runKeys([]string{"generate", "-version", "mr1", "-out", synapse}, &out, &errOut); code != 0 {
		t.Fatalf("generate = %d: %s", code, errOut.String())
	}
	k, err := federation.LoadSigningKey(synapse)
	if err != nil || k.ID != "ed25519:mr1" {
		t.Fatalf("generated key = %+v, %v", k, err)
	}
	if info, _ := os.Stat(synapse); info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", info.Mode().Perm())
	}

	out.Reset()
	errOut.Reset()
	if code := runKeys([]string{"export", "-key", synapse, "-format", "dendrite"}, &out, &errOut); code != 0 {
		t.Fatalf("export = %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "BEGIN MATRIX PRIVATE KEY") || !strings.Contains(out.String(), "Key-ID: ed25519:mr1") {
		t.Errorf("dendrite export = %s", out.String())
	}
	if !strings.Contains(errOut.String(), k.PublicKey()) {
		t.Errorf("export does not print the public key: %s", errOut.String())
	}

	// A Dendrite key imports into the format signingKeyPath reads, same key.
	dendrite := filepath.Join(dir, "matrix_key.pem")
	os.WriteFile(dendrite, out.Bytes(), 0o600)
	imported := filepath.Join(dir, "imported.key")
	if code := runKeys([]string{"import", "-in", dendrite, "-out", imported}, &out, &errOut); code != 0 {
		t.Fatalf("import = %d: %s", code, errOut.String())
	}
	k2, err := federation.LoadSigningKey(imported)
	if err != nil || k2.PublicKey() != k.PublicKey() || k2.ID != k.ID {
		t.Errorf("imported key = %+v, %v; want the same key", k2, err)
	}

	for _, bad := range [][]string{{}, {"rotate"}, {"export", "-key", filepath.Join(dir, "missing")}, {"export", "-key", synapse, "-format", "pgp"}} {
		if code := runKeys(bad, &out, &errOut); code == 0 {
			t.Errorf("keys %v succeeded", bad)
		}
	}
}

// matrix-media-repo's key files (PEM "MMR PRIVATE KEY", Key-ID and Version
// headers) load at signingKeyPath, import, and export back.
func TestMMRSigningKeys(t *testing.T) {
	dir := t.TempDir()
	k, err := federation.GenerateSigningKey("mmr")
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	synapse := filepath.Join(dir, "signing.key")
	os.WriteFile(synapse, []byte(k.String()), 0o600)
	if code := runKeys([]string{"export", "-key", synapse, "-format", "mmr"}, &out, &errOut); code != 0 {
		t.Fatalf("export -format mmr = %d: %s", code, errOut.String())
	}
	pem := out.String()
	for _, want := range []string{"-----BEGIN MMR PRIVATE KEY-----", "Key-ID: ed25519:mmr", "Version: 1"} {
		if !strings.Contains(pem, want) {
			t.Errorf("mmr export lacks %q:\n%s", want, pem)
		}
	}
	// As matrix-media-repo writes it: the key block after another PEM block.
	mmrFile := filepath.Join(dir, "example.org.key")
	os.WriteFile(mmrFile, []byte("-----BEGIN COMMENT-----\nY29tbWVudA==\n-----END COMMENT-----\n"+pem), 0o600)
	loaded, err := federation.LoadSigningKey(mmrFile)
	if err != nil || loaded.ID != k.ID || loaded.PublicKey() != k.PublicKey() {
		t.Fatalf("signingKeyPath with an MMR key = %+v, %v", loaded, err)
	}
	imported := filepath.Join(dir, "imported.key")
	if code := runKeys([]string{"import", "-in", mmrFile, "-out", imported}, &out, &errOut); code != 0 {
		t.Fatalf("import = %d: %s", code, errOut.String())
	}
	if again, err := federation.LoadSigningKey(imported); err != nil || again.PublicKey() != k.PublicKey() {
		t.Errorf("imported MMR key = %+v, %v", again, err)
	}
	future := strings.Replace(pem, "Version: 1", "Version: 2", 1)
	if _, err := federation.ParseAnySigningKey([]byte(future)); err == nil || !strings.Contains(err.Error(), "version") {
		t.Errorf("an MMR key of format version 2 = %v, want refused naming the version", err)
	}
}
