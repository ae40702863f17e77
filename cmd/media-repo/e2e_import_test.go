//go:build e2e

package main

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// uploaded is a media uploaded to Dendrite before mediarepo took over.
type uploaded struct {
	id, name string
	body     []byte
}

// checkDendriteImport: media uploaded through Dendrite's own media API is
// imported while Dendrite still serves, then downloads through nginx from
// mediarepo under the same mxc:// URI with the same bytes. An import killed
// half-way is finished by the next run, and a run after that changes nothing.
func checkDendriteImport(t *testing.T, hs *dendrite, repoBin string) {
	direct := newE2EClient(t, hs.port, true) // Dendrite's own port, no proxy
	alice := direct.mautrix(t, "alice", "alice-password").AccessToken
	var media []uploaded
	for i := range 6 {
		u := uploaded{name: fmt.Sprintf("holiday %d.png", i), body: uniquePNG(t)}
		resp, body := direct.do(t, "POST", "/_matrix/media/v3/upload?filename="+strings.ReplaceAll(u.name, " ", "%20"), alice, u.body, map[string]string{"Content-Type": "image/png"})
		m := regexp.MustCompile(`"content_uri":"mxc://` + serverName + `/([^"]+)"`).FindStringSubmatch(string(body))
		if resp.StatusCode != 200 || m == nil {
			t.Fatalf("upload to Dendrite = %d %s", resp.StatusCode, body)
		}
		u.id = m[1]
		media = append(media, u)
	}

	repo := startRepo(t, repoBin, hs.port, "postgres", true)
	c := newE2EClient(t, startProxy(t, "nginx", repo.port, hs.port, true), true)
	bob := c.mautrix(t, "bob", "bob-password").AccessToken
	dl := func(u uploaded) string { return "/_matrix/client/v1/media/download/" + serverName + "/" + u.id }
	if resp, _ := c.do(t, "GET", dl(media[0]), bob, nil, nil); resp.StatusCode != 404 {
		t.Fatalf("before the import, download from mediarepo = %d, want 404", resp.StatusCode)
	}

	args := []string{"import", "dendrite", "-config", repo.path, "-workers", "1",
		"-db", "file:" + filepath.Join(hs.dir, "dendrite_mediaapi.db"), "-base-path", filepath.Join(hs.dir, "media")}
	// Killed (SIGKILL, no clean-up) as the third media is stored.
	killed := exec.Command(buildFaultsBinary(t), args...)
	killed.Env = append(os.Environ(), "MEDIAREPO_CRASH_AT=import-media-stored#3")
	out, err := killed.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ProcessState.String() != "signal: killed" {
		t.Fatalf("the import meant to be killed ended with %v:\n%s", err, out)
	}
	if got := importRun(t, repoBin, args); !strings.Contains(got, "imported 3 ") || !strings.Contains(got, "3 already here") || strings.Contains(got, " 0 thumbnails imported") {
		t.Errorf("the run after the kill: %s, want 3 imported and 3 already here", got)
	}
	for _, u := range media {
		resp, body := c.do(t, "GET", dl(u), bob, nil, nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, u.body) {
			t.Errorf("download of imported %s = %d, %d bytes; want 200 and the %d bytes uploaded to Dendrite", u.id, resp.StatusCode, len(body), len(u.body))
		}
		if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, u.name) && !strings.Contains(cd, strings.ReplaceAll(u.name, " ", "%20")) {
			t.Errorf("Content-Disposition of %s = %q, want the file name %q given to Dendrite", u.id, cd, u.name)
		}
	}
	// Dendrite made 32x32 crops at upload (its default thumbnail_sizes): the
	// one it made is served, not a new one.
	sum := sha256.Sum256(media[0].body)
	h := base64.RawURLEncoding.EncodeToString(sum[:])
	made, err := os.ReadFile(filepath.Join(hs.dir, "media", h[0:1], h[1:2], h[2:], "thumbnail-32x32-crop"))
	if err != nil {
		t.Fatalf("Dendrite's thumbnail: %v", err)
	}
	resp, thumb := c.do(t, "GET", "/_matrix/client/v1/media/thumbnail/"+serverName+"/"+media[0].id+"?width=32&height=32&method=crop", bob, nil, nil)
	if resp.StatusCode != 200 || !bytes.Equal(thumb, made) {
		t.Errorf("thumbnail of imported media = %d, %d bytes; want Dendrite's %d bytes", resp.StatusCode, len(thumb), len(made))
	}
	if got := importRun(t, repoBin, args); !strings.Contains(got, "imported 0 ") || !strings.Contains(got, "6 already here") {
		t.Errorf("a second run: %s, want nothing imported", got)
	}
	// Each media arrived once, owned by its uploader.
	db, err := sql.Open("postgres", repoDSN(t, repo))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows, users int
	db.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT user_id) FROM media WHERE origin = $1 AND user_id = $2`, serverName, "@alice:"+serverName).Scan(&rows, &users)
	if rows != len(media) || users != 1 {
		t.Errorf("media rows for alice = %d (users %d), want %d", rows, users, len(media))
	}
}

func importRun(t *testing.T, bin string, args []string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("media-repo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// buildFaultsBinary builds media-repo with its crash points armed.
func buildFaultsBinary(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "media-repo-faults")
	mustRun(t, "go", "build", "-tags", "faults,nodynamic", "-o", bin, ".")
	return bin
}

// repoDSN reads the PostgreSQL DSN out of a repo's config.
func repoDSN(t *testing.T, r *repoProcess) string {
	m := regexp.MustCompile(`postgres: "([^"]+)"`).FindStringSubmatch(r.config)
	if m == nil {
		t.Fatal("the repo does not use PostgreSQL")
	}
	return m[1]
}
