package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/homeserver/homeservertest"
)

// who is one caller of the access matrix.
type who struct {
	name  string
	token string
	host  string
}

var (
	asGlobal     = who{"repository admin", aliceToken, "example.org"}
	asShared     = who{"shared secret", sharedToken, "example.org"}
	asHomeAdmin  = who{"homeserver admin", modToken, "example.org"}
	asOtherAdmin = who{"other tenant's homeserver admin", modToken, "other.example"}
	asUploader   = who{"uploader", carolToken, "example.org"}
	asOtherUser  = who{"other user", bobToken, "example.org"}
	asNobody     = who{"no token", "", "example.org"}
	everyone     = []who{asGlobal, asShared, asHomeAdmin, asOtherAdmin, asUploader, asOtherUser, asNobody}
	globalOnly   = []who{asGlobal, asShared}
	homeAdmins   = []who{asGlobal, asShared, asHomeAdmin}
	serverAdmins = []who{asGlobal, asShared, asHomeAdmin, asOtherAdmin}
	ownersToo    = []who{asGlobal, asShared, asHomeAdmin, asUploader}
	allUsers     = []who{asGlobal, asShared, asHomeAdmin, asUploader, asOtherUser}
)

func (w who) opts() []reqOpt {
	o := []reqOpt{withHost(w.host)}
	if w.token != "" {
		o = append(o, withToken(w.token))
	}
	return o
}

// adminRoute is one route of the access matrix. {id} is a fresh media of
// @carol:example.org, uploaded for each caller.
type adminRoute struct {
	method, path, body string
	allowed            []who
	// refused is the status of a caller not allowed: 403 unless set (a
	// tenant asking about another's media or users may get 400).
	refused map[string]int
}

var mmrAdmin = "/_matrix/media/unstable/admin"

var adminRoutes = []adminRoute{
	{method: "POST", path: mmrAdmin + "/purge/remote?before_ts=%now", allowed: globalOnly},
	{method: "POST", path: "/_matrix/media/unstable/io.t2bot.media/admin/purge_remote?before_ts=%now", allowed: globalOnly},
	{method: "POST", path: "/_matrix/client/unstable/admin/purge_media_cache?before_ts=%now", allowed: globalOnly},
	{method: "POST", path: mmrAdmin + "/purge/old?before_ts=%now", allowed: globalOnly},
	{method: "POST", path: mmrAdmin + "/purge/quarantined", allowed: serverAdmins},
	{method: "POST", path: mmrAdmin + "/purge/user/@carol:example.org", allowed: homeAdmins},
	{method: "POST", path: mmrAdmin + "/purge/server/example.org", allowed: homeAdmins},
	{method: "POST", path: mmrAdmin + "/purge/example.org/{id}", allowed: ownersToo},
	{method: "DELETE", path: "/_matrix/media/unstable/download/example.org/{id}", allowed: ownersToo},
	{method: "POST", path: mmrAdmin + "/quarantine/example.org/{id}", allowed: homeAdmins, refused: map[string]int{asOtherAdmin.name: 400}},
	{method: "POST", path: mmrAdmin + "/quarantine/user/@carol:example.org", allowed: homeAdmins},
	{method: "POST", path: mmrAdmin + "/quarantine/server/example.org", allowed: homeAdmins},
	{method: "GET", path: mmrAdmin + "/datastores", allowed: globalOnly},
	{method: "GET", path: mmrAdmin + "/datastores/local/size_estimate", allowed: globalOnly},
	// before_ts=1 selects nothing: the matrix's media stays where it is.
	{method: "POST", path: mmrAdmin + "/datastores/local/transfer_to/cold?before_ts=1", allowed: globalOnly},
	// Antivirus is off in the matrix's server: the admins are told so.
	{method: "POST", path: mmrAdmin + "/antivirus/rescan", refused: map[string]int{asGlobal.name: 400, asShared.name: 400}},
	{method: "GET", path: mmrAdmin + "/usage/example.org", allowed: globalOnly},
	{method: "GET", path: mmrAdmin + "/usage/example.org/users", allowed: globalOnly},
	{method: "GET", path: mmrAdmin + "/usage/example.org/uploads?mxc=mxc://example.org/{id}", allowed: globalOnly},
	{method: "GET", path: mmrAdmin + "/usage/example.org/users-stats", allowed: homeAdmins},
	{method: "GET", path: mmrAdmin + "/tasks/all", allowed: globalOnly},
	{method: "GET", path: mmrAdmin + "/tasks/unfinished", allowed: globalOnly},
	{method: "GET", path: mmrAdmin + "/media/example.org/{id}/attributes", allowed: homeAdmins},
	{method: "POST", path: mmrAdmin + "/media/example.org/{id}/attributes", body: `{"purpose":"pinned"}`, allowed: homeAdmins},
	// Without federation, another tenant's users do not see this one's media.
	{method: "GET", path: "/_matrix/media/unstable/info/example.org/{id}", allowed: allUsers, refused: map[string]int{asOtherAdmin.name: 404}},
	{method: "POST", path: synapseAdmin + "/media/delete?before_ts=%now", allowed: serverAdmins},
	{method: "POST", path: synapseAdmin + "/media/example.org/delete?before_ts=%now", allowed: homeAdmins, refused: map[string]int{asOtherAdmin.name: 400}},
	{method: "POST", path: synapseAdmin + "/media/quarantine/example.org/{id}", allowed: homeAdmins, refused: map[string]int{asOtherAdmin.name: 400}},
	{method: "POST", path: synapseAdmin + "/media/unquarantine/example.org/{id}", allowed: homeAdmins},
	{method: "POST", path: synapseAdmin + "/media/protect/{id}", allowed: serverAdmins},
	{method: "POST", path: synapseAdmin + "/media/unprotect/{id}", allowed: serverAdmins},
	{method: "GET", path: synapseAdmin + "/media/example.org/{id}", allowed: homeAdmins},
	{method: "DELETE", path: synapseAdmin + "/media/example.org/{id}", allowed: homeAdmins, refused: map[string]int{asOtherAdmin.name: 400}},
	{method: "POST", path: synapseAdmin + "/user/@carol:example.org/media/quarantine", allowed: homeAdmins},
	{method: "POST", path: synapseAdmin + "/purge_media_cache?before_ts=%now", allowed: serverAdmins},
	{method: "GET", path: synapseAdmin + "/users/@carol:example.org/media", allowed: homeAdmins, refused: map[string]int{asOtherAdmin.name: 400}},
	{method: "DELETE", path: synapseAdmin + "/users/@carol:example.org/media", allowed: homeAdmins, refused: map[string]int{asOtherAdmin.name: 400}},
	{method: "GET", path: synapseAdmin + "/statistics/users/media", allowed: serverAdmins},
}

