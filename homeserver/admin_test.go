package homeserver_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/homeserver"
	"github.com/mediarepo/mediarepo/homeserver/homeservertest"
)

func TestIsAdmin(t *testing.T) {
	fake := homeservertest.WhoAmI(t, map[string]homeservertest.User{
		"admin": {UserID: "@admin:example.org", Admin: true},
		"user":  {UserID: "@user:example.org"},
	})
	c := homeserver.NewClient(30 * time.Second)
	ctx := context.Background()
	for _, kind := range []string{"", config.AdminAPIMatrix, config.AdminAPIDendrite, config.AdminAPISynapse} {
		hs := &config.Homeserver{Name: "example.org", CSAPI: fake.URL, AdminAPIKind: kind}
		for token, want := range map[string]bool{"admin": true, "user": false, "stranger": false} {
			if got, err := c.IsAdmin(ctx, hs, token); err != nil || got != want {
				t.Errorf("kind %q: IsAdmin(%s) = %v, %v; want %v", kind, token, got, err, want)
			}
		}
	}
	fake.FailWith(http.StatusBadGateway)
	hs := &config.Homeserver{Name: "example.org", CSAPI: fake.URL}
	if _, err := c.IsAdmin(ctx, hs, "admin"); !errors.Is(err, homeserver.ErrUnreachable) {
		t.Errorf("IsAdmin on 502 = %v, want ErrUnreachable (not a refusal)", err)
	}
}

func TestCachedAdmins(t *testing.T) {
	fake := homeservertest.WhoAmI(t, map[string]homeservertest.User{"admin": {UserID: "@admin:example.org", Admin: true}})
	hs := &config.Homeserver{Name: "example.org", CSAPI: fake.URL}
	admins := homeserver.NewCachedAdmins(homeserver.NewClient(30*time.Second), time.Minute)
	ctx := context.Background()
	for range 3 {
		if ok, err := admins.IsAdmin(ctx, hs, "admin"); !ok || err != nil {
			t.Fatalf("IsAdmin = %v, %v", ok, err)
		}
	}
	if n := fake.Calls(); n != 1 {
		t.Errorf("3 checks made %d calls, want 1", n)
	}
	admins.Forget(homeserver.TokenKey(hs, "admin"))
	admins.IsAdmin(ctx, hs, "admin")
	if n := fake.Calls(); n != 2 {
		t.Errorf("after Forget, %d calls, want 2", n)
	}
	fake.FailWith(http.StatusServiceUnavailable)
	admins.Forget(homeserver.TokenKey(hs, "admin"))
	if _, err := admins.IsAdmin(ctx, hs, "admin"); err == nil {
		t.Fatal("a failing homeserver answered")
	}
	fake.FailWith(0)
	if ok, err := admins.IsAdmin(ctx, hs, "admin"); !ok || err != nil {
		t.Errorf("after the outage IsAdmin = %v, %v; a failure must not be remembered", ok, err)
	}
}

func TestRoomMedia(t *testing.T) {
	fake := homeservertest.WhoAmI(t, map[string]homeservertest.User{
		"admin": {UserID: "@admin:example.org", Admin: true},
		"user":  {UserID: "@user:example.org"},
	})
	fake.SetRoom("!room:example.org", homeservertest.RoomMedia{Local: []string{"mxc://example.org/a"}, Remote: []string{"mxc://other.org/b"}})
	c := homeserver.NewClient(30 * time.Second)
	ctx := context.Background()
	synapse := &config.Homeserver{Name: "example.org", CSAPI: fake.URL, AdminAPIKind: config.AdminAPISynapse}
	local, remote, err := c.RoomMedia(ctx, synapse, "admin", "!room:example.org")
	if err != nil || !slices.Equal(local, []string{"mxc://example.org/a"}) || !slices.Equal(remote, []string{"mxc://other.org/b"}) {
		t.Errorf("RoomMedia = %v, %v, %v", local, remote, err)
	}
	if _, _, err := c.RoomMedia(ctx, synapse, "user", "!room:example.org"); !errors.Is(err, homeserver.ErrNotAdmin) {
		t.Errorf("RoomMedia as a user = %v, want ErrNotAdmin", err)
	}
	if _, _, err := c.RoomMedia(ctx, synapse, "admin", "!nope:example.org"); !errors.Is(err, homeserver.ErrUnknownRoom) {
		t.Errorf("RoomMedia of an unknown room = %v, want ErrUnknownRoom", err)
	}
	matrix := &config.Homeserver{Name: "example.org", CSAPI: fake.URL}
	if _, _, err := c.RoomMedia(ctx, matrix, "admin", "!room:example.org"); !errors.Is(err, homeserver.ErrNoRoomMediaAPI) {
		t.Errorf("RoomMedia on adminApiKind matrix = %v, want ErrNoRoomMediaAPI", err)
	}
}

