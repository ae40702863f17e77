package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/config"
)

// waitTask polls matrix-media-repo's task route until the task finishes.
func waitTask(t *testing.T, ts *testServer, id int64) map[string]any {
	t.Helper()
	for range 500 {
		resp, body := ts.do(t, "GET", fmt.Sprintf("%s/tasks/%d", mmrAdmin, id), nil, withToken(sharedToken))
		var task map[string]any
		if resp.StatusCode != 200 || json.Unmarshal(body, &task) != nil {
			t.Fatalf("task %d = %d %s", id, resp.StatusCode, body)
		}
		if task["is_finished"] == true {
			return task
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("task %d did not finish", id)
	return nil
}

type started struct {
	ExportID string `json:"export_id"`
	ImportID string `json:"import_id"`
	TaskID   int64  `json:"task_id"`
}

// mustStart POSTs to a route that starts a task.
func mustStart(t *testing.T, ts *testServer, path string, part []byte, opts ...reqOpt) started {
	t.Helper()
	resp, body := ts.do(t, "POST", path, bytes.NewReader(part), opts...)
	var s started
	if resp.StatusCode != 200 || json.Unmarshal(body, &s) != nil || s.TaskID == 0 {
		t.Fatalf("start = %d %s", resp.StatusCode, body)
	}
	return s
}

type exportMetadata struct {
	Entity string `json:"entity"`
	Parts  []struct {
		Index int    `json:"index"`
		Size  int64  `json:"size"`
		Name  string `json:"name"`
	} `json:"parts"`
}

// TestArchiveExportImport: a repository admin exports a user's media; the
// export is read with its ID alone (metadata, parts, its page) and imported
// into another repository part by part, where the media downloads with the
// same IDs and bytes; deleting the export leaves nothing to read.
func TestArchiveExportImport(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		src := newTestServer(t, backend, func(c *config.Config) { c.Archiving.TargetBytesPerPart = 1 << 20 })
		media := map[string][]byte{}
		for i := range 3 {
			body := bytes.Repeat([]byte{byte('a' + i)}, 700<<10) // two fill a part
			media[src.mustUpload(t, body, "application/octet-stream", fmt.Sprintf("f%d.bin", i), withToken(carolToken))] = body
		}
		src.mustUpload(t, []byte("bob's"), "text/plain", "", withToken(bobToken))

		st := mustStart(t, src, mmrAdmin+"/user/@carol:example.org/export", nil, withToken(aliceToken))
		if task := waitTask(t, src, st.TaskID); task["task_name"] != "export_data" || task["error_message"] != "" {
			t.Fatalf("export task = %v", task)
		}
		resp, body := src.do(t, "GET", mmrAdmin+"/export/"+st.ExportID+"/metadata", nil) // no token: the ID is the secret
		var meta exportMetadata
		if resp.StatusCode != 200 || json.Unmarshal(body, &meta) != nil || meta.Entity != "@carol:example.org" || len(meta.Parts) != 3 ||
			meta.Parts[0].Name != "export-part-1.tgz" || meta.Parts[2].Name != "export-manifest.tgz" {
			t.Fatalf("metadata = %d %s", resp.StatusCode, body)
		}
		parts := make([][]byte, len(meta.Parts))
		for i, p := range meta.Parts {
			resp, body := src.do(t, "GET", fmt.Sprintf("%s/export/%s/part/%d", mmrAdmin, st.ExportID, p.Index), nil)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/gzip" ||
				resp.Header.Get("Content-Disposition") != "attachment; filename="+p.Name || int64(len(body)) != p.Size {
				t.Fatalf("part %d = %d %v, %d bytes", p.Index, resp.StatusCode, resp.Header, len(body))
			}
			parts[i] = body
		}
		resp, body = src.do(t, "GET", mmrAdmin+"/export/"+st.ExportID+"/view", nil)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'sha256-") ||
			!strings.Contains(string(body), `href="part/3"`) || !strings.Contains(string(body), "@carol:example.org") {
			t.Errorf("view = %d %v\n%s", resp.StatusCode, resp.Header, body)
		}

		dst := newTestServer(t, backend, nil)
		// Parts in any order: the manifest's part last here.
		imp := mustStart(t, dst, mmrAdmin+"/import", parts[1], withToken(sharedToken))
		for _, i := range []int{0, 2} {
			if resp, body := dst.do(t, "POST", mmrAdmin+"/import/"+imp.ImportID+"/part", bytes.NewReader(parts[i]), withToken(sharedToken)); resp.StatusCode != 200 {
				t.Fatalf("part %d = %d %s", i, resp.StatusCode, body)
			}
		}
		if task := waitTask(t, dst, imp.TaskID); task["task_name"] != "import_data" || task["error_message"] != "" ||
			fmt.Sprint(task["params"]) != "map[export_id:"+imp.ImportID+"]" {
			t.Fatalf("import task = %v", task)
		}
		for id, want := range media {
			resp, body := dst.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(bobToken))
			if resp.StatusCode != 200 || !bytes.Equal(body, want) {
				t.Errorf("imported %s = %d, %d bytes", id, resp.StatusCode, len(body))
			}
		}
		if resp, _ := dst.do(t, "POST", mmrAdmin+"/import/"+imp.ImportID+"/close", nil, withToken(sharedToken)); resp.StatusCode != 404 {
			t.Errorf("close of a finished import = %d, want 404", resp.StatusCode)
		}

		if resp, body := src.do(t, "DELETE", mmrAdmin+"/export/"+st.ExportID, nil); resp.StatusCode != 200 || string(body) != "{}\n" {
			t.Errorf("delete = %d %s", resp.StatusCode, body)
		}
		resp, body = src.do(t, "GET", mmrAdmin+"/export/"+st.ExportID+"/metadata", nil)
		if resp.StatusCode != 200 || string(body) != `{"entity":"","parts":[]}`+"\n" {
			t.Errorf("metadata after delete = %d %s, want an empty export", resp.StatusCode, body)
		}
		for path, want := range map[string]int{
			"/export/" + st.ExportID + "/view":   404,
			"/export/" + st.ExportID + "/part/1": 404,
			"/export/whatever/part/one":          400,
		} {
			if resp, body := src.do(t, "GET", mmrAdmin+path, nil); resp.StatusCode != want {
				t.Errorf("GET %s = %d %s, want %d", path, resp.StatusCode, body, want)
			}
		}
	})
}

