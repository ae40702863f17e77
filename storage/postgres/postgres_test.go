package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/storage/postgres"

	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

func TestMetadataStore(t *testing.T) {
	storagetest.RunMetadataStores(t, func(t *testing.T) *postgres.Store {
		return storagetest.OpenPostgres(t)
	})
}

// twoProcesses opens two stores on one fresh schema, as two processes would.
func twoProcesses(t *testing.T) (a, b *postgres.Store) {
	dsn := storagetest.PostgresDSN(t)
	pool := config.Pool{MaxConnections: 4, MaxIdleConnections: 2}
	for _, s := range []**postgres.Store{&a, &b} {
		st, _, err := postgres.Open(context.Background(), dsn, pool)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		*s = st
	}
	return a, b
}

func TestWatchUploadsAcrossConnections(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watcher, other := twoProcesses(t)

	seen := make(chan string, 4)
	done := make(chan error, 1)
	go func() {
		done <- watcher.WatchUploads(ctx, func(origin, id string) { seen <- origin + "/" + id })
	}()
	// LISTEN starts asynchronously: upload until one is heard (each is new).
	deadline := time.After(10 * time.Second)
	for i := 0; ; i++ {
		id := fmt.Sprintf("watched%d", i)
		now := time.Now()
		p := &storage.Pending{Origin: "example.org", MediaID: id, UserID: "@a:example.org", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := other.CreatePending(ctx, p, 0); err != nil {
			t.Fatal(err)
		}
		m := &storage.Media{Origin: "example.org", MediaID: id, UserID: "@a:example.org", ContentType: "text/plain",
			SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", SizeBytes: 4, DatastoreID: "d", CreatedAt: now}
		if err := other.CompleteUpload(ctx, m, storage.Quota{}, nil); err != nil {
			t.Fatal(err)
		}
		if heard(t, seen, deadline, "example.org/watched") {
			break
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("WatchUploads returned %v, want context.Canceled", err)
	}
}

func TestBroadcastsReachOtherConnections(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watcher, other := twoProcesses(t)
	seen := make(chan string, 16)
	done := make(chan error, 1)
	go func() {
		done <- watcher.WatchBroadcasts(ctx, func(topic, payload string) { seen <- topic + "=" + payload })
	}()
	deadline := time.After(10 * time.Second)
	for i := 0; ; i++ {
		payload := fmt.Sprintf("user%d\nwith a newline", i)
		if err := other.Broadcast(ctx, "logout", payload); err != nil {
			t.Fatal(err)
		}
		if heard(t, seen, deadline, "logout=user"+fmt.Sprint(i)+"\nwith a newline") {
			break
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("WatchBroadcasts returned %v, want context.Canceled", err)
	}
}

// heard waits up to 300 ms (LISTEN starts asynchronously) for a message on
// seen that starts with prefix, skipping the others: tests of other packages
// share the database and its channels.
func heard(t *testing.T, seen <-chan string, deadline <-chan time.Time, prefix string) bool {
	t.Helper()
	wait := time.After(300 * time.Millisecond)
	for {
		select {
		case got := <-seen:
			if strings.HasPrefix(got, prefix) {
				return true
			}
		case <-wait:
			return false
		case <-deadline:
			t.Fatalf("nothing starting with %q heard", prefix)
		}
	}
}

func TestOutageIsUnavailable(t *testing.T) {
	dsn := storagetest.PostgresDSN(t)
	proxy := storagetest.StartProxy(t, storagetest.PostgresHost(t))
	s, _, err := postgres.Open(context.Background(), storagetest.PostgresDSNVia(t, dsn, proxy), config.Pool{MaxConnections: 4, MaxIdleConnections: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Media(ctx, "example.org", "x"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Media before the outage = %v, want ErrNotFound", err)
	}
	proxy.Cut()
	for _, call := range map[string]func() error{
		"read": func() error { _, err := s.Media(ctx, "example.org", "x"); return err },
		"write": func() error {
			return s.CreateMedia(ctx, &storage.Media{Origin: "example.org", MediaID: "y", SHA256: "z"}, storage.Quota{}, nil)
		},
		"usage": func() error { _, err := s.Usage(ctx, "@a:example.org"); return err },
	} {
		if err := call(); !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("during the outage: %v, want ErrUnavailable", err)
		}
	}
	proxy.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.Media(ctx, "example.org", "x")
		if errors.Is(err, storage.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the outage: %v, want the store back", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLockAcrossProcesses: a lock held by one process keeps the other
// waiting until it is released, and a process that dies holding it gives
// it up.
func TestLockAcrossProcesses(t *testing.T) {
	dsn := storagetest.PostgresDSN(t)
	// The first process is named, so that the test can end its connections.
	name := fmt.Sprintf("lock_holder_%d", time.Now().UnixNano())
	var a, b *postgres.Store
	for i, s := range []**postgres.Store{&a, &b} {
		d := dsn
		if i == 0 {
			d += "&application_name=" + name
		}
		st, _, err := postgres.Open(context.Background(), d, config.Pool{MaxConnections: 4, MaxIdleConnections: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		*s = st
	}
	ctx := context.Background()
	unlock, err := a.Lock(ctx, "thumbnails:example.org/x")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	if _, err := b.Lock(short, "thumbnails:example.org/x"); err == nil {
		t.Fatal("the other process took a held lock")
	}
	cancel()
	other, err := b.Lock(ctx, "thumbnails:example.org/y")
	if err != nil {
		t.Fatalf("another key: %v", err)
	}
	other()
	got := make(chan error, 1)
	go func() {
		unlockB, err := b.Lock(ctx, "thumbnails:example.org/x")
		if err == nil {
			unlockB()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("Lock returned %v while the other process held it", err)
	case <-time.After(200 * time.Millisecond):
	}
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("Lock after release: %v", err)
	}

	// A holder that dies: its connection ends (here: the server ends it, as
	// it does when the process's socket closes), and so does its lock.
	if _, err := a.Lock(ctx, "remote:far.example/z"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DB().ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, name); err != nil {
		t.Fatal(err)
	}
	waited, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	unlockB, err := b.Lock(waited, "remote:far.example/z")
	if err != nil {
		t.Fatalf("lock of a closed process: %v", err)
	}
	unlockB()
}

// TestLockLeavesConnectionsForWork: however many locks are waited for, a
// half of the pool at most is taken, so holders can still query.
func TestLockLeavesConnectionsForWork(t *testing.T) {
	a, b := twoProcesses(t) // pools of 4: two lock connections each
	ctx := context.Background()
	unlock, err := a.Lock(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range 10 {
		go b.Lock(waitCtx, "k") // all waiting
	}
	time.Sleep(100 * time.Millisecond)
	query, done := context.WithTimeout(ctx, 5*time.Second)
	defer done()
	if _, err := b.Media(query, "example.org", "nothing"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a query with ten lock waiters = %v, want ErrNotFound (a free connection)", err)
	}
	cancel()
	unlock()
}
