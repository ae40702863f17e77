// Package flight runs shared work once per key among concurrent callers, as
// a media server needs for remote fetches, thumbnails, previews and token
// checks. The work runs under the group's own context, cancelled by Close and
// bounded by a timeout, never under the first caller's; each caller waits
// only as long as its own context allows, so a client that hangs up frees its
// handler at once while the work finishes for the others. It imports nothing
// from this module.
package flight

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// ErrClosed is returned for work asked of a closed Group.
var ErrClosed = errors.New("shutting down")

// Group deduplicates work by key. The zero value is not usable; use New.
type Group[T any] struct {
	sf      singleflight.Group
	timeout time.Duration

	mu      sync.Mutex
	closed  bool
	life    context.Context // the owner's lifetime, ended by Close
	end     context.CancelFunc
	running sync.WaitGroup
}

// New returns a Group whose work is given at most timeout (0: no limit of
// its own).
func New[T any](timeout time.Duration) *Group[T] {
	life, end := context.WithCancel(context.Background())
	return &Group[T]{timeout: timeout, life: life, end: end}
}

// Do returns the result of fn for key, running fn only if no call for key is
// already under way. fn gets a context that carries the first caller's values
// but not its cancellation: it ends with Close or the group's timeout. Do
// returns ctx.Err() as soon as ctx is done, whether or not fn has finished.
// A panic in fn is returned as an error.
func (g *Group[T]) Do(ctx context.Context, key string, fn func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	ch := g.sf.DoChan(key, func() (any, error) { return g.run(ctx, fn) })
	select {
	case r := <-ch:
		if r.Err != nil {
			return zero, r.Err
		}
		return r.Val.(T), nil
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// run calls fn under the group's context, unless the group is closed.
func (g *Group[T]) run(caller context.Context, fn func(context.Context) (T, error)) (v any, err error) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, ErrClosed
	}
	g.running.Add(1)
	g.mu.Unlock()
	defer g.running.Done()
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("shared work panicked: %v\n%s", p, debug.Stack())
		}
	}()

	ctx, cancel := context.WithCancel(context.WithoutCancel(caller))
	defer cancel()
	stop := context.AfterFunc(g.life, cancel)
	defer stop()
	if g.timeout > 0 {
		var cancelTimeout context.CancelFunc
		ctx, cancelTimeout = context.WithTimeout(ctx, g.timeout)
		defer cancelTimeout()
	}
	return fn(ctx)
}

// Close cancels the work under way, waits for it to return, and makes later
// calls fail with ErrClosed. Work that does not watch its context delays
// Close until it returns.
func (g *Group[T]) Close() {
	g.mu.Lock()
	g.closed = true
	g.end()
	g.mu.Unlock()
	g.running.Wait()
}
