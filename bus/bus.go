// Package bus tells every process sharing the database about changes their
// caches must see at once: a logout, a quarantine, a purge. It delivers in
// this process at once, and to the others through the store's Broadcaster
// where there is one (PostgreSQL's NOTIFY); a single process on SQLite needs
// none. Handlers must be idempotent: this process hears its own broadcasts
// again. It imports storage only.
package bus

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/storage"
)

// Topics.
const (
	// Token: payload is a homeserver.TokenKey, logged out.
	Token = "token"
	// User: payload is a user ID, logged out of every device.
	User = "user"
	// Media: payload is "origin/mediaID" whose row or thumbnails changed
	// (quarantined, protected, purged), or "" for any number of them.
	Media = "media"
)

// Bus delivers published changes to the handlers subscribed to them.
type Bus struct {
	cast storage.Broadcaster // nil: this process only
	log  *logrus.Entry

	mu   sync.RWMutex
	subs map[string][]func(payload string)

	stop context.CancelFunc
	done chan struct{}
}

// New returns a Bus over cast (nil for this process only) and, with cast,
// starts listening to the other processes until Close.
func New(cast storage.Broadcaster, log *logrus.Entry) *Bus {
	b := &Bus{cast: cast, log: log, subs: map[string][]func(string){}, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	b.stop = cancel
	if cast == nil {
		close(b.done)
		return b
	}
	go func() {
		defer close(b.done)
		for ctx.Err() == nil {
			err := cast.WatchBroadcasts(ctx, b.deliver)
			if err != nil && !errors.Is(err, context.Canceled) {
				log.WithError(err).Warn("listening for other processes' cache changes failed; retrying")
				select {
				case <-ctx.Done():
				case <-time.After(5 * time.Second):
				}
			}
		}
	}()
	return b
}

// Subscribe calls fn with the payload of every change published on topic,
// here or in another process.
func (b *Bus) Subscribe(topic string, fn func(payload string)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs[topic] = append(b.subs[topic], fn)
}

// Publish delivers payload on topic here at once, then to the other
// processes. An error means they may not have heard; this one has.
func (b *Bus) Publish(ctx context.Context, topic, payload string) error {
	b.deliver(topic, payload)
	if b.cast == nil {
		return nil
	}
	return b.cast.Broadcast(ctx, topic, payload)
}

func (b *Bus) deliver(topic, payload string) {
	b.mu.RLock()
	fns := b.subs[topic]
	b.mu.RUnlock()
	for _, fn := range fns {
		fn(payload)
	}
}

// Close stops listening and waits for the listener to end.
func (b *Bus) Close() error {
	b.stop()
	<-b.done
	return nil
}