const synapseAdmin = "/_synapse/admin/v1"

// TestAdminAccessMatrix calls every admin route as every kind of caller:
// those allowed get 200, a valid token not allowed 403 (never 401, on which
// clients log out), no token 401.
func TestAdminAccessMatrix(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		ts := newTestServer(t, backend, nil)
		for _, rt := range adminRoutes {
			for _, w := range everyone {
				id := ts.mustUpload(t, []byte(fmt.Sprintf("media of carol for %s %s %s", rt.method, rt.path, w.name)), "text/plain", "", withToken(carolToken))
				path := strings.ReplaceAll(rt.path, "{id}", id)
				path = strings.ReplaceAll(path, "%now", fmt.Sprint(time.Now().Add(time.Hour).UnixMilli()))
				resp, body := ts.do(t, rt.method, path, strings.NewReader(rt.body), w.opts()...)
				want := http.StatusOK
				switch {
				case w == asNobody:
					want = http.StatusUnauthorized
				case !contains(rt.allowed, w):
					want = http.StatusForbidden
					if s, ok := rt.refused[w.name]; ok {
						want = s
					}
				}
				if resp.StatusCode != want {
					t.Errorf("%s %s as %s: %d %s, want %d", rt.method, rt.path, w.name, resp.StatusCode, body, want)
				}
				if want != http.StatusOK {
					wantError(t, resp, body, want, map[int]string{401: "M_MISSING_TOKEN", 403: "M_FORBIDDEN", 400: "M_UNKNOWN", 404: "M_NOT_FOUND"}[want])
				}
			}
		}
	})
}

func contains(list []who, w who) bool {
	for _, x := range list {
		if x == w {
			return true
		}
	}
	return false
}

// adminJSON sends an admin request as w and decodes a 200 answer.
func (ts *testServer) adminJSON(t *testing.T, w who, method, path string, out any) {
	t.Helper()
	resp, body := ts.do(t, method, path, nil, w.opts()...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s as %s: %d %s", method, path, w.name, resp.StatusCode, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, body)
		}
	}
}

