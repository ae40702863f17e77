package flight_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/flight"
)

func TestSharedOnce(t *testing.T) {
	g := flight.New[int](0)
	defer g.Close()
	var calls atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]int, 10)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := g.Do(context.Background(), "k", func(context.Context) (int, error) {
				calls.Add(1)
				<-release
				return 42, nil
			})
			if err != nil {
				t.Errorf("Do: %v", err)
			}
			results[i] = v
		}()
	}
	time.Sleep(50 * time.Millisecond) // let them all join
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("fn ran %d times, want 1", n)
	}
	for i, v := range results {
		if v != 42 {
			t.Errorf("caller %d got %d, want 42", i, v)
		}
	}
}

func TestCancelledWaiterLeavesAtOnce(t *testing.T) {
	g := flight.New[string](0)
	defer g.Close()
	started := make(chan struct{})
	release := make(chan struct{})
	work := func(ctx context.Context) (string, error) {
		close(started)
		select {
		case <-release:
			return "done", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	other := make(chan string, 1)
	go func() {
		<-started
		v, err := g.Do(context.Background(), "k", work)
		if err != nil {
			v = err.Error()
		}
		other <- v
	}()

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := g.Do(ctx, "k", work)
		first <- err
	}()
	<-started
	cancel()
	// The first caller (whose request started the work) hung up: it returns
	// before the work is released...
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller got %v, want context.Canceled", err)
	}
	// ...and the work is not cancelled with it: the other caller gets the result.
	time.Sleep(20 * time.Millisecond)
	close(release)
	if v := <-other; v != "done" {
		t.Errorf("other caller got %q, want done", v)
	}
}

func TestCloseCancelsWorkAndRefusesNew(t *testing.T) {
	g := flight.New[int](0)
	started := make(chan struct{})
	got := make(chan error, 1)
	go func() {
		_, err := g.Do(context.Background(), "k", func(ctx context.Context) (int, error) {
			close(started)
			<-ctx.Done()
			return 0, ctx.Err()
		})
		got <- err
	}()
	<-started
	g.Close() // returns only once the work has returned
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Errorf("work under Close returned %v, want context.Canceled", err)
	}
	ran := false
	_, err := g.Do(context.Background(), "other", func(context.Context) (int, error) { ran = true; return 1, nil })
	if !errors.Is(err, flight.ErrClosed) || ran {
		t.Errorf("Do after Close = %v (ran %v), want ErrClosed without running", err, ran)
	}
}

func TestTimeoutAndValues(t *testing.T) {
	type key struct{}
	g := flight.New[string](30 * time.Millisecond)
	defer g.Close()
	ctx := context.WithValue(context.Background(), key{}, "request-7")
	v, err := g.Do(ctx, "k", func(ctx context.Context) (string, error) {
		<-ctx.Done()
		return ctx.Value(key{}).(string), ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v (value %q), want the group's deadline", err, v)
	}
	v, err = g.Do(ctx, "k2", func(ctx context.Context) (string, error) { return ctx.Value(key{}).(string), nil })
	if err != nil || v != "request-7" {
		t.Errorf("Do = %q, %v; want the first caller's values", v, err)
	}
}

func TestPanicIsAnError(t *testing.T) {
	g := flight.New[int](0)
	defer g.Close()
	_, err := g.Do(context.Background(), "k", func(context.Context) (int, error) { panic("decoder bug") })
	if err == nil || !strings.Contains(err.Error(), "decoder bug") {
		t.Errorf("err = %v, want the panic as an error", err)
	}
	if v, err := g.Do(context.Background(), "k", func(context.Context) (int, error) { return 3, nil }); err != nil || v != 3 {
		t.Errorf("Do after a panic = %d, %v; want 3", v, err)
	}
}
