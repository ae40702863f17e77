package thumbnailer_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
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

// countingStore counts thumbnail inserts.
type countingStore struct {
	storage.ThumbnailStore
	inserts atomic.Int32
}

func (c *countingStore) CreateThumbnail(ctx context.Context, th *storage.Thumbnail) error {
	c.inserts.Add(1)
	return c.ThumbnailStore.CreateThumbnail(ctx, th)
}

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
	spec := f.svc.Spec(320, 240, "scale", false)
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
	configured := 5 // the default sizes, made together from one decode
	if n := f.store.inserts.Load(); n != int32(configured) {
		t.Errorf("%d thumbnails stored, want %d (one per configured size)", n, configured)
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
	if _, err := f.svc.Thumbnail(context.Background(), m, f.svc.Spec(96, 96, "crop", false)); !errors.Is(err, thumbnails.ErrUseOriginal) {
		t.Errorf("Thumbnail of a 20x20 original = %v, want ErrUseOriginal", err)
	}
}

func TestPregenerate(t *testing.T) {
	f := newFixture(t, nil)
	m := f.mustMedia(t, photo(t, 900, 700))
	f.svc.Pregenerate(m)
	deadline := time.Now().Add(20 * time.Second)
	for f.store.inserts.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := f.store.inserts.Load(); n != 5 {
		t.Fatalf("%d sizes pre-generated, want 5", n)
	}
	// The first view is then a cache hit: nothing more is made.
	if _, err := f.svc.Thumbnail(context.Background(), m, f.svc.Spec(96, 96, "crop", false)); err != nil {
		t.Fatal(err)
	}
	if n := f.store.inserts.Load(); n != 5 {
		t.Errorf("first view after pre-generation stored %d more", n-5)
	}
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
	spec := f.svc.Spec(800, 600, "scale", false)

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
	if n := f.store.inserts.Load(); n != 5 {
		t.Errorf("%d thumbnails stored, want the 5 configured sizes once", n)
	}
}

func TestUnusableOriginalIsNotReadAgain(t *testing.T) {
	f := newFixture(t, nil)
	m := f.mustMedia(t, []byte("%PDF-1.7 not an image at all"))
	f.blobs.opened = make(chan struct{})
	f.blobs.delay = time.Microsecond // count reads
	for range 5 {
		if _, err := f.svc.Thumbnail(context.Background(), m, f.svc.Spec(96, 96, "crop", false)); !errors.Is(err, thumbnails.ErrUnsupported) {
			t.Fatalf("Thumbnail of a PDF = %v, want ErrUnsupported", err)
		}
	}
	if n := f.blobs.read.Load(); n == 0 || n > 64 {
		t.Errorf("the original was read for %d bytes over 5 requests, want it read once", n)
	}
}