func TestQuarantineByHashAcrossMedia(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		ts := newTestServer(t, backend, nil)
		bad := photo(t, 300, 200)
		first := ts.mustUpload(t, bad, "image/png", "", withToken(carolToken))
		copyOf := ts.mustUpload(t, bad, "image/png", "", withToken(bobToken))
		other := ts.mustUpload(t, photo(t, 301, 200), "image/png", "")
		var q struct {
			N int `json:"num_quarantined"`
		}
		ts.adminJSON(t, asHomeAdmin, "POST", mmrAdmin+"/quarantine/example.org/"+first, &q)
		if q.N != 2 {
			t.Errorf("num_quarantined = %d, want 2 (both media with those bytes)", q.N)
		}
		for _, id := range []string{first, copyOf} {
			resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(bobToken))
			wantError(t, resp, body, 404, "M_NOT_FOUND")
			// The thumbnail is the replacement image, of the size chosen.
			resp, body = ts.do(t, "GET", "/_matrix/client/v1/media/thumbnail/example.org/"+id+"?width=96&height=96&method=crop", nil, withToken(bobToken))
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
				t.Fatalf("thumbnail of quarantined media = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			img, err := png.Decode(bytes.NewReader(body))
			if err != nil || img.Bounds().Dx() != 96 || img.Bounds().Dy() != 96 {
				t.Errorf("replacement thumbnail: %v, %v; want a 96x96 PNG", img.Bounds(), err)
			}
			resp, body = ts.do(t, "GET", "/_matrix/federation/v1/media/download/"+id, nil)
			if resp.StatusCode != 401 && resp.StatusCode != 404 {
				t.Errorf("federation download of quarantined media = %d %s", resp.StatusCode, body)
			}
			resp, body = ts.do(t, "GET", "/_matrix/media/unstable/info/example.org/"+id, nil, withToken(bobToken))
			wantError(t, resp, body, 404, "M_NOT_FOUND")
		}
		if resp, _ := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+other, nil, withToken(bobToken)); resp.StatusCode != 200 {
			t.Errorf("other media after the quarantine: %d", resp.StatusCode)
		}
		// An admin may still look, asking explicitly.
		resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+first+"?admin_unsafely_bypass_quarantine=true", nil, withToken(modToken))
		if resp.StatusCode != 200 || !bytes.Equal(body, bad) {
			t.Errorf("admin bypass = %d, want the bytes", resp.StatusCode)
		}
		resp, body = ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+first+"?admin_unsafely_bypass_quarantine=true", nil, withToken(bobToken))
		wantError(t, resp, body, 404, "M_NOT_FOUND")
		// The bytes cannot come back under a new ID.
		resp, body = ts.do(t, "POST", "/_matrix/media/v3/upload", bytes.NewReader(bad), withToken(bobToken))
		wantError(t, resp, body, 403, "M_FORBIDDEN")
		// Synapse's media_info names who quarantined it.
		var info struct {
			Info map[string]any `json:"media_info"`
		}
		ts.adminJSON(t, asGlobal, "GET", synapseAdmin+"/media/example.org/"+copyOf, &info)
		if info.Info["quarantined_by"] != "@mod:example.org" || info.Info["media_origin"] != nil {
			t.Errorf("media_info = %v", info.Info)
		}
		// Lifted, both are served again.
		ts.adminJSON(t, asGlobal, "POST", synapseAdmin+"/media/unquarantine/example.org/"+first, nil)
		if resp, _ := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+copyOf, nil, withToken(bobToken)); resp.StatusCode != 200 {
			t.Errorf("after unquarantine: %d", resp.StatusCode)
		}
	})
}