// TestArchiveAccess: who may start exports and imports, with and without
// archiving.selfService, and nobody while archiving is off.
func TestArchiveAccess(t *testing.T) {
	export := func(kind string) string { return mmrAdmin + "/" + kind + "/export" }
	cases := []struct {
		name        string
		selfService bool
		as          who
		path        string
		want        int
		msg         string
	}{
		{"admin exports a user", false, asGlobal, export("user/@carol:example.org"), 200, ""},
		{"shared secret exports a remote server", false, asShared, export("server/remote.example"), 200, ""},
		{"user exports themself without self-service", false, asUploader, export("user/@carol:example.org"), 403, ""},
		{"homeserver admin exports their server without self-service", false, asHomeAdmin, export("server/example.org"), 403, ""},
		{"user exports themself", true, asUploader, export("user/@carol:example.org"), 200, ""},
		{"user exports another", true, asUploader, export("user/@bob:example.org"), 400, "cannot export data for another user"},
		{"homeserver admin exports their server", true, asHomeAdmin, export("server/example.org"), 200, ""},
		{"homeserver admin exports another server", true, asHomeAdmin, export("server/other.example"), 400, "cannot export data for another server"},
		{"user exports the server", true, asOtherUser, export("server/example.org"), 400, "cannot export data for another server"},
		{"no token", true, asNobody, export("user/@carol:example.org"), 401, ""},
		{"homeserver admin imports", true, asHomeAdmin, mmrAdmin + "/import", 403, ""},
		{"user closes an import", true, asUploader, mmrAdmin + "/import/x/close", 403, ""},
		{"admin closes an unknown import", true, asGlobal, mmrAdmin + "/import/x/close", 404, ""},
		{"admin sends a part to an unknown import", true, asGlobal, mmrAdmin + "/import/x/part", 404, ""},
	}
	backends(t, func(t *testing.T, backend string) {
		for _, selfService := range []bool{false, true} {
			ts := newTestServer(t, backend, func(c *config.Config) { c.Archiving.SelfService = selfService })
			for _, c := range cases {
				if c.selfService != selfService {
					continue
				}
				resp, body := ts.do(t, "POST", c.path, strings.NewReader("part"), c.as.opts()...)
				if resp.StatusCode != c.want || !strings.Contains(string(body), c.msg) {
					t.Errorf("%s: %d %s, want %d %q", c.name, resp.StatusCode, body, c.want, c.msg)
				}
			}
		}
		off := newTestServer(t, backend, func(c *config.Config) { c.Archiving.Enabled = false })
		for _, rt := range []struct{ method, path string }{
			{"POST", export("user/@carol:example.org")}, {"POST", export("server/example.org")},
			{"GET", mmrAdmin + "/export/x/metadata"}, {"GET", mmrAdmin + "/export/x/view"}, {"GET", mmrAdmin + "/export/x/part/1"},
			{"DELETE", mmrAdmin + "/export/x"}, {"POST", mmrAdmin + "/import"}, {"POST", mmrAdmin + "/import/x/part"},
			{"POST", mmrAdmin + "/import/x/close"},
		} {
			resp, body := off.do(t, rt.method, rt.path, nil, withToken(sharedToken))
			if resp.StatusCode != 400 || !strings.Contains(string(body), "archiving is not enabled") {
				t.Errorf("%s %s with archiving off = %d %s", rt.method, rt.path, resp.StatusCode, body)
			}
		}
	})
}
