package thumbnailer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/storagetest"
	"github.com/mediarepo/mediarepo/thumbnailer"
	"github.com/mediarepo/mediarepo/thumbnails"
)

// fixture is a thumbnailer.Service on a real SQLite file and a disk datastore
// whose reads can be slowed down and counted.
type fixture struct {
	svc   *thumbnailer.Service
	store *countingStore
	blobs *slowBlobs
	cfg   config.Thumbnails
}

func newFixture(t *testing.T, edit func(*config.Thumbnails)) *fixture {
	t.Helper()
	cfg := config.Default().Thumbnails
	cfg.MaxSourceBytes = 0
	if edit != nil {
		edit(&cfg)
	}
	f := &fixture{store: &countingStore{ThumbnailStore: storagetest.OpenSQLite(t)}, blobs: &slowBlobs{BlobStore: storagetest.OpenDisk(t)}, cfg: cfg}
	stores, err := storage.NewDatastores(map[string]storage.BlobStore{"d": f.blobs}, storage.Roles{LocalMedia: "d", RemoteMedia: "d", Thumbnails: "d"})
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	f.svc, err = thumbnailer.New(thumbnailer.Options{
		Config: cfg, Thumbnails: f.store, Blobs: stores, Generator: thumbnails.New(cfg), Log: logrus.NewEntry(log),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.svc.Close() })
	return f
}

// mustMedia stores data as a blob and returns a media row for it.
func (f *fixture) mustMedia(t *testing.T, data []byte) *storage.Media {
	t.Helper()
	sum, size, err := storage.Put(context.Background(), f.blobs.BlobStore, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return &storage.Media{Origin: "example.org", MediaID: sum[:20], SHA256: sum, SizeBytes: size, DatastoreID: "d", CreatedAt: time.Now()}
}

// countingStore counts thumbnail inserts and keeps their sizes in order.
// With gate set, each insert after the first waits for a value from it.
type countingStore struct {
	storage.ThumbnailStore
	inserts atomic.Int32
	gate    chan struct{}

	mu    sync.Mutex
	order []string
}

func (c *countingStore) CreateThumbnail(ctx context.Context, th *storage.Thumbnail, publish storage.Publish) error {
	if c.inserts.Add(1) > 1 && c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.mu.Lock()
	c.order = append(c.order, fmt.Sprintf("%dx%d %s", th.Width, th.Height, th.Method))
	c.mu.Unlock()
	return c.ThumbnailStore.CreateThumbnail(ctx, th, publish)
}

// made is the sizes stored so far, in order.
func (c *countingStore) made() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.order)
}

// waitInserts waits up to 20 s for n inserts, the batch's work in the
// background, and fails unless there are exactly n.
func (f *fixture) waitInserts(t *testing.T, n int32) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for f.store.inserts.Load() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := f.store.inserts.Load(); got != n {
		t.Fatalf("%d thumbnails stored, want %d: %v", got, n, f.store.made())
	}
}

// pregenerated is the default thumbnails.pregenerate as stored.
var pregenerated = []string{"96x96 crop", "320x240 scale", "800x600 scale"}

// slowBlobs delays each read of a blob by delay, once set, and counts the
// bytes read; opened is signalled at the first read.
type slowBlobs struct {
	storage.BlobStore
	delay  time.Duration
	read   atomic.Int64
	opened chan struct{}
	once   sync.Once
}

func (s *slowBlobs) Open(ctx context.Context, sum string) (io.ReadSeekCloser, error) {
	r, err := s.BlobStore.Open(ctx, sum)
	if err != nil || s.delay == 0 {
		return r, err
	}
	return &slowReader{ReadSeekCloser: r, s: s}, nil
}

type slowReader struct {
	io.ReadSeekCloser
	s *slowBlobs
}

func (r *slowReader) Read(p []byte) (int, error) {
	r.s.once.Do(func() { close(r.s.opened) })
	time.Sleep(r.s.delay)
	n, err := r.ReadSeekCloser.Read(p[:min(len(p), 4096)])
	r.s.read.Add(int64(n))
	return n, err
}