// A homeserver admin's quarantine covers their homeserver's media only: the
// same bytes on another tenant stay served.
func TestQuarantineOfOneTenantSparesAnother(t *testing.T) {
	ts := newTestServer(t, "sqlite", func(c *config.Config) { c.Quarantine.ReplaceDownloads = true })
	bytesOf := []byte("the same bytes on two homeservers")
	here := ts.mustUpload(t, bytesOf, "text/plain", "", withToken(carolToken))
	there := ts.mustUpload(t, bytesOf, "text/plain", "", withToken(carolToken), withHost("other.example"))
	ts.adminJSON(t, asHomeAdmin, "POST", mmrAdmin+"/quarantine/example.org/"+here, nil)
	resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/download/other.example/"+there, nil, withToken(bobToken), withHost("other.example"))
	if resp.StatusCode != 200 || !bytes.Equal(body, bytesOf) {
		t.Errorf("other tenant's copy = %d %q, want it served", resp.StatusCode, body)
	}
	// replaceDownloads: the quarantined one is the 512x512 replacement.
	resp, body = ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+here, nil, withToken(bobToken))
	img, err := png.Decode(bytes.NewReader(body))
	if resp.StatusCode != 200 || err != nil || img.Bounds().Dx() != 512 || !strings.Contains(resp.Header.Get("Content-Disposition"), "not_allowed.png") {
		t.Errorf("replaced download = %d %v %v %q", resp.StatusCode, err, img, resp.Header.Get("Content-Disposition"))
	}
	// other.example's own admin can still upload those bytes there.
	if resp, body := ts.do(t, "POST", "/_matrix/media/v3/upload", bytes.NewReader(bytesOf), withToken(bobToken), withHost("other.example")); resp.StatusCode != 200 {
		t.Errorf("upload of the bytes to other.example = %d %s", resp.StatusCode, body)
	}
}

// blobPath is where the disk datastore keeps a blob.
func blobPath(ts *testServer, sum string) string {
	return filepath.Join(ts.blobs.Root(), sum[0:2], sum[2:4], sum)
}

func TestPurgeKeepsSharedBlobs(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		ts := newTestServer(t, backend, nil)
		shared := []byte("bytes two media share")
		a := ts.mustUpload(t, shared, "text/plain", "", withToken(carolToken))
		b := ts.mustUpload(t, shared, "text/plain", "", withToken(bobToken))
		var info struct {
			Info struct {
				SHA256 string `json:"sha256"`
			} `json:"media_info"`
		}
		ts.adminJSON(t, asGlobal, "GET", synapseAdmin+"/media/example.org/"+a, &info)
		path := blobPath(ts, info.Info.SHA256)
		ts.adminJSON(t, asUploader, "DELETE", "/_matrix/media/unstable/download/example.org/"+a, nil)
		if resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+b, nil, withToken(bobToken)); resp.StatusCode != 200 || !bytes.Equal(body, shared) {
			t.Fatalf("the other media after the purge: %d %q", resp.StatusCode, body)
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("shared blob gone after purging one of its media: %v", err)
		}
		resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+a, nil, withToken(bobToken))
		wantError(t, resp, body, 404, "M_NOT_FOUND")
		var deleted struct {
			IDs   []string `json:"deleted_media"`
			Total int      `json:"total"`
		}
		ts.adminJSON(t, asHomeAdmin, "DELETE", synapseAdmin+"/media/example.org/"+b, &deleted)
		if deleted.Total != 1 || len(deleted.IDs) != 1 || deleted.IDs[0] != b {
			t.Errorf("deleted %+v", deleted)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("blob kept after its last media was purged: %v", err)
		}
		resp, body = ts.do(t, "DELETE", synapseAdmin+"/media/example.org/"+b, nil, asHomeAdmin.opts()...)
		wantError(t, resp, body, 404, "M_NOT_FOUND")
	})
}

func TestPinnedMediaSurvivesPurges(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		ts := newTestServer(t, backend, nil)
		pinned := ts.mustUpload(t, []byte("keep me"), "text/plain", "", withToken(carolToken))
		loose := ts.mustUpload(t, []byte("purge me"), "text/plain", "", withToken(carolToken))
		resp, body := ts.do(t, "POST", mmrAdmin+"/media/example.org/"+pinned+"/attributes", strings.NewReader(`{"purpose":"pinned"}`), asHomeAdmin.opts()...)
		if resp.StatusCode != 200 {
			t.Fatalf("set attributes: %d %s", resp.StatusCode, body)
		}
		var attrs struct {
			Purpose string `json:"purpose"`
		}
		ts.adminJSON(t, asGlobal, "GET", mmrAdmin+"/media/example.org/"+pinned+"/attributes", &attrs)
		if attrs.Purpose != "pinned" {
			t.Fatalf("purpose = %q", attrs.Purpose)
		}
		later := time.Now().Add(time.Hour).UnixMilli()
		var purged struct {
			Affected []string `json:"affected"`
		}
		ts.adminJSON(t, asGlobal, "POST", fmt.Sprintf("%s/purge/old?before_ts=%d&include_local=true", mmrAdmin, later), &purged)
		if len(purged.Affected) != 1 || purged.Affected[0] != "mxc://example.org/"+loose {
			t.Errorf("purge/old affected %v, want only the unpinned media", purged.Affected)
		}
		ts.adminJSON(t, asGlobal, "POST", fmt.Sprintf("%s/purge/user/@carol:example.org?before_ts=%d", mmrAdmin, later), nil)
		var q struct {
			N int `json:"num_quarantined"`
		}
		ts.adminJSON(t, asGlobal, "POST", mmrAdmin+"/quarantine/example.org/"+pinned, &q)
		if q.N != 0 {
			t.Errorf("pinned media quarantined: %d", q.N)
		}
		if resp, _ := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+pinned, nil, withToken(bobToken)); resp.StatusCode != 200 {
			t.Errorf("pinned media after the purges: %d", resp.StatusCode)
		}
		resp, body = ts.do(t, "POST", mmrAdmin+"/media/example.org/"+pinned+"/attributes", strings.NewReader(`{"purpose":"precious"}`), asGlobal.opts()...)
		wantError(t, resp, body, 400, "M_UNKNOWN")
	})
}

