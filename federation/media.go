package federation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/mediarepo/mediarepo/flight"
)

// Errors of a remote fetch.
var (
	// ErrNotFound: the remote server says the media does not exist.
	ErrNotFound = errors.New("remote media not found")
	// ErrUnavailable: the remote server could not be asked or did not answer usefully.
	ErrUnavailable = errors.New("remote server unavailable")
)

// Remote is remote media on its way in. The caller reads and closes Body.
type Remote struct {
	ContentType string
	FileName    string
	Body        io.ReadCloser
}

// Client fetches media from other servers. Requests are signed with the key
// of the local homeserver they are made for, when it has one.
type Client struct {
	resolver *Resolver
	keys     map[string]*SigningKey // by local server name
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	roots    *x509.CertPool // nil: the system's
	timeout  time.Duration
	plain    *http.Client // for Location parts: unauthenticated, guarded

	transports *lru.Cache[string, *http.Transport] // by TLS server name
	serverKeys *lru.Cache[string, serverKeys]      // by server name
	keyFetches *flight.Group[serverKeys]
	mu         sync.Mutex // makes transport's look-up and creation one step
}

// transportEntries bounds the transports kept, one per remote TLS name; an
// evicted one has its idle connections closed.
const transportEntries = 1_000

// ClientOptions are a Client's dependencies.
type ClientOptions struct {
	Resolver *Resolver
	Keys     map[string]*SigningKey
	// Dial must refuse disallowed addresses (netguard).
	Dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	Roots   *x509.CertPool
	Timeout time.Duration
}

// NewClient returns a Client.
func NewClient(o ClientOptions) *Client {
	c := &Client{resolver: o.Resolver, keys: o.Keys, dial: o.Dial, roots: o.Roots, timeout: o.Timeout,
		keyFetches: flight.New[serverKeys](o.Timeout)}
	c.transports, _ = lru.NewWithEvict[string, *http.Transport](transportEntries, func(_ string, t *http.Transport) {
		t.CloseIdleConnections()
	})
	c.serverKeys, _ = lru.New[string, serverKeys](keyCacheEntries)
	c.plain = &http.Client{Timeout: o.Timeout, Transport: c.transport(""), CheckRedirect: limitRedirects}
	return c
}

// Close cancels key fetches under way and closes idle connections.
func (c *Client) Close() error {
	c.keyFetches.Close()
	for _, t := range c.transports.Values() {
		t.CloseIdleConnections()
	}
	return nil
}

func limitRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("too many redirects")
	}
	return nil
}

// transport returns the transport verifying certificates for tlsName ("":
// the request's own host).
func (c *Client) transport(tlsName string) *http.Transport {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.transports.Get(tlsName); ok {
		return t
	}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           c.dial,
		TLSClientConfig:       &tls.Config{ServerName: tlsName, RootCAs: c.roots},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: c.timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       time.Minute,
	}
	c.transports.Add(tlsName, t)
	return t
}

// Download fetches mediaID from server for the local homeserver origin:
// first the authenticated federation route, then, if the remote does not
// support it, the legacy client route.
func (c *Client) Download(ctx context.Context, origin, server, mediaID string) (*Remote, error) {
	target, err := c.resolver.Resolve(ctx, server)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrUnavailable)
	}
	client := &http.Client{Timeout: c.timeout, Transport: c.transport(target.TLSName), CheckRedirect: limitRedirects}
	if key := c.keys[origin]; key != nil {
		r, err := c.federationDownload(ctx, client, target, key, origin, server, mediaID)
		if err == nil || errors.Is(err, ErrNotFound) {
			return r, err
		}
	}
	return c.legacyDownload(ctx, client, target, server, mediaID)
}

