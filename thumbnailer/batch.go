package thumbnailer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/thumbnails"
)

// A batch makes missing configured sizes of one media from one decode, in
// the order they are wanted: a request for a size moves it to the front, gets
// its answer as soon as that size is stored, and the pre-generated sizes
// follow in the background. The decode is at the scale the largest configured
// size needs, so any of them can join while the batch runs. Requests and the
// pre-generation after an upload share the batch of a media.
type batch struct {
	mu      sync.Mutex        // guards queue and results; taken after batches.mu
	queue   []thumbnails.Spec // still to make, first first
	results map[thumbnails.Spec]*result
}

// result is the outcome of one size of a batch, ready once made.
type result struct {
	ready chan struct{}
	th    *storage.Thumbnail // nil with a nil err: serve the original
	err   error
}

// batches are the batches running, by media.
type batches struct {
	mu sync.Mutex
	m  map[string]*batch
}

// configured returns the thumbnail of m for spec, a configured size, through
// m's batch, started if none runs, else joined: spec is made next if it is
// not made yet, and the pre-generated sizes after it. Waiting ends with ctx;
// the batch goes on.
func (s *Service) configured(ctx context.Context, m *storage.Media, spec thumbnails.Spec) (*storage.Thumbnail, error) {
	r, err := s.join(m, append([]thumbnails.Spec{spec}, s.pregen...), true)
	if err != nil {
		return nil, err
	}
	select {
	case <-r[0].ready:
		if r[0].err == nil && r[0].th == nil {
			return nil, thumbnails.ErrUseOriginal
		}
		return r[0].th, r[0].err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// pregenerate makes the sizes of thumbnails.pregenerate of m and waits for
// them, or for ctx.
func (s *Service) pregenerate(ctx context.Context, m *storage.Media) error {
	results, err := s.join(m, s.pregen, false)
	if err != nil {
		return err
	}
	for _, r := range results {
		select {
		case <-r.ready:
			if r.err != nil && !errors.Is(r.err, thumbnails.ErrUseOriginal) {
				return r.err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// join adds specs to m's batch, starting one if none runs, and returns their
// results. urgent moves specs[0] to the front of the queue.
func (s *Service) join(m *storage.Media, specs []thumbnails.Spec, urgent bool) ([]*result, error) {
	key := m.Origin + "/" + m.MediaID
	s.running.mu.Lock()
	defer s.running.mu.Unlock()
	if s.life.Err() != nil {
		return nil, fmt.Errorf("thumbnailer: %w", context.Canceled)
	}
	b := s.running.m[key]
	start := b == nil
	if start {
		b = &batch{results: map[thumbnails.Spec]*result{}}
		s.running.m[key] = b
	}
	out := b.add(specs, urgent)
	if start {
		s.runners.Add(1)
		go s.run(key, m, b)
	}
	return out, nil
}

// add queues the specs not queued or made yet, and returns every spec's
// result. urgent moves specs[0] to the front.
func (b *batch) add(specs []thumbnails.Spec, urgent bool) []*result {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*result, len(specs))
	for i, spec := range specs {
		r := b.results[spec]
		if r == nil {
			r = &result{ready: make(chan struct{})}
			b.results[spec] = r
			b.queue = append(b.queue, spec)
		}
		if urgent && i == 0 {
			if j := slices.Index(b.queue, spec); j > 0 {
				b.queue = slices.Insert(slices.Delete(b.queue, j, j+1), 0, spec)
			}
		}
		out[i] = r
	}
	return out
}

// finish gives spec its result.
func (b *batch) finish(spec thumbnails.Spec, th *storage.Thumbnail, err error) {
	b.mu.Lock()
	r := b.results[spec]
	b.mu.Unlock()
	r.th, r.err = th, err
	close(r.ready)
}

// run works through a batch until its queue is empty, then removes it. A
// problem with the original ends every size still queued with it.
func (s *Service) run(key string, m *storage.Media, b *batch) {
	defer s.runners.Done()
	ctx, cancel := context.WithTimeout(s.life, generateTimeout)
	defer cancel()
	if err := s.runBatch(ctx, key, m, b); err != nil {
		s.running.mu.Lock()
		delete(s.running.m, key) // a later join starts afresh
		b.mu.Lock()
		queued := b.queue
		b.queue = nil
		b.mu.Unlock()
		s.running.mu.Unlock()
		for _, spec := range queued {
			b.finish(spec, nil, err)
		}
	}
}

// runBatch makes the queued sizes from one decode until none is left, and
// then removes the batch, under the lock joins take: a size joining later
// starts a new batch. It returns the error that ended it early, if any.
func (s *Service) runBatch(ctx context.Context, key string, m *storage.Media, b *batch) error {
	unlock, err := s.locks.Lock(ctx, lockKey(m))
	if err != nil {
		return err
	}
	defer unlock()
	stored, err := s.store.Thumbnails(ctx, m.Origin, m.MediaID)
	if err != nil {
		return err
	}
	var src *thumbnails.Source
	var blob io.Closer
	defer func() {
		if src != nil {
			src.Close()
		}
		if blob != nil {
			blob.Close()
		}
	}()
	for {
		s.running.mu.Lock()
		spec, ok := b.peek()
		if !ok {
			delete(s.running.m, key)
		}
		s.running.mu.Unlock()
		if !ok {
			return nil
		}
		if th := find(stored, spec); th != nil { // another process, or an earlier run
			b.take(spec)
			s.cache.Add(cacheKey(m, spec), th)
			b.finish(spec, th, nil)
			continue
		}
		if src == nil {
			// Open and decode before taking a size: a request arriving
			// meanwhile (the client's first view, right after the upload
			// that started the batch) is then made first.
			f, err := s.blobs.Open(ctx, m.DatastoreID, m.SHA256)
			if err != nil {
				return fmt.Errorf("original of %s/%s: %w", m.Origin, m.MediaID, err)
			}
			blob = f
			if src, err = s.gen.Open(ctx, f, m.SizeBytes, s.sizes); err != nil {
				return err
			}
			if err := src.Decode(ctx); err != nil {
				return err
			}
			continue
		}
		b.take(spec)
		th, err := s.makeOne(ctx, m, src, spec)
		if err != nil && !errors.Is(err, thumbnails.ErrUseOriginal) {
			b.finish(spec, nil, err)
			return err
		}
		b.finish(spec, th, nil)
	}
}

// peek is the spec first in the queue, left there.
func (b *batch) peek() (thumbnails.Spec, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) == 0 {
		return thumbnails.Spec{}, false
	}
	return b.queue[0], true
}

// take removes spec from the queue, wherever a join moved it.
func (b *batch) take(spec thumbnails.Spec) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if j := slices.Index(b.queue, spec); j >= 0 {
		b.queue = slices.Delete(b.queue, j, j+1)
	}
}

// makeOne makes and stores one size from the open source; nil with
// ErrUseOriginal when the original is to be served.
func (s *Service) makeOne(ctx context.Context, m *storage.Media, src *thumbnails.Source, spec thumbnails.Spec) (*storage.Thumbnail, error) {
	start := time.Now()
	gen, err := src.Make(ctx, spec)
	if errors.Is(err, thumbnails.ErrUseOriginal) {
		s.cache.Add(cacheKey(m, spec), nil)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	th, err := s.save(ctx, m, spec, gen)
	if err != nil {
		return nil, err
	}
	s.cache.Add(cacheKey(m, spec), th)
	took := time.Since(start)
	s.seen.ThumbnailMade(took.Seconds())
	s.log.WithFields(logrus.Fields{"origin": m.Origin, "media_id": m.MediaID, "width": spec.Width, "height": spec.Height,
		"duration_ms": took.Milliseconds()}).Debug("thumbnail made")
	return th, nil
}
