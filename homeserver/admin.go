package homeserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/mediarepo/mediarepo/config"
)

// Errors of the admin calls.
var (
	// ErrNoRoomMediaAPI: the homeserver has no API that lists a room's media
	// (only Synapse's admin API has one).
	ErrNoRoomMediaAPI = errors.New("homeserver has no API listing a room's media")
	// ErrNotAdmin: the homeserver refused an admin call for this token.
	ErrNotAdmin = errors.New("not an admin of the homeserver")
	// ErrUnknownRoom: the homeserver does not know the room.
	ErrUnknownRoom = errors.New("unknown room")
)

// adminProbe is the user whose whois only an admin may read; it need not
// exist (matrix-media-repo asks the same).
const adminProbe = "@media.repo.admin.check:"

// AdminChecker tells whether an access token belongs to an admin of its
// homeserver.
type AdminChecker interface {
	IsAdmin(ctx context.Context, hs *config.Homeserver, token string) (bool, error)
}

var _ AdminChecker = (*Client)(nil)

// IsAdmin asks hs, as the token's owner, for the whois of a user only an
// admin may look up: the spec's admin whois, or Synapse's with adminApiKind
// synapse. A 200 means admin; a refusal (401, 403, 404) means not; anything
// else is ErrUnreachable.
func (c *Client) IsAdmin(ctx context.Context, hs *config.Homeserver, token string) (bool, error) {
	path := "/_matrix/client/v3/admin/whois/"
	if hs.AdminAPIKind == config.AdminAPISynapse {
		path = "/_synapse/admin/v1/whois/"
	}
	status, _, err := c.call(ctx, hs, http.MethodGet, path+url.PathEscape(adminProbe+hs.Name), token)
	switch {
	case err != nil:
		return false, err
	case status == http.StatusOK:
		return true, nil
	case status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusNotFound || status == http.StatusBadRequest:
		return false, nil
	}
	return false, fmt.Errorf("admin whois on %s: status %d: %w", hs.Name, status, ErrUnreachable)
}

// RoomMedia lists the mxc URIs used in a room, local and remote, through
// Synapse's admin API with the caller's token.
func (c *Client) RoomMedia(ctx context.Context, hs *config.Homeserver, token, roomID string) (local, remote []string, err error) {
	if hs.AdminAPIKind != config.AdminAPISynapse {
		kind := hs.AdminAPIKind
		if kind == "" {
			kind = config.AdminAPIMatrix
		}
		return nil, nil, fmt.Errorf("%s (adminApiKind %s): %w", hs.Name, kind, ErrNoRoomMediaAPI)
	}
	status, body, err := c.call(ctx, hs, http.MethodGet, "/_synapse/admin/v1/room/"+url.PathEscape(roomID)+"/media", token)
	if err != nil {
		return nil, nil, err
	}
	switch status {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		return nil, nil, fmt.Errorf("room media of %s on %s: %w", roomID, hs.Name, ErrNotAdmin)
	case http.StatusNotFound, http.StatusBadRequest:
		return nil, nil, fmt.Errorf("room %s on %s: %w", roomID, hs.Name, ErrUnknownRoom)
	default:
		return nil, nil, fmt.Errorf("room media on %s: status %d: %w", hs.Name, status, ErrUnreachable)
	}
	var list struct {
		Local  []string `json:"local"`
		Remote []string `json:"remote"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, nil, fmt.Errorf("room media on %s: %v: %w", hs.Name, err, ErrUnreachable)
	}
	return list.Local, list.Remote, nil
}

// AvatarURL is userID's avatar as hs's profile API tells the token's owner;
// "" when there is none.
func (c *Client) AvatarURL(ctx context.Context, hs *config.Homeserver, token, userID string) (string, error) {
	status, body, err := c.call(ctx, hs, http.MethodGet, "/_matrix/client/v3/profile/"+url.PathEscape(userID)+"/avatar_url", token)
	if err != nil {
		return "", err
	}
	if status == http.StatusNotFound {
		return "", nil
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("profile of %s on %s: status %d: %w", userID, hs.Name, status, ErrUnreachable)
	}
	var p struct {
		AvatarURL string `json:"avatar_url"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return "", fmt.Errorf("profile of %s on %s: %v: %w", userID, hs.Name, err, ErrUnreachable)
	}
	return p.AvatarURL, nil
}