// A purge racing uploads of the same bytes loses nothing: every media that
// exists afterwards downloads whole.
func TestPurgeRacingUploadsOfTheSameBytes(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		ts := newTestServer(t, backend, nil)
		content := []byte("bytes uploaded and purged at once, over and over")
		for round := range 20 {
			old := ts.mustUpload(t, content, "text/plain", "", withToken(carolToken))
			var wg sync.WaitGroup
			var fresh string
			wg.Add(2)
			go func() {
				defer wg.Done()
				ts.do(t, "DELETE", "/_matrix/media/unstable/download/example.org/"+old, nil, withToken(carolToken))
			}()
			go func() {
				defer wg.Done()
				fresh = ts.mustUpload(t, content, "text/plain", "", withToken(bobToken))
			}()
			wg.Wait()
			resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+fresh, nil, withToken(bobToken))
			if resp.StatusCode != 200 || !bytes.Equal(body, content) {
				t.Fatalf("round %d: the upload made during the purge: %d %q", round, resp.StatusCode, body)
			}
			ts.do(t, "DELETE", "/_matrix/media/unstable/download/example.org/"+fresh, nil, withToken(bobToken))
		}
	})
}

func TestLogoutRefusesTheTokenAtOnce(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	id := ts.mustUpload(t, []byte("hello"), "text/plain", "")
	ts.fake.AddToken("phone-token", homeservertest.User{UserID: "@carol:example.org"})
	ts.fake.AddToken("laptop-token", homeservertest.User{UserID: "@carol:example.org"})
	download := func(token string) int {
		resp, _ := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(token))
		return resp.StatusCode
	}
	for _, tok := range []string{"phone-token", "laptop-token", bobToken} {
		if s := download(tok); s != 200 {
			t.Fatalf("%s before logout: %d", tok, s) // and now cached
		}
	}
	resp, body := ts.do(t, "POST", "/_matrix/client/v3/logout", nil, withToken("phone-token"))
	if resp.StatusCode != 200 || string(bytes.TrimSpace(body)) != "{}" {
		t.Fatalf("logout = %d %s", resp.StatusCode, body)
	}
	if s := download("phone-token"); s != 401 {
		t.Errorf("logged-out token downloads: %d, want 401 at once", s)
	}
	if s := download("laptop-token"); s != 200 {
		t.Errorf("another device after one logout: %d", s)
	}
	resp, body = ts.do(t, "POST", "/_matrix/client/r0/logout/all", nil, withToken("laptop-token"))
	if resp.StatusCode != 200 {
		t.Fatalf("logout/all = %d %s", resp.StatusCode, body)
	}
	if s := download("laptop-token"); s != 401 {
		t.Errorf("after logout/all: %d, want 401", s)
	}
	if s := download(bobToken); s != 200 {
		t.Errorf("another user after logout/all: %d", s)
	}
	resp, body = ts.do(t, "POST", "/_matrix/client/v3/logout", nil)
	wantError(t, resp, body, 401, "M_MISSING_TOKEN")
	calls := ts.fake.Calls()
	resp, body = ts.do(t, "POST", "/_matrix/client/v3/logout", nil, withToken(sharedToken))
	wantError(t, resp, body, 400, "M_UNKNOWN")
	if ts.fake.Calls() != calls {
		t.Error("the shared secret was sent to the homeserver")
	}
}

