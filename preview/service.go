package preview

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/flight"
	"github.com/mediarepo/mediarepo/netguard"
	"github.com/mediarepo/mediarepo/storage"
)

// ImageStore keeps a preview's image as media; media.Service is one.
type ImageStore interface {
	Save(ctx context.Context, origin, contentType string, data []byte) (*storage.Media, error)
}

// ServiceOptions are a Service's dependencies.
type ServiceOptions struct {
	Config config.URLPreviews
	// Timeout bounds one preview, page and image (timeouts.urlPreviewTimeoutSeconds).
	Timeout time.Duration
	Fetcher *Fetcher
	Cache   storage.PreviewStore
	Images  ImageStore
	Log     *logrus.Entry
}

// Service answers /preview_url. Answers, failures included, are cached per
// homeserver, URL, hour and language; concurrent requests for one share a
// fetch; at most urlPreviews.numWorkers previews are fetched at once. The
// retention service removes cached answers past urlPreviews.expireAfterDays.
type Service struct {
	fetcher *Fetcher
	cache   storage.PreviewStore
	images  ImageStore
	log     *logrus.Entry
	flight  *flight.Group[*storage.URLPreview]
	slots   chan struct{}
	now     func() time.Time
}

// NewService checks opts and returns the Service.
func NewService(opts ServiceOptions) (*Service, error) {
	if opts.Fetcher == nil || opts.Cache == nil || opts.Images == nil || opts.Log == nil || opts.Timeout <= 0 {
		return nil, errors.New("preview.NewService: Fetcher, Cache, Images, Log and Timeout are required")
	}
	s := &Service{
		fetcher: opts.Fetcher, cache: opts.Cache, images: opts.Images, log: opts.Log,
		flight: flight.New[*storage.URLPreview](opts.Timeout),
		slots:  make(chan struct{}, max(1, opts.Config.NumWorkers)),
		now:    time.Now,
	}
	return s, nil
}

// Close cancels previews under way and waits for them.
func (s *Service) Close() error {
	s.flight.Close()
	return nil
}

// Preview returns the answer to a preview of target for users of the
// homeserver origin at time ts in language lang: the JSON body and status to
// send, from the cache or made now. A page that cannot be previewed is an
// answer too (a Matrix error body), cached like any other.
//
// ts picks a cached answer of its hour if there is one. Anything fetched is
// fetched now and kept under the current hour, as the spec lets a server
// answer with a newer preview: a ts in the future, or one in the past with no
// answer kept, causes no fetch of its own and no row of its own.
func (s *Service) Preview(ctx context.Context, origin string, target *url.URL, ts time.Time, lang string) (*storage.URLPreview, error) {
	now := s.now()
	current := now.UnixMilli() / time.Hour.Milliseconds()
	if bucket := ts.UnixMilli() / time.Hour.Milliseconds(); bucket < current {
		p, err := s.cache.URLPreview(ctx, origin, target.String(), bucket, lang)
		if !errors.Is(err, storage.ErrNotFound) {
			return p, err
		}
	}
	bucket := current
	p, err := s.cache.URLPreview(ctx, origin, target.String(), bucket, lang)
	if !errors.Is(err, storage.ErrNotFound) {
		return p, err
	}
	// Keyed by homeserver like the cache: the image becomes media of origin.
	key := origin + "\x00" + target.String() + "\x00" + strconv.FormatInt(bucket, 10) + "\x00" + lang
	return s.flight.Do(ctx, key, func(ctx context.Context) (*storage.URLPreview, error) {
		return s.make(ctx, origin, target, bucket, lang)
	})
}

// make fetches target, stores its image and caches the answer.
func (s *Service) make(ctx context.Context, origin string, target *url.URL, bucket int64, lang string) (*storage.URLPreview, error) {
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	entry := &storage.URLPreview{ServerName: origin, URL: target.String(), Bucket: bucket, Lang: lang, CreatedAt: s.now()}
	res, err := s.fetcher.Preview(ctx, target, lang)
	if err == nil && res.Image != nil {
		err = s.storeImage(ctx, origin, res)
	}
	if errors.Is(err, context.Canceled) {
		return nil, err // shutting down: nothing to remember about the page
	}
	if err != nil {
		f := classify(err)
		s.log.WithError(err).WithField("errcode", f.Code).Debug("url preview failed")
		b, _ := json.Marshal(f)
		entry.Status, entry.Errcode, entry.Body = f.status, f.Code, string(b)
	} else {
		b, err := json.Marshal(res.OG)
		if err != nil {
			return nil, err
		}
		entry.Status, entry.Body = http.StatusOK, string(b)
	}
	if err := s.cache.CreateURLPreview(ctx, entry); err != nil {
		return nil, err
	}
	return entry, nil
}

// storeImage keeps the preview's image as media of origin and points og:image
// at it.
func (s *Service) storeImage(ctx context.Context, origin string, res *Result) error {
	img := res.Image
	m, err := s.images.Save(ctx, origin, img.ContentType, img.Data)
	if err != nil {
		return err
	}
	res.OG["og:image"] = "mxc://" + m.Origin + "/" + m.MediaID
	res.OG["og:image:type"] = img.ContentType
	res.OG["matrix:image:size"] = m.SizeBytes
	if img.Width > 0 {
		res.OG["og:image:width"], res.OG["og:image:height"] = img.Width, img.Height
	}
	return nil
}

// failure is a failed preview as the client sees it: a Matrix error.
type failure struct {
	status  int
	Code    string `json:"errcode"`
	Message string `json:"error"`
}

// classify says how a failed preview is answered.
func classify(err error) failure {
	switch {
	case netguard.Blocked(err):
		return failure{403, "M_FORBIDDEN", "This URL may not be previewed"}
	case errors.Is(err, ErrTooLarge):
		return failure{502, "M_TOO_LARGE", "The page is too large to preview"}
	case errors.Is(err, context.DeadlineExceeded):
		return failure{504, "M_UNKNOWN", "The page took too long to fetch"}
	}
	return failure{502, "M_UNKNOWN", "The URL could not be fetched"}
}
