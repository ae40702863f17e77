package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mediarepo/mediarepo/bus"
	"github.com/mediarepo/mediarepo/importer"
	"github.com/mediarepo/mediarepo/storage"
)

// session is an import started through the admin API: parts spooled by
// the requests that bring them, read in order by the session's goroutine.
type session struct {
	id   string
	dir  string
	imp  *Import
	wake chan struct{} // capacity 1: a part came, or Close

	mu     sync.Mutex
	queue  []string
	closed bool // no more parts: finish after the queue
	ended  bool // the goroutine is done: parts are refused
}

// push queues a spooled part; false once the session ended.
func (sess *session) push(path string) bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.ended || sess.closed {
		return false
	}
	sess.queue = append(sess.queue, path)
	sess.signal()
	return true
}

func (sess *session) close() {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	sess.closed = true
	sess.signal()
}

func (sess *session) signal() {
	select {
	case sess.wake <- struct{}{}:
	default:
	}
}

// next pops the next part, or reports that Close was asked.
func (sess *session) next() (path string, closed bool) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if len(sess.queue) > 0 {
		path, sess.queue = sess.queue[0], sess.queue[1:]
		return path, false
	}
	return "", sess.closed
}

// StartImport starts an import with its first part (any one) and returns
// the import's ID and its task's.
func (s *Service) StartImport(ctx context.Context, part io.Reader) (string, int64, error) {
	s.mu.Lock()
	busy := len(s.imports) >= maxImports
	s.mu.Unlock()
	if busy {
		return "", 0, ErrBusy
	}
	dir, err := s.spoolDir()
	if err != nil {
		return "", 0, err
	}
	path, err := spool(dir, part, s.maxPartBytes())
	if err != nil {
		os.RemoveAll(dir)
		return "", 0, err
	}
	id := newID()
	sess := &session{id: id, dir: dir, imp: NewImport(s.importOptions()), wake: make(chan struct{}, 1), queue: []string{path}}
	s.mu.Lock()
	s.imports[id] = sess
	s.mu.Unlock()
	end := func() {
		s.mu.Lock()
		delete(s.imports, id)
		s.mu.Unlock()
		sess.mu.Lock()
		sess.ended = true
		sess.mu.Unlock()
		os.RemoveAll(dir)
	}
	task, err := s.o.Tasks.Start(ctx, TaskImport, map[string]any{"export_id": id}, // matrix-media-repo's key
		func(ctx context.Context, _ int64) error {
			defer end()
			return s.runImport(ctx, sess)
		})
	if err != nil {
		end()
		return "", 0, err
	}
	return id, task, nil
}

func (s *Service) importOptions() importer.Options {
	c := s.o.Live.Get()
	local := make([]string, len(c.Homeservers))
	for i, hs := range c.Homeservers {
		local[i] = hs.Name
	}
	return importer.Options{Stores: s.o.Stores.Import, Local: local, Workers: 1, Log: s.o.Log}
}

func (s *Service) session(id string) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.imports[id]
	if !ok {
		return nil, fmt.Errorf("import %s: %w", id, storage.ErrNotFound)
	}
	return sess, nil
}

// AddImportPart adds a part to a running import; an unknown or finished
// import wraps storage.ErrNotFound.
func (s *Service) AddImportPart(ctx context.Context, id string, part io.Reader) error {
	sess, err := s.session(id)
	if err != nil {
		return err
	}
	path, err := spool(sess.dir, part, s.maxPartBytes())
	if err != nil {
		return err
	}
	if !sess.push(path) {
		os.Remove(path)
		return fmt.Errorf("import %s has finished: %w", id, storage.ErrNotFound)
	}
	return nil
}

// CloseImport says no more parts will come: the import ends once the
// parts it has are read.
func (s *Service) CloseImport(ctx context.Context, id string) error {
	sess, err := s.session(id)
	if err != nil {
		return err
	}
	sess.close()
	return nil
}

// runImport reads the session's parts as they come until every media of
// the manifest is in, Close, an idle hour or a failure. Its error is the
// task's.
func (s *Service) runImport(ctx context.Context, sess *session) error {
	idle := time.NewTimer(importIdle)
	defer idle.Stop()
	var kept []string // parts read before the manifest, read again after it
	for {
		path, closed := sess.next()
		switch {
		case path != "":
			before := sess.imp.Report().Imported
			if err := sess.imp.Part(ctx, path); err != nil {
				return err
			}
			if sess.imp.Missing() < 0 {
				kept = append(kept, path)
			} else {
				for _, p := range append(kept, path) {
					os.Remove(p)
				}
				kept = nil
			}
			if s.o.Bus != nil && sess.imp.Report().Imported > before {
				s.o.Bus.Publish(ctx, bus.Media, "")
			}
			if sess.imp.Missing() == 0 {
				return outcome(sess.imp)
			}
			idle.Reset(importIdle)
			continue
		case closed:
			return outcome(sess.imp)
		}
		select {
		case <-sess.wake:
		case <-idle.C:
			return fmt.Errorf("no part came for %s: %w", importIdle, outcome(sess.imp))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// outcome is nil for an import that brought every media of its manifest
// in, else what is missing or went wrong.
func outcome(i *Import) error {
	err := incomplete(i)
	if problems := i.Report().Problems; len(problems) > 0 {
		shown := strings.Join(problems[:min(len(problems), 3)], "; ")
		err = errors.Join(err, fmt.Errorf("%d media not imported (%s)", len(problems), shown))
	}
	return err
}

// incomplete says what of the manifest has not come, if anything.
func incomplete(i *Import) error {
	switch missing := i.Missing(); {
	case missing < 0:
		return errors.New("no part with manifest.json came")
	case missing > 0:
		return fmt.Errorf("%d media of the manifest never came", missing)
	}
	return nil
}

// ImportFiles imports the parts at paths, in any order, through o: the
// command line's import of an export. It returns the report (with the
// media that could not be imported) and, if parts are missing, why.
func ImportFiles(ctx context.Context, o importer.Options, paths []string) (*importer.Report, error) {
	imp := NewImport(o)
	for _, p := range paths {
		if err := imp.Part(ctx, p); err != nil {
			return imp.Report(), fmt.Errorf("%s: %w", p, err)
		}
	}
	return imp.Report(), incomplete(imp)
}