func photo(t *testing.T, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x ^ y), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// noisePNG is w x h of random pixels: it compresses badly, so decoding reads
// all of its many bytes.
func noisePNG(t *testing.T, w, h int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	rand.NewChaCha8([32]byte{1}).Read(img.Pix)
	var b bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestThumbnailMadeOnceAndStored(t *testing.T) {
	f := newFixture(t, nil)
	m := f.mustMedia(t, photo(t, 1000, 800))
	spec := f.svc.Spec(320, 240, "scale", false, false)
	var wg sync.WaitGroup
	sums := make([]string, 30)
	for i := range sums {
		wg.Add(1)
		go func() {
			defer wg.Done()
			th, err := f.svc.Thumbnail(context.Background(), m, spec)
			if err != nil {
				t.Errorf("Thumbnail: %v", err)
				return
			}
			sums[i] = th.SHA256
		}()
	}
	wg.Wait()
	// The size asked for first, then the other pre-generated sizes, once each.
	f.waitInserts(t, 3)
	if got := f.store.made(); got[0] != "320x240 scale" || !sameSet(got, pregenerated) {
		t.Errorf("stored %v, want 320x240 scale first and then the rest of %v", got, pregenerated)
	}
	for i, s := range sums {
		if s != sums[0] {
			t.Errorf("caller %d got thumbnail %s, caller 0 %s", i, s, sums[0])
		}
	}
	th, _ := f.svc.Thumbnail(context.Background(), m, spec)
	r, err := f.svc.Open(context.Background(), th)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	img, format, err := image.Decode(r)
	if err != nil || format != "jpeg" || img.Bounds().Dx() != 300 || img.Bounds().Dy() != 240 {
		t.Errorf("stored thumbnail: %s %v, %v; want a 300x240 jpeg", format, img.Bounds(), err)
	}
}

func TestSmallOriginalIsServedItself(t *testing.T) {
	f := newFixture(t, nil)
	m := f.mustMedia(t, photo(t, 20, 20))
	if _, err := f.svc.Thumbnail(context.Background(), m, f.svc.Spec(96, 96, "crop", false, false)); !errors.Is(err, thumbnails.ErrUseOriginal) {
		t.Errorf("Thumbnail of a 20x20 original = %v, want ErrUseOriginal", err)
	}
}

func TestPregenerate(t *testing.T) {
	f := newFixture(t, nil)
	m := f.mustMedia(t, photo(t, 900, 700))
	f.svc.Pregenerate(m)
	f.waitInserts(t, 3)
	if got := f.store.made(); !slices.Equal(got, pregenerated) {
		t.Errorf("pre-generated %v, want %v in order", got, pregenerated)
	}
	// The first view is then a cache hit: nothing more is made.
	if _, err := f.svc.Thumbnail(context.Background(), m, f.svc.Spec(96, 96, "crop", false, false)); err != nil {
		t.Fatal(err)
	}
	if n := f.store.inserts.Load(); n != 3 {
		t.Errorf("first view after pre-generation stored %d more", n-3)
	}
}

func TestPregenerateConfigured(t *testing.T) {
	for _, tc := range []struct {
		name string
		pre  []config.ThumbnailSize
		want []string
	}{
		{"none", []config.ThumbnailSize{}, nil},
		// Each request is made at the configured size that serves it.
		{"best match", []config.ThumbnailSize{{Width: 50, Height: 50, Method: "crop"}, {Width: 700, Height: 500, Method: "scale"}}, []string{"96x96 crop", "800x600 scale"}},
		// An empty method asks for both; each size once.
		{"both methods", []config.ThumbnailSize{{Width: 32, Height: 32}, {Width: 30, Height: 30, Method: "crop"}}, []string{"32x32 crop", "320x240 scale"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *config.Thumbnails) { c.Pregenerate = tc.pre })
			m := f.mustMedia(t, photo(t, 900, 700))
			f.svc.Pregenerate(m)
			f.waitInserts(t, int32(len(tc.want)))
			if tc.want == nil {
				time.Sleep(200 * time.Millisecond) // a wrong batch would have stored by now
				f.waitInserts(t, 0)
				return
			}
			if got := f.store.made(); !slices.Equal(got, tc.want) {
				t.Errorf("pre-generated %v, want %v", got, tc.want)
			}
		})
	}
}

// A request for a size not made yet is answered before the batch makes the
// sizes that follow, from the same decode.
func TestRequestedSizeFirst(t *testing.T) {
	f := newFixture(t, nil)
	f.store.gate = make(chan struct{}) // every insert after the first waits
	m := f.mustMedia(t, photo(t, 1200, 900))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	th, err := f.svc.Thumbnail(ctx, m, f.svc.Spec(32, 32, "crop", false, false))
	if err != nil {
		t.Fatalf("Thumbnail with the batch's other sizes held back = %v, want it answered first", err)
	}
	if th.Width != 32 || th.Method != "crop" {
		t.Errorf("got %dx%d %s", th.Width, th.Height, th.Method)
	}
	read := f.blobs.read.Load()
	close(f.store.gate)
	f.waitInserts(t, 4)
	if got := f.store.made(); !slices.Equal(got, append([]string{"32x32 crop"}, pregenerated...)) {
		t.Errorf("stored %v, want 32x32 crop and then %v", got, pregenerated)
	}
	if f.blobs.read.Load() != read {
		t.Error("the original was read again for the sizes that followed")
	}
}

