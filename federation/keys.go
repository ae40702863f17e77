package federation

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Server keys: trusted until the response's valid_until_ts, at most seven
// days; a failed fetch, or a key ID a server did not publish, is not asked
// again for a minute, so forged X-Matrix headers cannot make us fetch on
// every request; at most keyCacheEntries servers are remembered.
const (
	maxKeyValidity  = 7 * 24 * time.Hour
	keyRetryAfter   = time.Minute
	keyCacheEntries = 10_000
)

type serverKeys struct {
	keys    map[string]ed25519.PublicKey
	until   time.Time // trusted until
	fetched time.Time
	err     error // a failed fetch, remembered until fetched+keyRetryAfter
}

// HasKey reports whether server's key keyID is known and trusted now, so
// that verifying a request signed with it makes no outbound request.
func (c *Client) HasKey(server, keyID string) bool {
	sk, ok := c.serverKeys.Get(server)
	return ok && sk.err == nil && time.Now().Before(sk.until) && sk.keys[keyID] != nil
}

// ServerKey returns the verify key keyID of server, fetched from its
// /_matrix/key/v2/server (self-signature checked) and cached. Concurrent
// look-ups of one server share a fetch.
func (c *Client) ServerKey(ctx context.Context, server, keyID string) (ed25519.PublicKey, error) {
	now := time.Now()
	sk, ok := c.serverKeys.Get(server)
	recent := ok && now.Before(sk.fetched.Add(keyRetryAfter))
	stale := !ok || now.After(sk.until) || sk.err != nil || sk.keys[keyID] == nil
	if stale && !recent {
		var err error
		sk, err = c.keyFetches.Do(ctx, server, func(ctx context.Context) (serverKeys, error) {
			sk, err := c.fetchServerKeys(ctx, server, time.Now())
			if errors.Is(err, context.Canceled) {
				return sk, err // shutting down: remember nothing
			}
			sk.fetched, sk.err = time.Now(), err
			c.serverKeys.Add(server, sk)
			return sk, nil
		})
		if err != nil {
			return nil, err
		}
	}
	if sk.err != nil {
		return nil, sk.err
	}
	if k := sk.keys[keyID]; k != nil && now.Before(sk.until) {
		return k, nil
	}
	return nil, fmt.Errorf("%s has no key %s: %w", server, keyID, ErrBadAuth)
}

func (c *Client) fetchServerKeys(ctx context.Context, server string, now time.Time) (serverKeys, error) {
	target, err := c.resolver.Resolve(ctx, server)
	if err != nil {
		return serverKeys{}, fmt.Errorf("%v: %w", err, ErrUnavailable)
	}
	client := &http.Client{Timeout: c.timeout, Transport: c.transport(target.TLSName), CheckRedirect: limitRedirects}
	resp, err := c.get(ctx, client, target, "/_matrix/key/v2/server", "")
	if err != nil {
		return serverKeys{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return serverKeys{}, fmt.Errorf("keys of %s: status %d: %w", server, resp.StatusCode, ErrUnavailable)
	}
	return parseServerKeys(io.LimitReader(resp.Body, 1<<20), server, now)
}

// parseServerKeys reads a /_matrix/key/v2/server response for server and
// checks that one of its verify_keys signed it.
func parseServerKeys(r io.Reader, server string, now time.Time) (serverKeys, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber() // canonical JSON must see the integers as sent
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return serverKeys{}, fmt.Errorf("keys of %s: %v: %w", server, err, ErrUnavailable)
	}
	if doc["server_name"] != server {
		return serverKeys{}, fmt.Errorf("keys of %s name %v: %w", server, doc["server_name"], ErrBadAuth)
	}
	sk := serverKeys{keys: map[string]ed25519.PublicKey{}, until: now.Add(maxKeyValidity)}
	verify, _ := doc["verify_keys"].(map[string]any)
	for id, v := range verify {
		entry, _ := v.(map[string]any)
		s, _ := entry["key"].(string)
		if pub, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "=")); err == nil && len(pub) == ed25519.PublicKeySize {
			sk.keys[id] = pub
		}
	}
	if ts, ok := doc["valid_until_ts"].(json.Number); ok {
		if ms, err := ts.Int64(); err == nil && time.UnixMilli(ms).Before(sk.until) {
			sk.until = time.UnixMilli(ms)
		}
	}
	sigs, _ := doc["signatures"].(map[string]any)
	own, _ := sigs[server].(map[string]any)
	signed := make(map[string]any, len(doc))
	for k, v := range doc {
		if k != "signatures" && k != "unsigned" {
			signed[k] = v
		}
	}
	canonical, err := CanonicalJSON(signed)
	if err != nil {
		return serverKeys{}, err
	}
	for id, s := range own {
		str, _ := s.(string)
		sig, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(str, "="))
		if pub := sk.keys[id]; pub != nil && err == nil && ed25519.Verify(pub, canonical, sig) {
			return sk, nil
		}
	}
	return serverKeys{}, fmt.Errorf("keys of %s are not self-signed: %w", server, ErrBadAuth)
}

// KeyResponse is our own /_matrix/key/v2/server document for serverName,
// signed with k; tests and the keys command use it.
func (k *SigningKey) KeyResponse(serverName string, validUntil time.Time) ([]byte, error) {
	doc := map[string]any{
		"server_name":     serverName,
		"verify_keys":     map[string]any{k.ID: map[string]any{"key": k.PublicKey()}},
		"old_verify_keys": map[string]any{},
		"valid_until_ts":  validUntil.UnixMilli(),
	}
	sig, err := k.Sign(doc)
	if err != nil {
		return nil, err
	}
	doc["signatures"] = map[string]any{serverName: map[string]any{k.ID: sig}}
	return CanonicalJSON(doc)
}