func (c *Client) federationDownload(ctx context.Context, client *http.Client, t Target, key *SigningKey, origin, server, mediaID string) (*Remote, error) {
	uri := "/_matrix/federation/v1/media/download/" + url.PathEscape(mediaID) + "?timeout_ms=20000"
	auth, err := key.Authorization(http.MethodGet, uri, origin, server)
	if err != nil {
		return nil, err
	}
	resp, err := c.get(ctx, client, t, uri, auth)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, statusError(resp)
	}
	mediaType, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/mixed" || params["boundary"] == "" {
		resp.Body.Close()
		return nil, fmt.Errorf("federation download from %s: not multipart/mixed: %w", server, ErrUnavailable)
	}
	mr := multipart.NewReader(resp.Body, params["boundary"])
	meta, err := mr.NextPart()
	if err == nil {
		var js map[string]any
		err = json.NewDecoder(io.LimitReader(meta, 64<<10)).Decode(&js)
	}
	if err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("federation download from %s: first part is not JSON: %w", server, ErrUnavailable)
	}
	part, err := mr.NextPart()
	if err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("federation download from %s: no media part: %w", server, ErrUnavailable)
	}
	if loc := part.Header.Get("Location"); loc != "" {
		resp.Body.Close()
		return c.followLocation(ctx, loc)
	}
	return &Remote{
		ContentType: part.Header.Get("Content-Type"),
		FileName:    fileName(part.Header.Get("Content-Disposition")),
		Body:        readCloser{part, resp.Body},
	}, nil
}

// followLocation fetches a Location part: unauthenticated, still guarded.
func (c *Client) followLocation(ctx context.Context, loc string) (*Remote, error) {
	u, err := url.Parse(loc)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("location %q: %w", loc, ErrUnavailable)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.plain.Do(req)
	if err != nil {
		return nil, fmt.Errorf("location %s: %w: %w", u.Redacted(), ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, statusError(resp)
	}
	return remoteFrom(resp), nil
}

func (c *Client) legacyDownload(ctx context.Context, client *http.Client, t Target, server, mediaID string) (*Remote, error) {
	uri := "/_matrix/media/v3/download/" + url.PathEscape(server) + "/" + url.PathEscape(mediaID) +
		"?allow_remote=false&allow_redirect=true&timeout_ms=20000"
	resp, err := c.get(ctx, client, t, uri, "")
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, statusError(resp)
	}
	return remoteFrom(resp), nil
}

func (c *Client) get(ctx context.Context, client *http.Client, t Target, uri, auth string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+t.Addr+uri, nil)
	if err != nil {
		return nil, err
	}
	req.Host = t.Host
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s%s: %w: %w", t.Host, uri, ErrUnavailable, err)
	}
	return resp, nil
}

// statusError reads a non-200 answer: a 404 M_NOT_FOUND is definite,
// anything else means "try another way" or "unavailable".
func statusError(resp *http.Response) error {
	var body struct {
		Code string `json:"errcode"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	if resp.StatusCode == http.StatusNotFound && body.Code == "M_NOT_FOUND" {
		return ErrNotFound
	}
	return fmt.Errorf("status %d %s: %w", resp.StatusCode, body.Code, ErrUnavailable)
}

func remoteFrom(resp *http.Response) *Remote {
	return &Remote{
		ContentType: resp.Header.Get("Content-Type"),
		FileName:    fileName(resp.Header.Get("Content-Disposition")),
		Body:        resp.Body,
	}
}

// fileName takes filename (or filename*) from a Content-Disposition.
func fileName(disposition string) string {
	if _, params, err := mime.ParseMediaType(disposition); err == nil {
		return params["filename"]
	}
	return ""
}

// readCloser reads a multipart part and closes the response under it.
type readCloser struct {
	io.Reader
	io.Closer
}

// Test is what asking a server for its version found (matrix-media-repo's
// federation test).
type Test struct {
	BaseURL  string          // where requests went
	Hostname string          // the TLS name and Host
	Versions json.RawMessage // its /_matrix/federation/v1/version answer
}

// Version resolves server and asks it for /_matrix/federation/v1/version:
// whether federation with it works from here.
func (c *Client) Version(ctx context.Context, server string) (*Test, error) {
	target, err := c.resolver.Resolve(ctx, server)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrUnavailable)
	}
	client := &http.Client{Timeout: c.timeout, Transport: c.transport(target.TLSName), CheckRedirect: limitRedirects}
	resp, err := c.get(ctx, client, target, "/_matrix/federation/v1/version", "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("read version of %s: %w: %w", server, ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK || !json.Valid(body) {
		return nil, fmt.Errorf("version of %s: status %d: %w", server, resp.StatusCode, ErrUnavailable)
	}
	return &Test{BaseURL: "https://" + target.Addr, Hostname: target.Host, Versions: body}, nil
}
