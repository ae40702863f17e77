// Package homeserver talks to the homeservers mediarepo serves: it checks
// access tokens against their client-server API and caches the answers. It
// imports only config from this module.
package homeserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mediarepo/mediarepo/config"
)

// maxReplyBytes bounds what is read from a homeserver's answer.
const maxReplyBytes = 64 << 10

// Client calls homeservers' client-server APIs over one shared http.Client.
type Client struct {
	http *http.Client
}

var _ Authenticator = (*Client)(nil)

// NewClient returns a Client whose calls give up after timeout, keeping
// enough idle connections per homeserver for a busy server's token checks.
func NewClient(timeout time.Duration) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &Client{http: &http.Client{Timeout: timeout, Transport: tr}}
}

// WhoAmI asks hs who owns token, via GET /_matrix/client/v3/account/whoami.
func (c *Client) WhoAmI(ctx context.Context, hs *config.Homeserver, token string) (Identity, error) {
	url := strings.TrimSuffix(hs.CSAPI, "/") + "/_matrix/client/v3/account/whoami"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Identity{}, fmt.Errorf("build whoami request for %s: %w", hs.Name, ErrUnreachable)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return Identity{}, ctx.Err()
		}
		// err may hold the URL but never the token, which travels in a header.
		return Identity{}, fmt.Errorf("whoami on %s: %v: %w", hs.Name, err, ErrUnreachable)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
	if err != nil {
		return Identity{}, fmt.Errorf("read whoami reply from %s: %v: %w", hs.Name, err, ErrUnreachable)
	}

	if resp.StatusCode == http.StatusOK {
		var id struct {
			UserID   string `json:"user_id"`
			DeviceID string `json:"device_id"`
			IsGuest  bool   `json:"is_guest"`
		}
		if err := json.Unmarshal(body, &id); err != nil || id.UserID == "" {
			return Identity{}, fmt.Errorf("whoami on %s: reply has no user_id: %w", hs.Name, ErrUnreachable)
		}
		return Identity{UserID: id.UserID, DeviceID: id.DeviceID, IsGuest: id.IsGuest}, nil
	}
	var merr struct {
		Code         string `json:"errcode"`
		Message      string `json:"error"`
		SoftLogout   bool   `json:"soft_logout"`
		RetryAfterMS int64  `json:"retry_after_ms"`
	}
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && json.Unmarshal(body, &merr) == nil && merr.Code != "" {
		te := &TokenError{Status: resp.StatusCode, Code: merr.Code, Message: merr.Message, SoftLogout: merr.SoftLogout}
		if resp.StatusCode == http.StatusTooManyRequests {
			te.RetryAfter = time.Duration(merr.RetryAfterMS) * time.Millisecond
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				te.RetryAfter = time.Duration(s) * time.Second
			}
		}
		return Identity{}, te
	}
	return Identity{}, fmt.Errorf("whoami on %s: status %d: %w", hs.Name, resp.StatusCode, ErrUnreachable)
}
