// Package preview makes URL previews: it fetches a page (or image) through a
// guarded HTTP client and extracts OpenGraph data, falling back to <title>
// and the meta description. Hostile pages are expected: sizes are capped
// after decompression, redirects are limited, the charset is detected, and
// HTML is read as a token stream, never as a tree, so deep nesting costs
// nothing. Service wraps the Fetcher for /preview_url: answers cached per URL,
// hour and language, made once however many ask, with og:image stored as
// media. It imports storage, netguard and config from this module.
package preview

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	_ "image/gif" // image sizes for og:image
	_ "image/jpeg"
	_ "image/png"

	"golang.org/x/image/webp"
	"golang.org/x/net/html"
	"golang.org/x/net/html/charset"

	"github.com/mediarepo/mediarepo/config"
)

// Errors of a preview.
var (
	ErrTooLarge = errors.New("page or image larger than the limit")
	ErrFetch    = errors.New("the URL could not be fetched")
)

// maxRedirects follows as many redirects as a browser would bother with.
const maxRedirects = 5

// Result is a preview: OpenGraph fields as strings or numbers, and the image
// to store for og:image, if any.
type Result struct {
	OG    map[string]any
	Image *Image
}

// Image is a fetched og:image (or the previewed URL itself, if it is one).
type Image struct {
	Data          []byte
	ContentType   string
	Width, Height int // 0 when unknown
}

// Fetcher makes previews with one HTTP client, which must refuse unsafe
// addresses itself (netguard).
type Fetcher struct {
	cfg    config.URLPreviews
	client *http.Client
}

// NewFetcher returns a Fetcher that uses client, limiting its redirects.
func NewFetcher(cfg config.URLPreviews, client *http.Client) *Fetcher {
	c := *client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fmt.Errorf("more than %d redirects", maxRedirects)
		}
		if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
			return fmt.Errorf("redirect to a %s URL", req.URL.Scheme)
		}
		return nil
	}
	return &Fetcher{cfg: cfg, client: &c}
}

// Preview fetches target and describes it. lang is sent as Accept-Language.
func (f *Fetcher) Preview(ctx context.Context, target *url.URL, lang string) (*Result, error) {
	body, contentType, final, err := f.fetch(ctx, target, lang)
	if err != nil {
		return nil, err
	}
	mediaType, _, _ := mime.ParseMediaType(contentType)
	switch {
	case mediaType == "text/html" || mediaType == "application/xhtml+xml":
		return f.fromHTML(ctx, body, contentType, final, lang), nil
	case f.filePreviewType(mediaType) && strings.HasPrefix(mediaType, "image/"):
		img := describeImage(body, mediaType)
		return &Result{OG: map[string]any{}, Image: img}, nil
	}
	return &Result{OG: map[string]any{}}, nil
}

// fetch GETs u with the size limit applied to the decompressed body.
func (f *Fetcher) fetch(ctx context.Context, u *url.URL, lang string) ([]byte, string, *url.URL, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, "", nil, fmt.Errorf("%v: %w", err, ErrFetch)
	}
	req.Header.Set("User-Agent", f.cfg.UserAgent)
	req.Header.Set("Accept-Language", lang)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,image/*;q=0.9,*/*;q=0.5")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, "", nil, fmt.Errorf("get %s: %w: %w", u.Redacted(), ErrFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", nil, fmt.Errorf("get %s: status %d: %w", u.Redacted(), resp.StatusCode, ErrFetch)
	}
	// net/http decompresses gzip itself, so the limit counts decompressed bytes.
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.MaxPageSizeBytes+1))
	if err != nil {
		return nil, "", nil, fmt.Errorf("read %s: %w: %w", u.Redacted(), ErrFetch, err)
	}
	if int64(len(body)) > f.cfg.MaxPageSizeBytes {
		return nil, "", nil, fmt.Errorf("%s: %w", u.Redacted(), ErrTooLarge)
	}
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		ct = http.DetectContentType(body)
	}
	return body, ct, resp.Request.URL, nil
}

func (f *Fetcher) filePreviewType(mediaType string) bool {
	for _, pattern := range f.cfg.FilePreviewTypes {
		if pattern == "*/*" || pattern == mediaType ||
			(strings.HasSuffix(pattern, "/*") && strings.HasPrefix(mediaType, strings.TrimSuffix(pattern, "*"))) {
			return true
		}
	}
	return false
}

