package homeserver_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/homeserver"
	"github.com/mediarepo/mediarepo/homeserver/homeservertest"
)

func TestClientWhoAmI(t *testing.T) {
	fake := homeservertest.WhoAmI(t, map[string]homeservertest.User{
		"alice-token": {UserID: "@alice:example.org", DeviceID: "DEV"},
		"guest-token": {UserID: "@guest:example.org", IsGuest: true},
	})
	hs := &config.Homeserver{Name: "example.org", CSAPI: fake.URL + "/"}
	c := homeserver.NewClient(30 * time.Second)
	ctx := context.Background()

	id, err := c.WhoAmI(ctx, hs, "alice-token")
	if err != nil || id != (homeserver.Identity{UserID: "@alice:example.org", DeviceID: "DEV"}) {
		t.Errorf("WhoAmI(alice) = %+v, %v", id, err)
	}
	id, err = c.WhoAmI(ctx, hs, "guest-token")
	if err != nil || !id.IsGuest {
		t.Errorf("WhoAmI(guest) = %+v, %v; want a guest", id, err)
	}

	_, err = c.WhoAmI(ctx, hs, "nope")
	var te *homeserver.TokenError
	if !errors.As(err, &te) || te.Status != 401 || te.Code != "M_UNKNOWN_TOKEN" || !te.SoftLogout {
		t.Errorf("WhoAmI(nope) = %v, want relayed 401 M_UNKNOWN_TOKEN soft_logout", err)
	}
	if !errors.Is(err, homeserver.ErrUnknownToken) {
		t.Errorf("WhoAmI(nope) error is not ErrUnknownToken: %v", err)
	}

	fake.FailWith(http.StatusBadGateway)
	if _, err := c.WhoAmI(ctx, hs, "alice-token"); !errors.Is(err, homeserver.ErrUnreachable) {
		t.Errorf("WhoAmI on 502 = %v, want ErrUnreachable", err)
	}

	down := &config.Homeserver{Name: "down.example", CSAPI: "http://127.0.0.1:1"}
	if _, err := c.WhoAmI(ctx, down, "alice-token"); !errors.Is(err, homeserver.ErrUnreachable) {
		t.Errorf("WhoAmI on closed port = %v, want ErrUnreachable", err)
	}
}

func TestCachedAuthenticator(t *testing.T) {
	fake := homeservertest.WhoAmI(t, map[string]homeservertest.User{"tok": {UserID: "@a:example.org"}})
	hs := &config.Homeserver{Name: "example.org", CSAPI: fake.URL}
	other := &config.Homeserver{Name: "other.org", CSAPI: fake.URL}
	auth := homeserver.NewCachedAuthenticator(homeserver.NewClient(30*time.Second), time.Hour)
	ctx := context.Background()

	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := auth.WhoAmI(ctx, hs, "tok"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	first := fake.Calls()
	if first < 1 || first > 2 {
		t.Errorf("16 concurrent checks made %d whoami calls, want 1 (2 if one raced the cache fill)", first)
	}
	for range 10 {
		if _, err := auth.WhoAmI(ctx, hs, "tok"); err != nil {
			t.Fatal(err)
		}
	}
	if fake.Calls() != first {
		t.Errorf("cached checks made %d more calls, want 0", fake.Calls()-first)
	}
	// The cache is per homeserver: the same token elsewhere is asked again.
	if _, err := auth.WhoAmI(ctx, other, "tok"); err != nil {
		t.Fatal(err)
	}
	if fake.Calls() != first+1 {
		t.Errorf("other homeserver calls = %d, want %d", fake.Calls(), first+1)
	}

	// Unreachable is never cached: once the homeserver is back, it is asked.
	fake.FailWith(http.StatusServiceUnavailable)
	if _, err := auth.WhoAmI(ctx, hs, "fresh"); !errors.Is(err, homeserver.ErrUnreachable) {
		t.Fatalf("WhoAmI while down = %v", err)
	}
	fake.FailWith(0)
	if _, err := auth.WhoAmI(ctx, hs, "fresh"); !errors.Is(err, homeserver.ErrUnknownToken) {
		t.Errorf("WhoAmI after recovery = %v, want the homeserver's real answer", err)
	}
}

func TestCacheDisabled(t *testing.T) {
	fake := homeservertest.WhoAmI(t, map[string]homeservertest.User{"tok": {UserID: "@a:example.org"}})
	hs := &config.Homeserver{Name: "example.org", CSAPI: fake.URL}
	auth := homeserver.NewCachedAuthenticator(homeserver.NewClient(30*time.Second), 0)
	for range 3 {
		if _, err := auth.WhoAmI(context.Background(), hs, "tok"); err != nil {
			t.Fatal(err)
		}
	}
	if fake.Calls() != 3 {
		t.Errorf("calls = %d with caching off, want 3", fake.Calls())
	}
}
