// Package s3 is the S3-compatible datastore (AWS, MinIO, SeaweedFS,
// Backblaze B2, ...), through minio-go. Blobs are objects named by their
// SHA-256 (after prefixLength characters of it and a slash, if set). An
// upload is hashed into an unlinked file of tempPath on the way in, so a
// crash leaves nothing behind and no part is held in memory, and sent from
// that file on Commit (in parts, for large ones). Reads are ranged GETs.
// Outages are storage.ErrUnavailable, so the edge answers 503. It imports
// only storage.
package s3

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/mediarepo/mediarepo/storage"
)

var (
	_ storage.BlobStore  = (*Store)(nil)
	_ storage.Checker    = (*Store)(nil)
	_ storage.Redirector = (*Store)(nil)
)

// Options are a datastore's opts.
type Options struct {
	Endpoint     string // host[:port]
	AccessKeyID  string
	AccessSecret string
	SSL          bool
	Bucket       string
	Region       string
	StorageClass string
	// PrefixLength puts objects under the first that many characters of
	// their hash and a slash ("abc/abc123..."), for providers that limit
	// objects per prefix.
	PrefixLength int
	// PublicBaseURL, if set, is where the bucket's objects can be fetched
	// (a CDN, a public bucket): media shown inline is redirected there.
	PublicBaseURL string
	// PresignSeconds, if positive, redirects to presigned URLs that long-lived.
	PresignSeconds int
	// TempPath holds uploads until they are sent; "" is the system's.
	TempPath string
	// Multipart sends large blobs in parts (some providers lack it).
	Multipart bool
	// Transport, if set, carries the requests (tests count them).
	Transport http.RoundTripper
}

// partSize is the size of the parts of a multipart upload: the parts are
// read from the staged file, never held in memory.
const partSize = 16 << 20

// Store is one bucket.
type Store struct {
	c *minio.Client
	o Options
}

// Open connects to the bucket and checks that it exists.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Transport == nil {
		o.Transport = transport()
	}
	var creds *credentials.Credentials
	if o.AccessKeyID != "" {
		creds = credentials.NewStaticV4(o.AccessKeyID, o.AccessSecret, "")
	} else {
		creds = credentials.New(&credentials.Static{}) // anonymous
	}
	c, err := minio.New(o.Endpoint, &minio.Options{
		Creds: creds, Secure: o.SSL, Region: o.Region, Transport: o.Transport,
		MaxRetries: 3, // with minio-go's backoff (200 ms doubling, capped at 1 s): an outage answers within seconds
	})
	if err != nil {
		return nil, fmt.Errorf("s3 endpoint %q: %w", o.Endpoint, err)
	}
	if o.TempPath == "" {
		o.TempPath = os.TempDir()
	}
	if err := os.MkdirAll(o.TempPath, 0o700); err != nil {
		return nil, fmt.Errorf("s3 tempPath: %w", err)
	}
	s := &Store{c: c, o: o}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ok, err := c.BucketExists(ctx, o.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3 bucket %q at %s: %w", o.Bucket, o.Endpoint, classify(err))
	}
	if !ok {
		return nil, fmt.Errorf("s3 bucket %q does not exist at %s", o.Bucket, o.Endpoint)
	}
	return s, nil
}

// transport bounds each step of a request, so an unreachable endpoint
// fails in seconds instead of hanging a request.
func transport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   64,
	}
}

// Bucket names the store, for logs.
func (s *Store) Bucket() string { return s.o.Bucket }

// key is the object name of a blob.
func (s *Store) key(sum string) string {
	if n := s.o.PrefixLength; n > 0 {
		return sum[:min(n, len(sum))] + "/" + sum
	}
	return sum
}

// Stage implements storage.BlobStore.
func (s *Store) Stage(ctx context.Context, r io.Reader) (storage.StagedBlob, error) {
	f, err := os.CreateTemp(s.o.TempPath, "mediarepo-s3-*")
	if err != nil {
		return nil, fmt.Errorf("create temp blob: %w", err)
	}
	os.Remove(f.Name()) // the open file is all there is: a crash leaves nothing
	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(f, h), storage.ContextReader(ctx, r))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("write blob: %w", err)
	}
	return &staged{store: s, f: f, sum: hex.EncodeToString(h.Sum(nil)), size: size}, nil
}

// staged is an upload in its temp file, waiting for Commit or Abort.
type staged struct {
	store *Store
	f     *os.File
	sum   string
	size  int64

	mu        sync.Mutex
	done      bool
	commitErr error
}

func (b *staged) SHA256() string { return b.sum }
func (b *staged) Size() int64    { return b.size }

