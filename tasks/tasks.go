// Package tasks runs the admin API's long jobs (exports, imports, datastore
// transfers) as matrix-media-repo's tasks: a row of the tasks table while
// it runs and after, and a goroutine owned by the Runner until Close. Each
// running task holds a lease its process renews; a task whose process
// stopped (its lease ran out) is marked failed by any process, after the
// clean-up registered for its name. It imports storage only.
package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/storage"
)

// Lease is how long a running task's lease lasts unrenewed: a task of a
// process that stopped is marked failed once it runs out.
const Lease = 2 * time.Minute

// Interrupted is the error of a task whose server stopped under it.
const Interrupted = "interrupted: the server stopped"

// Options are a Runner's dependencies.
type Options struct {
	Tasks  storage.TaskStore
	Leases storage.LeaseStore
	Log    *logrus.Entry
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Runner runs tasks. Its methods are safe for concurrent use.
type Runner struct {
	o      Options
	holder string
	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	running  map[int64]context.CancelFunc
	reported map[int64]time.Time // last progress written, by task
	cleanups map[string]func(context.Context, storage.Task) error
	sweeping sync.Once
}

// New returns a Runner; Sweep starts its sweep of interrupted tasks.
func New(o Options) (*Runner, error) {
	if o.Tasks == nil || o.Leases == nil || o.Log == nil {
		return nil, errors.New("tasks.New: Tasks, Leases and Log are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Runner{o: o, holder: storage.LeaseHolder(), ctx: ctx, stop: stop,
		running: map[int64]context.CancelFunc{}, reported: map[int64]time.Time{}, cleanups: map[string]func(context.Context, storage.Task) error{}}, nil
}

// Sweep starts renewing the leases of the tasks running here and marking
// failed those whose process stopped, until Close. Call it once every
// OnInterrupted is registered; later calls do nothing.
func (r *Runner) Sweep() {
	r.sweeping.Do(func() {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.sweep()
		}()
	})
}

// OnInterrupted registers what to undo of a task named name whose process
// stopped, before it is marked failed (an export's half-written parts).
func (r *Runner) OnInterrupted(name string, fn func(context.Context, storage.Task) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups[name] = fn
}

// Start records a task named name with params (a JSON object) and runs fn
// in a goroutine of the Runner; fn's error is the task's. fn's context ends
// at Cancel or Close.
func (r *Runner) Start(ctx context.Context, name string, params any, fn func(context.Context, int64) error) (int64, error) {
	p, err := json.Marshal(params)
	if err != nil {
		return 0, err
	}
	t := &storage.Task{Name: name, Params: string(p), Start: r.o.Now()}
	if err := r.o.Tasks.CreateTask(ctx, t); err != nil {
		return 0, err
	}
	if _, err := r.o.Leases.AcquireLease(ctx, leaseName(t.ID), r.holder, r.o.Now(), Lease); err != nil {
		r.finish(t.ID, err)
		return 0, err
	}
	runCtx, cancel := context.WithCancel(r.ctx)
	r.mu.Lock()
	r.running[t.ID] = cancel
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cancel()
		err := fn(runCtx, t.ID)
		r.mu.Lock()
		delete(r.running, t.ID)
		r.mu.Unlock()
		r.finish(t.ID, err)
	}()
	return t.ID, nil
}

