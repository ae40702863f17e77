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