func TestLogoutAndForget(t *testing.T) {
	tokens := map[string]homeservertest.User{
		"phone":  {UserID: "@alice:example.org"},
		"laptop": {UserID: "@alice:example.org"},
		"tablet": {UserID: "@alice:example.org"},
	}
	fake := homeservertest.WhoAmI(t, tokens)
	hs := &config.Homeserver{Name: "example.org", CSAPI: fake.URL}
	c := homeserver.NewClient(30 * time.Second)
	auth := homeserver.NewCachedAuthenticator(c, time.Hour)
	ctx := context.Background()
	for token := range tokens {
		if _, err := auth.WhoAmI(ctx, hs, token); err != nil {
			t.Fatal(err)
		}
	}
	reply, err := c.Logout(ctx, hs, "phone", false)
	if err != nil || reply.Status != 200 || string(reply.Body) != "{}" {
		t.Fatalf("Logout = %+v, %v", reply, err)
	}
	// Cached, the token still works until it is forgotten.
	if _, err := auth.WhoAmI(ctx, hs, "phone"); err != nil {
		t.Fatalf("cached token before Forget: %v", err)
	}
	auth.Forget(homeserver.TokenKey(hs, "phone"))
	if _, err := auth.WhoAmI(ctx, hs, "phone"); !errors.Is(err, homeserver.ErrUnknownToken) {
		t.Errorf("after logout and Forget: %v, want ErrUnknownToken", err)
	}
	if _, err := auth.WhoAmI(ctx, hs, "laptop"); err != nil {
		t.Errorf("another device's token went too: %v", err)
	}
	if _, err := c.Logout(ctx, hs, "laptop", true); err != nil {
		t.Fatal(err)
	}
	auth.ForgetUser("@alice:example.org")
	for _, token := range []string{"laptop", "tablet"} {
		if _, err := auth.WhoAmI(ctx, hs, token); !errors.Is(err, homeserver.ErrUnknownToken) {
			t.Errorf("%s after logout/all and ForgetUser: %v, want ErrUnknownToken", token, err)
		}
	}
	reply, err = c.Logout(ctx, hs, "laptop", false)
	if err != nil || reply.Status != 401 {
		t.Errorf("Logout of a dead token = %+v, %v; want the homeserver's 401 relayed", reply, err)
	}
}

func TestAvatarURL(t *testing.T) {
	fake := homeservertest.WhoAmI(t, map[string]homeservertest.User{
		"a": {UserID: "@alice:example.org", Avatar: "mxc://example.org/face"},
		"b": {UserID: "@bob:example.org"},
	})
	hs := &config.Homeserver{Name: "example.org", CSAPI: fake.URL}
	c := homeserver.NewClient(30 * time.Second)
	if got, err := c.AvatarURL(context.Background(), hs, "b", "@alice:example.org"); err != nil || got != "mxc://example.org/face" {
		t.Errorf("AvatarURL(alice) = %q, %v", got, err)
	}
	if got, err := c.AvatarURL(context.Background(), hs, "a", "@bob:example.org"); err != nil || got != "" {
		t.Errorf("AvatarURL(bob) = %q, %v; want none", got, err)
	}
}
