package api_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/antivirus"
	"github.com/mediarepo/mediarepo/antivirus/clamdtest"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

// scanningServer is a test server whose uploads a real clamd scans.
func scanningServer(t *testing.T, clamd *clamdtest.Clamd, failOpen bool) *testServer {
	s, err := antivirus.New(antivirus.Options{Address: clamd.Unix, Timeout: 5 * time.Second, FailOpen: failOpen})
	if err != nil {
		t.Fatal(err)
	}
	return newTestServerOn(t, storagetest.OpenSQLite(t), filepath.Join(t.TempDir(), "blobs"), nil,
		func(o *stack) { o.scanner = s })
}

// TestUploadsAreScanned: with a real clamd, a clean upload is stored, an
// infected one (plain or asynchronous) is refused with 403 M_FORBIDDEN and
// leaves nothing; clamd down refuses uploads with 503 and Retry-After, or,
// failing open, lets them through.
func TestUploadsAreScanned(t *testing.T) {
	clamd := clamdtest.Start(t)
	ts := scanningServer(t, clamd, false)
	clean := []byte("a holiday photo, honestly")
	id := ts.mustUpload(t, clean, "text/plain", "", withToken(carolToken))
	if resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(bobToken)); resp.StatusCode != 200 || !bytes.Equal(body, clean) {
		t.Fatalf("clean upload: download %d %q", resp.StatusCode, body)
	}
	blobs := storagetest.CountBlobs(t, ts.blobs.Root())

	infected := append(bytes.Repeat([]byte("padding "), 100000), clamdtest.Pattern...)
	resp, body := ts.do(t, "POST", "/_matrix/media/v3/upload", bytes.NewReader(infected), withToken(carolToken))
	wantError(t, resp, body, 403, "M_FORBIDDEN")
	if n := storagetest.CountBlobs(t, ts.blobs.Root()); n != blobs {
		t.Errorf("%d blobs after an infected upload, want %d (nothing stored)", n, blobs)
	}
	if !strings.Contains(ts.logs.String(), clamdtest.Signature) {
		t.Error("the refusal was not logged with the signature's name")
	}

	reserved := ts.mustCreate(t, carolToken)
	resp, body = ts.do(t, "PUT", "/_matrix/media/v3/upload/example.org/"+reserved, bytes.NewReader(infected), withToken(carolToken))
	wantError(t, resp, body, 403, "M_FORBIDDEN")
	resp, body = ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+reserved+"?timeout_ms=0", nil, withToken(bobToken))
	if resp.StatusCode == 200 {
		t.Errorf("the infected asynchronous upload is served: %d %s", resp.StatusCode, body)
	}

	clamd.Stop()
	resp, body = ts.do(t, "POST", "/_matrix/media/v3/upload", bytes.NewReader(clean), withToken(carolToken))
	wantError(t, resp, body, 503, "M_UNKNOWN")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if n := storagetest.CountBlobs(t, ts.blobs.Root()); n != blobs {
		t.Errorf("%d blobs after an upload refused for clamd being down, want %d", n, blobs)
	}
	open := scanningServer(t, clamd, true)
	if id := open.mustUpload(t, clean, "text/plain", "", withToken(carolToken)); id == "" {
		t.Error("failing open, the upload was refused")
	}

	clamd.Restart(t)
	if id := ts.mustUpload(t, []byte("after clamd came back"), "text/plain", "", withToken(carolToken)); id == "" {
		t.Error("no upload after clamd came back")
	}
}

// TestRemoteMediaIsScanned: infected media of another server is refused
// (403) and not cached; clean media is fetched and served.
func TestRemoteMediaIsScanned(t *testing.T) {
	clamd := clamdtest.Start(t)
	s, err := antivirus.New(antivirus.Options{Address: clamd.TCP, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	a, bs := peerGroup(t, 1, func(t *testing.T) metaStore { return storagetest.OpenSQLite(t) }, func(o *stack) { o.scanner = s })
	b := bs[0]
	bad := a.mustUpload(t, []byte("remote "+clamdtest.Pattern), "application/octet-stream", "")
	good := a.mustUpload(t, []byte("remote and clean"), "application/octet-stream", "")
	get := func(id string) (int, []byte) {
		resp, body := b.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(aliceToken), withHost("other.example"))
		return resp.StatusCode, body
	}
	if status, body := get(bad); status != 403 || !strings.Contains(string(body), "M_FORBIDDEN") {
		t.Errorf("infected remote media = %d %s, want 403 M_FORBIDDEN", status, body)
	}
	if _, err := b.meta.Media(context.Background(), "example.org", bad); err == nil {
		t.Error("infected remote media was cached")
	}
	if status, body := get(good); status != 200 || string(body) != "remote and clean" {
		t.Errorf("clean remote media = %d %q", status, body)
	}
}

// TestRescanTask: media stored before scanning was on is rescanned by the
// admin API's task: the infected bytes are quarantined under every media ID
// holding them, the clean left, the task's progress counts it all.
func TestRescanTask(t *testing.T) {
	clamd := clamdtest.Start(t)
	meta, blobDir := storagetest.OpenSQLite(t), filepath.Join(t.TempDir(), "blobs")
	before := newTestServerOn(t, meta, blobDir, nil)
	infected := append([]byte("stored long ago: "), clamdtest.Pattern...)
	bad1 := before.mustUpload(t, infected, "application/octet-stream", "", withToken(carolToken))
	bad2 := before.mustUpload(t, infected, "application/octet-stream", "", withToken(bobToken))
	good := before.mustUpload(t, []byte("a clean file"), "text/plain", "", withToken(carolToken))

	s, err := antivirus.New(antivirus.Options{Address: clamd.Unix, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServerOn(t, meta, blobDir, nil, func(o *stack) { o.rescanner = s })
	resp, body := ts.do(t, "POST", mmrAdmin+"/antivirus/rescan", nil, withToken(carolToken))
	wantError(t, resp, body, 403, "M_FORBIDDEN")
	st := mustStart(t, ts, mmrAdmin+"/antivirus/rescan", nil, withToken(sharedToken))
	task := waitTask(t, ts, st.TaskID)
	if task["task_name"] != antivirus.RescanTask || task["error_message"] != "" {
		t.Fatalf("task = %v", task)
	}
	progress, _ := task["progress"].(map[string]any)
	if progress["blobs_scanned"] != 2.0 || progress["blobs_infected"] != 1.0 || progress["media_quarantined"] != 2.0 || progress["media"] != 3.0 {
		t.Errorf("progress = %v; want 3 media, 2 blobs scanned, 1 infected, 2 media quarantined", task["progress"])
	}
	for _, id := range []string{bad1, bad2} {
		resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(bobToken))
		if resp.StatusCode == 200 {
			t.Errorf("infected %s still served: %s", id, body)
		}
	}
	if resp, _ := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+good, nil, withToken(bobToken)); resp.StatusCode != 200 {
		t.Errorf("clean media: %d", resp.StatusCode)
	}
}