// Cancel stops task id if it runs here.
func (r *Runner) Cancel(id int64) {
	r.mu.Lock()
	cancel := r.running[id]
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Close stops every task (each is marked interrupted) and waits for them.
func (r *Runner) Close() error {
	r.stop()
	r.wg.Wait()
	return nil
}

func leaseName(id int64) string { return "task:" + strconv.FormatInt(id, 10) }

// finish records the end of a task, failed if err is not nil.
func (r *Runner) finish(id int64, err error) {
	r.mu.Lock()
	delete(r.reported, id)
	r.mu.Unlock()
	msg := ""
	if err != nil {
		msg = err.Error()
		if errors.Is(err, context.Canceled) && r.ctx.Err() != nil {
			msg = Interrupted
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.o.Tasks.FinishTask(ctx, id, r.o.Now(), msg); err != nil {
		r.o.Log.WithError(err).WithField("task_id", id).Warn("task end not recorded; another process will mark it failed")
		return
	}
	r.o.Leases.ReleaseLease(ctx, leaseName(id), r.holder)
}

// sweep renews the leases of the tasks running here and marks failed the
// tasks whose process stopped, until Close.
func (r *Runner) sweep() {
	t := time.NewTicker(Lease / 4)
	defer t.Stop()
	for {
		mine := r.mine()
		for id := range mine {
			r.o.Leases.AcquireLease(r.ctx, leaseName(id), r.holder, r.o.Now(), Lease)
		}
		r.reap(mine)
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Runner) mine() map[int64]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[int64]bool, len(r.running))
	for id := range r.running {
		out[id] = true
	}
	return out
}

func (r *Runner) reap(mine map[int64]bool) {
	tasks, err := r.o.Tasks.Tasks(r.ctx, true)
	if err != nil {
		return
	}
	now := r.o.Now()
	for _, t := range tasks {
		if mine[t.ID] || now.Sub(t.Start) < Lease {
			continue
		}
		// Taking the lease means nobody renews it: its process stopped.
		if ok, err := r.o.Leases.AcquireLease(r.ctx, leaseName(t.ID), r.holder, now, Lease); err != nil || !ok {
			continue
		}
		r.mu.Lock()
		cleanup := r.cleanups[t.Name]
		r.mu.Unlock()
		if cleanup != nil {
			if err := cleanup(r.ctx, t); err != nil {
				r.o.Log.WithError(err).WithField("task_id", t.ID).Warn("clean-up of an interrupted task failed; trying again later")
				r.o.Leases.ReleaseLease(r.ctx, leaseName(t.ID), r.holder)
				continue
			}
		}
		r.o.Log.WithFields(logrus.Fields{"task_id": t.ID, "task": t.Name}).Warn("task interrupted: the process running it stopped")
		r.finish(t.ID, errors.New("interrupted: the process running it stopped; start it again"))
	}
}

// Report records v (marshalled to JSON) as task id's progress, at most once
// a second unless final: a task reports after every step and the store
// hears of it now and then.
func (r *Runner) Report(ctx context.Context, id int64, v any, final bool) {
	now := r.o.Now()
	r.mu.Lock()
	last := r.reported[id]
	if !final && now.Sub(last) < time.Second {
		r.mu.Unlock()
		return
	}
	r.reported[id] = now
	if final {
		delete(r.reported, id)
	}
	r.mu.Unlock()
	b, err := json.Marshal(v)
	if err == nil {
		err = r.o.Tasks.SetTaskProgress(ctx, id, string(b))
	}
	if err != nil {
		r.o.Log.WithError(err).WithField("task_id", id).Debug("task progress not recorded")
	}
}

// ErrBusy is Exclusive's error when another process holds the lease.
var ErrBusy = errors.New("another process is running it")

// Exclusive runs fn holding lease name, renewed while fn runs, so that one
// process at a time does (a transfer from one datastore); ErrBusy if
// another process holds it. The lease of a process of this host that is
// gone (killed) is taken over at once, so a re-run need not wait for it to
// run out. fn's context ends if the lease is lost.
func (r *Runner) Exclusive(ctx context.Context, name string, fn func(context.Context) error) error {
	ok, err := r.o.Leases.AcquireLease(ctx, name, r.holder, r.o.Now(), Lease)
	if err == nil && !ok {
		var holder string
		holder, err = r.o.Leases.LeaseHolderOf(ctx, name, r.o.Now())
		if err == nil && storage.HolderGone(holder, r.holder) {
			r.o.Log.WithFields(logrus.Fields{"lease": name, "holder": holder}).Info("taking over the lease of a process that is gone")
			if err = r.o.Leases.ReleaseLease(ctx, name, holder); err == nil {
				ok, err = r.o.Leases.AcquireLease(ctx, name, r.holder, r.o.Now(), Lease)
			}
		}
	}
	if err != nil {
		return err
	}
	if !ok {
		return ErrBusy
	}
	ctx, cancel := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(Lease / 4)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if ok, err := r.o.Leases.AcquireLease(ctx, name, r.holder, r.o.Now(), Lease); err == nil && !ok {
				r.o.Log.WithField("lease", name).Warn("lease taken over by another process; stopping")
				cancel()
				return
			}
		}
	}()
	err = fn(ctx)
	cancel()
	<-renewed
	release, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	r.o.Leases.ReleaseLease(release, name, r.holder)
	return err
}