// fromHTML extracts OpenGraph data and fetches og:image.
func (f *Fetcher) fromHTML(ctx context.Context, body []byte, contentType string, base *url.URL, lang string) *Result {
	og, title, description := scanHTML(decode(body, contentType))
	if _, ok := og["og:title"]; !ok && title != "" {
		og["og:title"] = title
	}
	if _, ok := og["og:description"]; !ok && description != "" {
		og["og:description"] = description
	}
	if t, ok := og["og:title"].(string); ok {
		og["og:title"] = truncate(t, f.cfg.NumTitleWords, f.cfg.MaxTitleLength)
	}
	if d, ok := og["og:description"].(string); ok {
		og["og:description"] = truncate(d, f.cfg.NumWords, f.cfg.MaxLength)
	}
	res := &Result{OG: og}
	src, _ := og["og:image"].(string)
	delete(og, "og:image") // replaced by an mxc:// URI once stored, or dropped
	if src == "" {
		return res
	}
	imgURL, err := base.Parse(src)
	if err != nil || (imgURL.Scheme != "http" && imgURL.Scheme != "https") {
		return res
	}
	data, ct, _, err := f.fetch(ctx, imgURL, lang)
	if err != nil {
		return res // a page without its image is still a preview
	}
	mediaType, _, _ := mime.ParseMediaType(ct)
	if strings.HasPrefix(mediaType, "image/") {
		res.Image = describeImage(data, mediaType)
	}
	return res
}

// decode converts body to UTF-8 using the Content-Type charset, a BOM or a
// <meta charset>, as browsers do.
func decode(body []byte, contentType string) io.Reader {
	r, err := charset.NewReader(bytes.NewReader(body), contentType)
	if err != nil {
		return bytes.NewReader(body)
	}
	return r
}

// scanHTML reads meta tags and the title from a token stream.
func scanHTML(r io.Reader) (og map[string]any, title, description string) {
	og = map[string]any{}
	z := html.NewTokenizer(r)
	inTitle := false
	for {
		switch z.Next() {
		case html.ErrorToken:
			return og, strings.TrimSpace(title), description
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			switch string(name) {
			case "title":
				inTitle = title == ""
			case "meta":
				if !hasAttr {
					continue
				}
				var key, content string
				for {
					k, v, more := z.TagAttr()
					switch string(k) {
					case "property", "name":
						if key == "" || strings.HasPrefix(string(v), "og:") {
							key = strings.ToLower(string(v))
						}
					case "content":
						content = string(v)
					}
					if !more {
						break
					}
				}
				switch {
				case strings.HasPrefix(key, "og:") && len(key) < 64 && content != "":
					if _, seen := og[key]; !seen && len(og) < 64 {
						og[key] = clean(content)
					}
				case key == "description" && description == "":
					description = clean(content)
				}
			}
		case html.TextToken:
			if inTitle && len(title) < 4096 {
				title += string(z.Text())
			}
		case html.EndTagToken:
			if name, _ := z.TagName(); string(name) == "title" {
				inTitle = false
			}
		}
	}
}

// clean folds white space and drops invalid UTF-8.
func clean(s string) string {
	return strings.Join(strings.Fields(strings.ToValidUTF8(s, "")), " ")
}

// truncate keeps at most words words, then at most chars characters,
// dropping a word cut in half and marking the cut with an ellipsis.
func truncate(s string, words, chars int) string {
	fields := strings.Fields(s)
	cut := len(fields) > words
	if cut {
		fields = fields[:words]
	}
	out := strings.Join(fields, " ")
	if utf8.RuneCountInString(out) > chars {
		runes := []rune(out)[:chars]
		out = string(runes)
		if i := strings.LastIndexByte(out, ' '); i > 0 {
			out = out[:i]
		}
		cut = true
	}
	if cut {
		out += "…"
	}
	return out
}

// describeImage reads an image's size from its header, if it is one Go reads.
func describeImage(data []byte, contentType string) *Image {
	img := &Image{Data: data, ContentType: contentType}
	var cfg image.Config
	var err error
	if contentType == "image/webp" {
		cfg, err = webp.DecodeConfig(bytes.NewReader(data))
	} else {
		cfg, _, err = image.DecodeConfig(bytes.NewReader(data))
	}
	if err == nil {
		img.Width, img.Height = cfg.Width, cfg.Height
	}
	return img
}