// A request joining a running batch moves its size to the front.
func TestRequestJumpsTheQueue(t *testing.T) {
	f := newFixture(t, nil)
	f.store.gate = make(chan struct{})
	m := f.mustMedia(t, photo(t, 1200, 900))
	f.svc.Pregenerate(m)
	for f.store.inserts.Load() < 2 { // the first stored, the second held
		time.Sleep(time.Millisecond)
	}
	got := make(chan error, 1)
	go func() {
		_, err := f.svc.Thumbnail(context.Background(), m, f.svc.Spec(640, 480, "scale", false, false))
		got <- err
	}()
	time.Sleep(500 * time.Millisecond) // let it join
	close(f.store.gate)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	f.waitInserts(t, 4)
	if made := f.store.made(); !slices.Equal(made, []string{"96x96 crop", "320x240 scale", "640x480 scale", "800x600 scale"}) {
		t.Errorf("stored %v, want 640x480 scale right after the one being made when it joined", made)
	}
}

// A request arriving while the batch after an upload decodes is made first.
func TestRequestDuringDecodeGoesFirst(t *testing.T) {
	f := newFixture(t, nil)
	m := f.mustMedia(t, photo(t, 1200, 900))
	f.blobs.opened = make(chan struct{})
	f.blobs.delay = 5 * time.Millisecond // the decode reads for a while
	f.svc.Pregenerate(m)
	<-f.blobs.opened
	if _, err := f.svc.Thumbnail(context.Background(), m, f.svc.Spec(640, 480, "scale", false, false)); err != nil {
		t.Fatal(err)
	}
	f.waitInserts(t, 4)
	if made := f.store.made(); made[0] != "640x480 scale" {
		t.Errorf("stored %v, want the request's 640x480 scale first", made)
	}
}

func sameSet(a, b []string) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(s string) bool { return !slices.Contains(b, s) })
}

func TestCloseStopsPregenerationOfALargeImage(t *testing.T) {
	f := newFixture(t, nil)
	data := noisePNG(t, 1500, 1000) // about 6 MB
	m := f.mustMedia(t, data)
	f.blobs.opened = make(chan struct{})
	f.blobs.delay = time.Millisecond // reading it all would take over 1.5 s
	f.svc.Pregenerate(m)
	<-f.blobs.opened
	for f.blobs.read.Load() < 256<<10 {
		time.Sleep(time.Millisecond) // until the decode is well under way
	}
	start := time.Now()
	f.svc.Close()
	took := time.Since(start)
	read := f.blobs.read.Load()
	t.Logf("Close took %v; the decode had read %d of %d bytes", took, read, len(data))
	if read >= int64(len(data))/2 {
		t.Errorf("the decode went on after Close: %d of %d bytes read", read, len(data))
	}
	if n := f.store.inserts.Load(); n != 0 {
		t.Errorf("%d thumbnails stored after Close, want none", n)
	}
}

func TestCancelledWaiterLeavesGeneration(t *testing.T) {
	f := newFixture(t, nil)
	m := f.mustMedia(t, photo(t, 1200, 900))
	f.blobs.opened = make(chan struct{})
	f.blobs.delay = 2 * time.Millisecond
	spec := f.svc.Spec(800, 600, "scale", false, false)

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := f.svc.Thumbnail(ctx, m, spec)
		first <- err
	}()
	<-f.blobs.opened
	other := make(chan error, 1)
	go func() {
		_, err := f.svc.Thumbnail(context.Background(), m, spec)
		other <- err
	}()
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller = %v, want context.Canceled", err)
	}
	readAtCancel := f.blobs.read.Load()
	if err := <-other; err != nil {
		t.Fatalf("other caller = %v, want the thumbnail", err)
	}
	if f.blobs.read.Load() <= readAtCancel {
		t.Error("the generation stopped with the caller that started it")
	}
	f.waitInserts(t, 3) // the pre-generated sizes, once each
}

func TestUnusableOriginalIsNotReadAgain(t *testing.T) {
	f := newFixture(t, nil)
	m := f.mustMedia(t, []byte("%PDF-1.7 not an image at all"))
	f.blobs.opened = make(chan struct{})
	f.blobs.delay = time.Microsecond // count reads
	for range 5 {
		if _, err := f.svc.Thumbnail(context.Background(), m, f.svc.Spec(96, 96, "crop", false, false)); !errors.Is(err, thumbnails.ErrUnsupported) {
			t.Fatalf("Thumbnail of a PDF = %v, want ErrUnsupported", err)
		}
	}
	if n := f.blobs.read.Load(); n == 0 || n > 64 {
		t.Errorf("the original was read for %d bytes over 5 requests, want it read once", n)
	}
}
