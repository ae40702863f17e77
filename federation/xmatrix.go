package federation

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// XMatrix is a parsed "Authorization: X-Matrix ..." header.
type XMatrix struct {
	Origin      string
	Destination string // may be empty: older servers do not send it
	Key         string // "ed25519:<version>"
	Sig         string // unpadded base64
}

// ErrBadAuth: a federation request's Authorization is missing or invalid.
var ErrBadAuth = errors.New("invalid X-Matrix authorization")

// ParseXMatrix parses an X-Matrix header as RFC 9110 auth-params, leniently:
// any order, spaces around commas, quoted or bare values (backslash escapes
// undone), parameter names in any case, unknown parameters ignored, and the
// spec prose's "signature" accepted for "sig".
func ParseXMatrix(header string) (XMatrix, error) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "X-Matrix") {
		return XMatrix{}, fmt.Errorf("not an X-Matrix header: %w", ErrBadAuth)
	}
	var x XMatrix
	for rest = strings.TrimSpace(rest); rest != ""; {
		name, value, remaining, err := nextParam(rest)
		if err != nil {
			return XMatrix{}, err
		}
		switch strings.ToLower(name) {
		case "origin":
			x.Origin = value
		case "destination":
			x.Destination = value
		case "key":
			x.Key = value
		case "sig", "signature":
			x.Sig = value
		}
		rest = remaining
	}
	if x.Origin == "" || x.Key == "" || x.Sig == "" {
		return XMatrix{}, fmt.Errorf("origin, key and sig are required: %w", ErrBadAuth)
	}
	return x, nil
}

// nextParam reads one name=value and the separator after it.
func nextParam(s string) (name, value, rest string, err error) {
	eq := strings.IndexByte(s, '=')
	if eq <= 0 {
		return "", "", "", fmt.Errorf("parameter without a value: %w", ErrBadAuth)
	}
	name, s = strings.TrimSpace(s[:eq]), strings.TrimLeft(s[eq+1:], " \t")
	if strings.HasPrefix(s, `"`) {
		var b strings.Builder
		i := 1
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
		}
		if i >= len(s) {
			return "", "", "", fmt.Errorf("unterminated quoted value: %w", ErrBadAuth)
		}
		value, s = b.String(), s[i+1:]
	} else {
		end := strings.IndexByte(s, ',')
		if end < 0 {
			end = len(s)
		}
		value, s = strings.TrimSpace(s[:end]), s[end:]
	}
	s = strings.TrimLeft(s, " \t")
	if s != "" {
		if s[0] != ',' {
			return "", "", "", fmt.Errorf("expected a comma: %w", ErrBadAuth)
		}
		s = strings.TrimLeft(s[1:], " \t")
	}
	return name, value, s, nil
}

// VerifyRequest checks x's signature, made with key, over the request
// (method, raw URI, x.Origin, destination).
func VerifyRequest(x XMatrix, key ed25519.PublicKey, method, uri, destination string) error {
	sig, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(x.Sig, "="))
	if err != nil {
		return fmt.Errorf("signature is not base64: %w", ErrBadAuth)
	}
	canonical, err := CanonicalJSON(map[string]string{"method": method, "uri": uri, "origin": x.Origin, "destination": destination})
	if err != nil {
		return err
	}
	if !ed25519.Verify(key, canonical, sig) {
		return fmt.Errorf("signature does not verify: %w", ErrBadAuth)
	}
	return nil
}
