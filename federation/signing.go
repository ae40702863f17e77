// Package federation talks to other Matrix servers for media: it signs
// requests as the homeserver (X-Matrix), finds servers (server discovery) and
// fetches remote media. Every connection goes through a netguard policy. It
// imports config and netguard from this module.
package federation

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// SigningKey is a homeserver's ed25519 key, as Synapse stores it: one line
// "ed25519 <version> <unpadded base64 seed>".
type SigningKey struct {
	ID  string // "ed25519:<version>"
	key ed25519.PrivateKey
}

var keyVersion = regexp.MustCompile(`^[a-zA-Z0-9_]+$`)

// LoadSigningKey reads a signing key file in Synapse's format (the first key
// in it), Dendrite's PEM format or matrix-media-repo's.
func LoadSigningKey(path string) (*SigningKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	return ParseAnySigningKey(data)
}

// ParseSigningKey parses the contents of a Synapse-format signing key file.
func ParseSigningKey(s string) (*SigningKey, error) {
	fields := strings.Fields(s)
	if len(fields) < 3 || fields[0] != "ed25519" || !keyVersion.MatchString(fields[1]) {
		return nil, errors.New(`signing key: want "ed25519 <version> <base64 seed>"`)
	}
	seed, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(fields[2], "="))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("signing key: the seed is not 32 bytes of base64")
	}
	return &SigningKey{ID: "ed25519:" + fields[1], key: ed25519.NewKeyFromSeed(seed)}, nil
}

// PublicKey is the unpadded base64 public key, as published in /_matrix/key/v2/server.
func (k *SigningKey) PublicKey() string {
	return base64.RawStdEncoding.EncodeToString(k.key.Public().(ed25519.PublicKey))
}

// Sign returns the unpadded base64 signature of the canonical JSON of v.
func (k *SigningKey) Sign(v any) (string, error) {
	canonical, err := CanonicalJSON(v)
	if err != nil {
		return "", err
	}
	return base64.RawStdEncoding.EncodeToString(ed25519.Sign(k.key, canonical)), nil
}

// Authorization returns the X-Matrix Authorization header for a request from
// origin to destination; uri is the raw request target (path and query).
// Media requests carry no body, so there is no "content".
func (k *SigningKey) Authorization(method, uri, origin, destination string) (string, error) {
	sig, err := k.Sign(map[string]string{
		"method": method, "uri": uri, "origin": origin, "destination": destination,
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`X-Matrix origin="%s",destination="%s",key="%s",sig="%s"`,
		quoteParam(origin), quoteParam(destination), k.ID, sig), nil
}

// quoteParam escapes a value for a quoted auth-param.
func quoteParam(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// CanonicalJSON encodes v as the spec's canonical JSON: object keys sorted,
// no insignificant white space, UTF-8 without HTML escaping. encoding/json
// sorts map keys; values here are maps, strings and integers only.
func CanonicalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// GenerateSigningKey makes a new key with the given version (e.g. "a_1bcd").
func GenerateSigningKey(version string) (*SigningKey, error) {
	if !keyVersion.MatchString(version) {
		return nil, fmt.Errorf("signing key version %q: use letters, digits and _", version)
	}
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	return &SigningKey{ID: "ed25519:" + version, key: priv}, nil
}

// String encodes the key in Synapse's file format, which Dendrite's
// private_key (PEM) is converted from by the keys command.
func (k *SigningKey) String() string {
	return fmt.Sprintf("ed25519 %s %s\n", strings.TrimPrefix(k.ID, "ed25519:"),
		base64.RawStdEncoding.EncodeToString(k.key.Seed()))
}

// The PEM block types of Dendrite's private_key file and of
// matrix-media-repo's signing key file (which also has a Version header, 1).
const (
	dendritePEMType = "MATRIX PRIVATE KEY"
	mmrPEMType      = "MMR PRIVATE KEY"
)

// ParseAnySigningKey reads Synapse's format, or the first key block of a PEM
// file in Dendrite's or matrix-media-repo's format.
func ParseAnySigningKey(data []byte) (*SigningKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return ParseSigningKey(string(data))
	}
	for block != nil && block.Type != dendritePEMType && block.Type != mmrPEMType {
		block, rest = pem.Decode(rest)
	}
	const want = `signing key: a PEM key must be a "MATRIX PRIVATE KEY" (Dendrite) or "MMR PRIVATE KEY" (matrix-media-repo, Version 1) with a Key-ID header and a 32-byte seed`
	if block == nil {
		return nil, errors.New(want)
	}
	id := block.Headers["Key-ID"]
	if !strings.HasPrefix(id, "ed25519:") || !keyVersion.MatchString(strings.TrimPrefix(id, "ed25519:")) || len(block.Bytes) != ed25519.SeedSize {
		return nil, errors.New(want)
	}
	if block.Type == mmrPEMType && block.Headers["Version"] != "1" {
		return nil, fmt.Errorf("signing key: matrix-media-repo key format version %q is not 1", block.Headers["Version"])
	}
	return &SigningKey{ID: id, key: ed25519.NewKeyFromSeed(block.Bytes)}, nil
}

// DendritePEM encodes the key as Dendrite's private_key file.
func (k *SigningKey) DendritePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: dendritePEMType, Headers: map[string]string{"Key-ID": k.ID}, Bytes: k.key.Seed()})
}

// MMRPEM encodes the key as matrix-media-repo's signing key file.
func (k *SigningKey) MMRPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: mmrPEMType, Headers: map[string]string{"Key-ID": k.ID, "Version": "1"}, Bytes: k.key.Seed()})
}
