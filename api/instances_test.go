package api_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/homeserver/homeservertest"
	"github.com/mediarepo/mediarepo/storage/postgres"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

// sharedPostgres returns a function opening a store of its own (a pool of
// its own, as a process has) on one fresh schema, for instances of one
// deployment.
func sharedPostgres(t *testing.T) func(t *testing.T) metaStore {
	dsn := storagetest.PostgresDSN(t)
	return func(t *testing.T) metaStore {
		s, _, err := postgres.Open(context.Background(), dsn, config.Pool{MaxConnections: 10, MaxIdleConnections: 5})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

// threeInstances starts three servers on one PostgreSQL database and one
// blob directory.
func threeInstances(t *testing.T) []*testServer {
	open := sharedPostgres(t)
	blobs := filepath.Join(t.TempDir(), "blobs")
	var out []*testServer
	for range 3 {
		out = append(out, newTestServerOn(t, open(t), blobs, nil))
	}
	return out
}

// TestInstancesMakeEachThumbnailOnce: 60 first requests for a thumbnail,
// spread over three instances, make each size once in all (the lock the
// instances share), and every answer has the same bytes.
func TestInstancesMakeEachThumbnailOnce(t *testing.T) {
	servers := threeInstances(t)
	id := servers[0].mustUpload(t, photo(t, 1200, 900), "image/jpeg", "", withToken(carolToken))
	path := "/_matrix/client/v1/media/thumbnail/example.org/" + id + "?width=320&height=240&method=scale"
	bodies := make([][]byte, 60)
	var wg sync.WaitGroup
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := servers[i%3].do(t, "GET", path, nil, withToken(bobToken))
			if resp.StatusCode != 200 {
				t.Errorf("thumbnail %d: %d %s", i, resp.StatusCode, body)
			}
			bodies[i] = body
		}()
	}
	wg.Wait()
	for i, b := range bodies {
		if !bytes.Equal(b, bodies[0]) {
			t.Fatalf("answer %d differs from the first (%d and %d bytes)", i, len(b), len(bodies[0]))
		}
	}
	stored, err := servers[0].meta.Thumbnails(context.Background(), "example.org", id)
	if err != nil || len(stored) == 0 {
		t.Fatalf("stored thumbnails = %v, %v", stored, err)
	}
	inserts := 0
	for _, s := range servers {
		inserts += s.meta.ThumbnailInserts()
	}
	if inserts != len(stored) {
		t.Errorf("%d thumbnails made over three instances for %d sizes stored; want each size made once", inserts, len(stored))
	}
}

// TestInstancesFetchRemoteMediaOnce: 50 first downloads of one remote
// media, spread over three instances of the receiving server, are one
// request at the remote.
func TestInstancesFetchRemoteMediaOnce(t *testing.T) {
	a, bs := peerGroup(t, 3, sharedPostgres(t))
	content := bytes.Repeat([]byte("far away "), 4000)
	id := a.mustUpload(t, content, "application/octet-stream", "")
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := bs[i%3].do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil,
				withToken(aliceToken), withHost("other.example"))
			if resp.StatusCode != 200 || !bytes.Equal(body, content) {
				t.Errorf("download %d through instance %d = %d, %d bytes", i, i%3, resp.StatusCode, len(body))
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(a.logs.String(), "path=/_matrix/federation/v1/media/download/"+id); n != 1 {
		t.Errorf("the remote served %d federation downloads for 50 requests over three instances, want 1", n)
	}
}

// TestInstancesLogoutEverywhere: a logout through one instance is refused
// at once by the others, which had the token cached.
func TestInstancesLogoutEverywhere(t *testing.T) {
	servers := threeInstances(t)
	id := servers[0].mustUpload(t, []byte("hello"), "text/plain", "", withToken(carolToken))
	for _, s := range servers {
		s.fake.AddToken("phone-token", homeservertest.User{UserID: "@carol:example.org"})
	}
	download := func(s *testServer) int {
		resp, _ := s.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken("phone-token"))
		return resp.StatusCode
	}
	for i, s := range servers {
		if code := download(s); code != 200 {
			t.Fatalf("instance %d before logout: %d", i, code) // and now cached there
		}
	}
	if resp, body := servers[1].do(t, "POST", "/_matrix/client/v3/logout", nil, withToken("phone-token")); resp.StatusCode != 200 {
		t.Fatalf("logout = %d %s", resp.StatusCode, body)
	}
	loggedOut := time.Now()
	// One homeserver in a deployment: the token is gone from the others'
	// fakes too (not through mediarepo, so only the bus tells instances 0
	// and 2, which still have it cached).
	for _, i := range []int{0, 2} {
		req, _ := http.NewRequest("POST", servers[i].fake.URL+"/_matrix/client/v3/logout", nil)
		req.Header.Set("Authorization", "Bearer phone-token")
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
			t.Fatalf("logout at fake %d: %v %v", i, resp, err)
		}
	}
	if code := download(servers[1]); code != 401 {
		t.Errorf("instance 1, which logged out: %d, want 401 at once", code)
	}
	// The others hear of it through PostgreSQL's NOTIFY, within milliseconds.
	for i, s := range servers {
		code := download(s)
		for deadline := loggedOut.Add(time.Second); code != 401 && time.Now().Before(deadline); code = download(s) {
			time.Sleep(5 * time.Millisecond)
		}
		if code != 401 {
			t.Errorf("instance %d a second after the logout on instance 1: %d, want 401", i, code)
		}
	}
	t.Logf("refused everywhere %s after the logout", time.Since(loggedOut).Round(time.Millisecond))
}

// BenchmarkInstances measures downloads and uploads over loopback HTTP
// spread round robin over one, two and three instances on one PostgreSQL
// database and blob directory, with many clients at once. The instances
// share this machine's cores, so the figure is what coordinating them
// costs, not what more machines would add.
func BenchmarkInstances(b *testing.B) {
	for _, n := range []int{1, 2, 3} {
		dsn := storagetest.PostgresDSN(b)
		blobs := filepath.Join(b.TempDir(), "blobs")
		var servers []*testServer
		for range n {
			s, _, err := postgres.Open(context.Background(), dsn, config.Pool{MaxConnections: 10, MaxIdleConnections: 5})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			ts := newTestServerOn(b, s, blobs, nil)
			ts.log.SetOutput(io.Discard)
			ts.log.SetLevel(logrus.InfoLevel)
			servers = append(servers, ts)
		}
		content := bytes.Repeat([]byte("x"), 64<<10)
		id := servers[0].mustUpload(b, content, "application/octet-stream", "")
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		get := func(i int64, path string, body []byte) {
			s := servers[i%int64(n)]
			method := "GET"
			if body != nil {
				method = "POST"
			}
			req, _ := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
			req.Host = "example.org"
			req.Header.Set("Authorization", "Bearer "+aliceToken)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("%s %s: %d", method, path, resp.StatusCode)
			}
		}
		var next atomic.Int64
		b.Run(fmt.Sprintf("download/%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(content)))
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					get(next.Add(1), "/_matrix/client/v1/media/download/example.org/"+id, nil)
				}
			})
		})
		b.Run(fmt.Sprintf("upload/%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(content)))
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				body := bytes.Clone(content)
				for pb.Next() {
					i := next.Add(1)
					binary.LittleEndian.PutUint64(body, uint64(i)) // new bytes each time
					get(i, "/_matrix/media/v3/upload", body)
				}
			})
		})
	}
}