// A thumbnail removed behind this process's back (expired by another
// process whose message was lost) is made again, not a failure.
func TestRemovedThumbnailIsMadeAgain(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	id := ts.mustUpload(t, photo(t, 300, 200), "image/png", "")
	path := "/_matrix/client/v1/media/thumbnail/example.org/" + id + "?width=96&height=96&method=crop"
	resp, first := ts.do(t, "GET", path, nil, withToken(bobToken))
	if resp.StatusCode != 200 {
		t.Fatalf("first thumbnail: %d", resp.StatusCode)
	}
	refs, err := ts.meta.DeleteThumbnails(context.Background(), nil, time.Now().Add(time.Hour))
	if err != nil || len(refs) == 0 {
		t.Fatalf("DeleteThumbnails = %v, %v", refs, err)
	}
	for _, ref := range refs {
		ts.blobs.Delete(context.Background(), ref.SHA256)
	}
	resp, again := ts.do(t, "GET", path, nil, withToken(bobToken))
	if resp.StatusCode != 200 || !bytes.Equal(again, first) {
		t.Errorf("thumbnail after its removal = %d, %d bytes; want it made again", resp.StatusCode, len(again))
	}
}

// With adminApiKind synapse, room routes list the room's media through the
// homeserver; a homeserver admin's reach its local media only. With any
// other kind they say the homeserver cannot.
func TestRoomQuarantineAndPurge(t *testing.T) {
	ts := newTestServer(t, "sqlite", func(c *config.Config) { c.Homeservers[0].AdminAPIKind = config.AdminAPISynapse })
	local := ts.mustUpload(t, []byte("local media in the room"), "text/plain", "", withToken(carolToken))
	elsewhere := ts.mustUpload(t, []byte("media of the other tenant"), "text/plain", "", withToken(carolToken), withHost("other.example"))
	ts.fake.SetRoom("!abuse:example.org", homeservertest.RoomMedia{
		Local: []string{"mxc://example.org/" + local}, Remote: []string{"mxc://other.example/" + elsewhere, "not an mxc"},
	})
	var q struct {
		N int `json:"num_quarantined"`
	}
	// The homeserver admin's reaches the local media, not the other tenant's.
	ts.adminJSON(t, asHomeAdmin, "POST", synapseAdmin+"/room/%21abuse:example.org/media/quarantine", &q)
	if q.N != 1 {
		t.Errorf("homeserver admin's room quarantine = %d, want the 1 local media", q.N)
	}
	if resp, _ := ts.do(t, "GET", "/_matrix/client/v1/media/download/other.example/"+elsewhere, nil, withToken(bobToken), withHost("other.example")); resp.StatusCode != 200 {
		t.Errorf("the other tenant's media after a homeserver admin's room quarantine: %d", resp.StatusCode)
	}
	resp, body := ts.do(t, "POST", mmrAdmin+"/quarantine/room/%21nope:example.org", nil, asHomeAdmin.opts()...)
	wantError(t, resp, body, 404, "M_NOT_FOUND")
	// A user is refused before the homeserver is asked.
	resp, body = ts.do(t, "POST", mmrAdmin+"/purge/room/%21abuse:example.org", nil, asOtherUser.opts()...)
	wantError(t, resp, body, 403, "M_FORBIDDEN")
	var purged struct {
		Affected []string `json:"affected"`
	}
	ts.adminJSON(t, asHomeAdmin, "POST", mmrAdmin+"/purge/room/%21abuse:example.org", &purged)
	if len(purged.Affected) != 1 || purged.Affected[0] != "mxc://example.org/"+local {
		t.Errorf("homeserver admin's room purge affected %v, want only the local media", purged.Affected)
	}
	// The shared secret has no homeserver token to list rooms with.
	resp, body = ts.do(t, "POST", mmrAdmin+"/quarantine/room/%21abuse:example.org", nil, asShared.opts()...)
	wantError(t, resp, body, 400, "M_UNKNOWN")

	plain := newTestServer(t, "sqlite", nil) // adminApiKind matrix
	resp, body = plain.do(t, "POST", mmrAdmin+"/quarantine/room/%21abuse:example.org", nil, asGlobal.opts()...)
	wantError(t, resp, body, 501, "M_UNRECOGNIZED")
}