// Commit implements storage.StagedBlob: the object is written again even
// if it exists, so its time is fresh.
func (b *staged) Commit(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return b.commitErr
	}
	b.done = true
	defer b.f.Close()
	head := make([]byte, 512)
	n, _ := b.f.ReadAt(head, 0)
	_, err := b.store.c.PutObject(ctx, b.store.o.Bucket, b.store.key(b.sum), io.NewSectionReader(b.f, 0, b.size), b.size, minio.PutObjectOptions{
		// The type the bytes are, for a public base URL serving them as they are.
		ContentType:      http.DetectContentType(head[:n]),
		StorageClass:     b.store.o.StorageClass,
		DisableMultipart: !b.store.o.Multipart,
		PartSize:         partSize,
	})
	b.commitErr = classify(err)
	return b.commitErr
}

// Abort implements storage.StagedBlob.
func (b *staged) Abort() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return nil
	}
	b.done = true
	return b.f.Close()
}

// Open implements storage.BlobStore. The first request is made here (so
// that a missing blob is ErrNotFound now); seeks make ranged requests.
func (s *Store) Open(ctx context.Context, sum string) (io.ReadSeekCloser, error) {
	if !storage.ValidSHA256(sum) {
		return nil, fmt.Errorf("blob %q: %w", sum, storage.ErrNotFound)
	}
	obj, err := s.c.GetObject(ctx, s.o.Bucket, s.key(sum), minio.GetObjectOptions{})
	if err == nil {
		_, err = obj.Stat()
	}
	if err != nil {
		if obj != nil {
			obj.Close()
		}
		return nil, fmt.Errorf("blob %s: %w", sum, classify(err))
	}
	return &object{obj}, nil
}

// object classifies the errors of an open object's reads.
type object struct{ *minio.Object }

func (o *object) Read(p []byte) (int, error) {
	n, err := o.Object.Read(p)
	if err != nil && err != io.EOF {
		err = classify(err)
	}
	return n, err
}

func (o *object) Seek(offset int64, whence int) (int64, error) {
	n, err := o.Object.Seek(offset, whence)
	return n, classify(err)
}

// Delete implements storage.BlobStore.
func (s *Store) Delete(ctx context.Context, sum string) error {
	if !storage.ValidSHA256(sum) {
		return nil
	}
	err := s.c.RemoveObject(ctx, s.o.Bucket, s.key(sum), minio.RemoveObjectOptions{})
	if err = classify(err); errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}

// Check implements storage.Checker: the bucket answers.
func (s *Store) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := s.c.BucketExists(ctx, s.o.Bucket)
	return classify(err)
}

// RedirectURL implements storage.Redirector: the public base URL for
// media shown inline (whose stored type is right), else a presigned URL
// carrying the response's type and disposition, else none.
func (s *Store) RedirectURL(ctx context.Context, sum string, h storage.RedirectHeaders) (string, error) {
	if !storage.ValidSHA256(sum) {
		return "", fmt.Errorf("blob %q: %w", sum, storage.ErrNotFound)
	}
	if s.o.PublicBaseURL != "" && h.Inline {
		return strings.TrimSuffix(s.o.PublicBaseURL, "/") + "/" + s.key(sum), nil
	}
	if s.o.PresignSeconds <= 0 {
		return "", nil
	}
	params := url.Values{}
	params.Set("response-content-type", h.ContentType)
	params.Set("response-content-disposition", h.ContentDisposition)
	u, err := s.c.PresignedGetObject(ctx, s.o.Bucket, s.key(sum), time.Duration(s.o.PresignSeconds)*time.Second, params)
	if err != nil {
		return "", classify(err)
	}
	return u.String(), nil
}

// classify marks S3's answers with the storage sentinels: a missing
// object ErrNotFound, refused writes ErrReadOnly, a full bucket ErrFull,
// and an endpoint that cannot answer now ErrUnavailable.
func classify(err error) error {
	if err == nil {
		return nil
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == minio.NoSuchKey || resp.Code == "NoSuchVersion" || resp.StatusCode == http.StatusNotFound && resp.Code != minio.NoSuchBucket:
		return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	case resp.Code == "AccessDenied" || resp.Code == "InvalidAccessKeyId" || resp.Code == "SignatureDoesNotMatch":
		return fmt.Errorf("%w: %w", storage.ErrReadOnly, err)
	case resp.Code == "QuotaExceeded" || resp.Code == "XMinioStorageFull" || resp.StatusCode == http.StatusInsufficientStorage:
		return fmt.Errorf("%w: %w", storage.ErrFull, err)
	case resp.StatusCode >= 500 || resp.Code == "SlowDown" || resp.Code == "RequestTimeout" || resp.Code == minio.NoSuchBucket:
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	var netErr net.Error
	var urlErr *url.Error
	if errors.As(err, &netErr) || errors.As(err, &urlErr) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	return err
}