// Logouter relays logouts to homeservers.
type Logouter interface {
	Logout(ctx context.Context, hs *config.Homeserver, token string, all bool) (*Reply, error)
}

var _ Logouter = (*Client)(nil)

// Reply is a homeserver's answer, relayed as it is.
type Reply struct {
	Status      int
	ContentType string
	Body        []byte
}

// Logout relays a logout (of the token's device, or with all of every
// device of its user) to hs and returns its answer.
func (c *Client) Logout(ctx context.Context, hs *config.Homeserver, token string, all bool) (*Reply, error) {
	path := "/_matrix/client/v3/logout"
	if all {
		path += "/all"
	}
	req, err := c.request(ctx, hs, http.MethodPost, path, token)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(strings.NewReader("{}"))
	req.ContentLength = 2
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, hs, "logout", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
	if err != nil {
		return nil, fmt.Errorf("read logout reply from %s: %v: %w", hs.Name, err, ErrUnreachable)
	}
	return &Reply{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: body}, nil
}

// call makes a request to hs as the token's owner and returns the status
// and (bounded) body.
func (c *Client) call(ctx context.Context, hs *config.Homeserver, method, path, token string) (int, []byte, error) {
	req, err := c.request(ctx, hs, method, path, token)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, c.transportError(ctx, hs, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxListBytes))
	if err != nil {
		return 0, nil, fmt.Errorf("read reply from %s: %v: %w", hs.Name, err, ErrUnreachable)
	}
	return resp.StatusCode, body, nil
}

// maxListBytes bounds a listing's answer (a room's media).
const maxListBytes = 16 << 20

func (c *Client) request(ctx context.Context, hs *config.Homeserver, method, path, token string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(hs.CSAPI, "/")+path, nil)
	if err != nil {
		return nil, fmt.Errorf("build request for %s: %w", hs.Name, ErrUnreachable)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return req, nil
}

// transportError is a failed call's error; it may name the URL but never
// the token, which travels in a header.
func (c *Client) transportError(ctx context.Context, hs *config.Homeserver, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%s on %s: %v: %w", what, hs.Name, err, ErrUnreachable)
}

// TokenKey is what caches and broadcasts name a token by: never the token.
func TokenKey(hs *config.Homeserver, token string) string {
	sum := sha256.Sum256([]byte(hs.Name + "\x00" + token))
	return hex.EncodeToString(sum[:])
}

// CachedAdmins remembers IsAdmin answers of another AdminChecker for ttl.
type CachedAdmins struct {
	next    AdminChecker
	ttl     time.Duration
	answers *lru.Cache[string, adminAnswer]
	now     func() time.Time
}

type adminAnswer struct {
	admin   bool
	expires time.Time
}

// NewCachedAdmins wraps next; a ttl of zero or less asks every time.
func NewCachedAdmins(next AdminChecker, ttl time.Duration) *CachedAdmins {
	answers, _ := lru.New[string, adminAnswer](rejectedEntries)
	return &CachedAdmins{next: next, ttl: ttl, answers: answers, now: time.Now}
}

// IsAdmin implements AdminChecker. Failures are not remembered.
func (c *CachedAdmins) IsAdmin(ctx context.Context, hs *config.Homeserver, token string) (bool, error) {
	key := TokenKey(hs, token)
	if a, ok := c.answers.Get(key); ok && c.now().Before(a.expires) {
		return a.admin, nil
	}
	admin, err := c.next.IsAdmin(ctx, hs, token)
	if err == nil && c.ttl > 0 {
		c.answers.Add(key, adminAnswer{admin: admin, expires: c.now().Add(c.ttl)})
	}
	return admin, err
}

// Forget drops what is remembered of a token (after a logout).
func (c *CachedAdmins) Forget(key string) { c.answers.Remove(key) }
