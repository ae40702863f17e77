package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/homeserver/homeservertest"
)

// TestSIGHUPReloads sends run what SIGHUP sends: a good file is put in force
// at once (a new homeserver is served), what waits for a restart is named,
// and a bad file is refused with every problem and the old config kept.
func TestSIGHUPReloads(t *testing.T) {
	first := homeservertest.WhoAmI(t, map[string]homeservertest.User{"tok": {UserID: "@a:example.org"}})
	second := homeservertest.WhoAmI(t, map[string]homeservertest.User{"tok": {UserID: "@a:new.example"}})
	dir := t.TempDir()
	path := filepath.Join(dir, "media-repo.yaml")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	write := func(port int, homeservers string) {
		t.Helper()
		yaml := fmt.Sprintf(`
repo: {bindAddress: 127.0.0.1, port: %d, jsonLogs: true}
database: {sqlite: %q}
homeservers: %s
datastores: [{type: file, id: d, forKinds: [all], opts: {path: %q}}]
`, port, filepath.Join(dir, "m.db"), homeservers, filepath.Join(dir, "media"))
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(port, fmt.Sprintf(`[{name: example.org, csApi: %q}]`, first.URL))

	stderr := &lockedBuffer{}
	hup := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() { code <- run(ctx, []string{"-config", path}, func(string) string { return "" }, stderr, hup) }()
	waitLog(t, stderr, `"msg":"listening"`)
	upload := func(host string) int {
		req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/_matrix/media/v3/upload", port), bytes.NewReader([]byte("x")))
		req.Host = host
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := upload("new.example"); s != 404 {
		t.Fatalf("an unknown host before the reload = %d, want 404", s)
	}

	// A new homeserver, and a port change that needs a restart.
	write(port+1, fmt.Sprintf(`[{name: example.org, csApi: %q}, {name: new.example, csApi: %q}]`, first.URL, second.URL))
	hup <- nil
	waitLog(t, stderr, `"msg":"config reloaded"`)
	if s := upload("new.example"); s != 200 {
		t.Errorf("the new homeserver after the reload = %d, want 200", s)
	}
	if s := upload("example.org"); s != 200 {
		t.Errorf("the first homeserver after the reload = %d, want 200", s)
	}
	waitLog(t, stderr, `"keys":"repo.port","level":"warning","msg":"config changes applied only after a restart"`)

	// A bad file changes nothing, and says what is wrong where.
	write(port, `[{name: example.org, csApi: "not a url"}]`)
	hup <- nil
	waitLog(t, stderr, `config reload refused: the config in force is unchanged`)
	if !regexp.MustCompile(`"problem":"[^"]*homeservers\[0\]\.csApi: must be an absolute http\(s\) URL`).MatchString(stderr.String()) {
		t.Errorf("the refused reload does not name the key:\n%s", stderr)
	}
	if s := upload("new.example"); s != 200 {
		t.Errorf("after a refused reload = %d, want the config in force kept", s)
	}
	cancel()
	if c := <-code; c != 0 {
		t.Errorf("exit code = %d", c)
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("log line not JSON: %s", line)
		}
	}
}

// waitLog waits up to 5 s for the log to contain s.
func waitLog(t *testing.T, log *lockedBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(log.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %s:\n%s", s, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
