package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/disk"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

// TestTransferToAnotherDatastore: matrix-media-repo's transfer_to moves every
// blob (media and thumbnails) as a task with progress; what it moved is
// served as before, and nothing is left in the source.
func TestTransferToAnotherDatastore(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		// No pre-generation: no thumbnail is made in the background while the
		// transfer runs (it would rightly stay in the source).
		ts := newTestServer(t, backend, func(c *config.Config) { c.Thumbnails.Pregenerate = nil })
		img := photo(t, 400, 300)
		ids := []string{
			ts.mustUpload(t, img, "image/jpeg", "", withToken(carolToken)),
			ts.mustUpload(t, []byte("some text"), "text/plain", "", withToken(carolToken)),
			ts.mustUpload(t, []byte("some text"), "text/plain", "", withToken(bobToken)), // the same bytes
		}
		thumbPath := "/_matrix/client/v1/media/thumbnail/example.org/" + ids[0] + "?width=64&height=64&method=crop"
		resp, thumb := ts.do(t, "GET", thumbPath, nil, withToken(bobToken))
		if resp.StatusCode != 200 {
			t.Fatalf("thumbnail: %d", resp.StatusCode)
		}

		for _, c := range []struct{ path, want string }{
			{"/datastores/local/transfer_to/local", "same"},
			{"/datastores/nope/transfer_to/cold", "Source datastore does not appear to exist"},
			{"/datastores/local/transfer_to/nope", "Target datastore does not appear to exist"},
		} {
			resp, body := ts.do(t, "POST", mmrAdmin+c.path, nil, asGlobal.opts()...)
			wantError(t, resp, body, 400, "M_UNKNOWN") // matrix-media-repo's code for a bad request
			if !bytes.Contains(body, []byte(c.want)) {
				t.Errorf("%s: %s, want it to say %q", c.path, body, c.want)
			}
		}

		var started struct {
			TaskID     int64 `json:"task_id"`
			TotalBytes int64 `json:"total_bytes"`
		}
		ts.adminJSON(t, asGlobal, "POST", mmrAdmin+"/datastores/local/transfer_to/cold", &started)
		if started.TaskID == 0 {
			t.Fatalf("transfer_to answered no task: %+v", started)
		}
		var task struct {
			Name     string `json:"task_name"`
			Finished bool   `json:"is_finished"`
			Error    string `json:"error_message"`
			Params   struct {
				Source string `json:"source_datastore_id"`
				Target string `json:"target_datastore_id"`
			} `json:"params"`
			Progress struct {
				Blobs int `json:"blobs"`
				Rows  int `json:"rows"`
			} `json:"progress"`
		}
		for deadline := time.Now().Add(20 * time.Second); !task.Finished && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			ts.adminJSON(t, asGlobal, "GET", fmt.Sprintf("%s/tasks/%d", mmrAdmin, started.TaskID), &task)
		}
		if !task.Finished || task.Error != "" || task.Name != "storage_migration" || task.Params.Source != "local" ||
			task.Params.Target != "cold" || task.Progress.Blobs < 3 || task.Progress.Rows < 4 {
			t.Fatalf("task = %+v; want storage_migration local→cold finished, 3+ blobs of 4+ rows", task)
		}

		for i, want := range [][]byte{img, []byte("some text"), []byte("some text")} {
			resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+ids[i], nil, withToken(bobToken))
			if resp.StatusCode != 200 || !bytes.Equal(body, want) {
				t.Errorf("media %d after the transfer: %d, %d bytes", i, resp.StatusCode, len(body))
			}
		}
		if resp, body := ts.do(t, "GET", thumbPath, nil, withToken(bobToken)); resp.StatusCode != http.StatusOK || !bytes.Equal(body, thumb) {
			t.Errorf("thumbnail after the transfer: %d, %d bytes; want the same %d", resp.StatusCode, len(body), len(thumb))
		}
		if n := storagetest.CountBlobs(t, ts.blobs.Root()); n != 0 {
			t.Errorf("%d blobs left in the source datastore", n)
		}
		if n := storagetest.CountBlobs(t, ts.blobs.Root()+"-cold"); n < 3 {
			t.Errorf("%d blobs in the destination, want 3 or more", n)
		}
		// New uploads still go where forKinds says.
		id := ts.mustUpload(t, []byte("after"), "text/plain", "", withToken(carolToken))
		ts.adminJSON(t, asGlobal, "GET", "/_matrix/media/unstable/admin/usage/example.org/uploads?mxc=mxc://example.org/"+id, nil)
		if entries, _ := os.ReadDir(filepath.Join(ts.blobs.Root())); len(entries) == 0 {
			t.Error("a new upload did not go to the local datastore")
		}
	})
}

// TestDownloadFollowsAMovedRow: a row cached before its blob moved to
// another datastore (a transfer elsewhere, not heard of yet) is looked up
// again when its bytes are not where it said.
func TestDownloadFollowsAMovedRow(t *testing.T) {
	ts := newTestServer(t, "sqlite", func(c *config.Config) { c.Thumbnails.Pregenerate = nil })
	body := []byte("moving bytes")
	id := ts.mustUpload(t, body, "text/plain", "", withToken(carolToken))
	path := "/_matrix/client/v1/media/download/example.org/" + id
	if resp, _ := ts.do(t, "GET", path, nil, withToken(bobToken)); resp.StatusCode != 200 {
		t.Fatalf("download = %d", resp.StatusCode) // and the row is cached
	}
	img := photo(t, 400, 300)
	imgID := ts.mustUpload(t, img, "image/jpeg", "", withToken(carolToken))
	thumbPath := "/_matrix/client/v1/media/thumbnail/example.org/" + imgID + "?width=64&height=64&method=crop"
	resp, thumb := ts.do(t, "GET", thumbPath, nil, withToken(bobToken))
	if resp.StatusCode != 200 {
		t.Fatalf("thumbnail = %d", resp.StatusCode) // and its row is cached
	}
	ctx := context.Background()
	thumbSum := fmt.Sprintf("%x", sha256.Sum256(thumb))
	cold, err := disk.Open(ts.blobs.Root() + "-cold")
	if err != nil {
		t.Fatal(err)
	}
	sum, _, err := storage.Put(ctx, cold, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := ts.meta.MoveBlob(ctx, sum, "local", "cold", time.Now().Add(time.Minute)); n != 1 || err != nil {
		t.Fatalf("MoveBlob = %d, %v", n, err)
	}
	if err := ts.blobs.Delete(ctx, sum); err != nil {
		t.Fatal(err)
	}
	if resp, got := ts.do(t, "GET", path, nil, withToken(bobToken)); resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Errorf("download after the move = %d %q, want the bytes from the new datastore", resp.StatusCode, got)
	}
	// The same for a cached thumbnail row.
	if _, _, err := storage.Put(ctx, cold, bytes.NewReader(thumb)); err != nil {
		t.Fatal(err)
	}
	if n, err := ts.meta.MoveBlob(ctx, thumbSum, "local", "cold", time.Now().Add(time.Minute)); n != 1 || err != nil {
		t.Fatalf("MoveBlob(thumbnail) = %d, %v", n, err)
	}
	ts.blobs.Delete(ctx, thumbSum)
	if resp, got := ts.do(t, "GET", thumbPath, nil, withToken(bobToken)); resp.StatusCode != 200 || !bytes.Equal(got, thumb) {
		t.Errorf("thumbnail after the move = %d, %d bytes; want the same %d", resp.StatusCode, len(got), len(thumb))
	}
}
