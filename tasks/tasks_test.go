package tasks_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/sqlite"
	"github.com/mediarepo/mediarepo/storage/storagetest"
	"github.com/mediarepo/mediarepo/tasks"
)

func newRunner(t *testing.T, db *sqlite.Store) *tasks.Runner {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	r, err := tasks.New(tasks.Options{Tasks: db, Leases: db, Log: logrus.NewEntry(log)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRunAndFinish(t *testing.T) {
	db := storagetest.OpenSQLite(t)
	r := newRunner(t, db)
	ctx := context.Background()
	for _, c := range []struct {
		err  error
		want string
	}{{nil, ""}, {errors.New("disk on fire"), "disk on fire"}} {
		id, err := r.Start(ctx, "storage_migration", map[string]any{"before_ts": 5}, func(context.Context, int64) error { return c.err })
		if err != nil {
			t.Fatal(err)
		}
		got := storagetest.WaitTask(t, db, id)
		if got.Error != c.want || got.Name != "storage_migration" || got.Params != `{"before_ts":5}` {
			t.Errorf("task = %+v, want error %q", got, c.want)
		}
		// Its lease is given back.
		if ok, _ := db.AcquireLease(ctx, fmt.Sprintf("task:%d", id), "someone else", time.Now(), time.Minute); !ok {
			t.Errorf("task %d's lease is still held", id)
		}
	}
}

func TestCancelAndClose(t *testing.T) {
	db := storagetest.OpenSQLite(t)
	r := newRunner(t, db)
	ctx := context.Background()
	block := func(ctx context.Context, _ int64) error { <-ctx.Done(); return ctx.Err() }
	cancelled, _ := r.Start(ctx, "export_data", map[string]any{}, block)
	r.Cancel(cancelled)
	if got := storagetest.WaitTask(t, db, cancelled); got.Error != context.Canceled.Error() {
		t.Errorf("cancelled task error = %q", got.Error)
	}
	running, _ := r.Start(ctx, "export_data", map[string]any{}, block)
	r.Close()
	if got := storagetest.WaitTask(t, db, running); got.Error != tasks.Interrupted {
		t.Errorf("task running at Close: error %q, want %q", got.Error, tasks.Interrupted)
	}
}

// TestInterruptedTasks: a task whose process stopped (its lease ran out)
// is cleaned up and marked failed; one whose process lives is left alone.
func TestInterruptedTasks(t *testing.T) {
	db := storagetest.OpenSQLite(t)
	ctx := context.Background()
	long := time.Now().Add(-time.Hour)
	stopped := &storage.Task{Name: "export_data", Params: `{"export_id":"x"}`, Start: long}
	alive := &storage.Task{Name: "export_data", Params: `{"export_id":"y"}`, Start: long}
	failing := &storage.Task{Name: "import_data", Params: `{}`, Start: long}
	for _, task := range []*storage.Task{stopped, alive, failing} {
		if err := db.CreateTask(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	db.AcquireLease(ctx, fmt.Sprintf("task:%d", stopped.ID), "crashed process", long, time.Minute)
	db.AcquireLease(ctx, fmt.Sprintf("task:%d", alive.ID), "live process", time.Now(), time.Hour)
	r := newRunner(t, db)
	var mu sync.Mutex
	var cleaned []string
	var tries atomic.Int32
	r.OnInterrupted("export_data", func(_ context.Context, task storage.Task) error {
		mu.Lock()
		defer mu.Unlock()
		cleaned = append(cleaned, task.Params)
		return nil
	})
	r.OnInterrupted("import_data", func(context.Context, storage.Task) error {
		tries.Add(1)
		return errors.New("not now")
	})
	r.Sweep()
	got := storagetest.WaitTask(t, db, stopped.ID)
	for i := 0; i < 500 && tries.Load() == 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(got.Error, "interrupted") || len(cleaned) != 1 || cleaned[0] != stopped.Params {
		t.Errorf("stopped task = %+v, cleaned %v", got, cleaned)
	}
	if task, _ := db.Task(ctx, alive.ID); !task.End.IsZero() {
		t.Errorf("a task whose process renews its lease was marked %q", task.Error)
	}
	if task, _ := db.Task(ctx, failing.ID); !task.End.IsZero() || tries.Load() == 0 {
		t.Errorf("a task whose clean-up failed was marked %q (tries %d); want it left for later", task.Error, tries.Load())
	}
}

func TestReportThrottlesButKeepsTheFinal(t *testing.T) {
	db := storagetest.OpenSQLite(t)
	r := newRunner(t, db)
	ctx := context.Background()
	release := make(chan struct{})
	id, err := r.Start(ctx, "storage_migration", map[string]any{}, func(ctx context.Context, id int64) error {
		<-release
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Report(ctx, id, map[string]int{"blobs": 1}, false)
	r.Report(ctx, id, map[string]int{"blobs": 2}, false) // within a second of the first: not written
	if task, _ := db.Task(ctx, id); task.Progress != `{"blobs":1}` {
		t.Errorf("progress after two quick reports = %q, want the first", task.Progress)
	}
	r.Report(ctx, id, map[string]int{"blobs": 3}, true)
	if task, _ := db.Task(ctx, id); task.Progress != `{"blobs":3}` {
		t.Errorf("progress after the final report = %q, want it", task.Progress)
	}
	close(release)
	storagetest.WaitTask(t, db, id)
}

func TestExclusiveOneHolderAtATime(t *testing.T) {
	db := storagetest.OpenSQLite(t)
	a, b := newRunner(t, db), newRunner(t, db)
	ctx := context.Background()
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- a.Exclusive(ctx, "transfer:local", func(context.Context) error {
			close(inside)
			<-release
			return errors.New("finished with an error")
		})
	}()
	<-inside
	ran := false
	if err := b.Exclusive(ctx, "transfer:local", func(context.Context) error { ran = true; return nil }); !errors.Is(err, tasks.ErrBusy) || ran {
		t.Errorf("second holder = %v (ran %v), want ErrBusy", err, ran)
	}
	if err := b.Exclusive(ctx, "transfer:other", func(context.Context) error { return nil }); err != nil {
		t.Errorf("another lease = %v, want it run", err)
	}
	close(release)
	if err := <-done; err == nil || err.Error() != "finished with an error" {
		t.Errorf("Exclusive = %v, want fn's error", err)
	}
	// Released: the other may take it now.
	if err := b.Exclusive(ctx, "transfer:local", func(context.Context) error { return nil }); err != nil {
		t.Errorf("after release = %v, want it run", err)
	}
}
