package bus_test

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/bus"
	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/storage/postgres"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

func quiet() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

// collect subscribes to topic and returns what it hears.
func collect(b *bus.Bus, topic string) func() []string {
	var mu sync.Mutex
	var got []string
	b.Subscribe(topic, func(p string) {
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

func TestLocalDeliveryIsImmediate(t *testing.T) {
	b := bus.New(nil, quiet())
	defer b.Close()
	tokens, users := collect(b, bus.Token), collect(b, bus.User)
	if err := b.Publish(context.Background(), bus.Token, "key1"); err != nil {
		t.Fatal(err)
	}
	if got := tokens(); len(got) != 1 || got[0] != "key1" {
		t.Errorf("token handler heard %v, want [key1] before Publish returned", got)
	}
	if got := users(); len(got) != 0 {
		t.Errorf("another topic's handler heard %v", got)
	}
}

// Two processes on one PostgreSQL: what one publishes the other hears.
func TestAcrossProcesses(t *testing.T) {
	dsn := storagetest.PostgresDSN(t)
	open := func() *postgres.Store {
		s, _, err := postgres.Open(context.Background(), dsn, config.Pool{MaxConnections: 2, MaxIdleConnections: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	busA, busB := bus.New(a, quiet()), bus.New(b, quiet())
	defer busA.Close()
	defer busB.Close()
	heard := collect(busB, bus.User)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		// LISTEN starts asynchronously: publish until heard.
		if err := busA.Publish(context.Background(), bus.User, "@alice:example.org"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		for _, p := range heard() {
			if p == "@alice:example.org" {
				return
			}
		}
	}
	t.Fatalf("the other process heard %v", heard())
}
