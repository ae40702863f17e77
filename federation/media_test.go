package federation_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/federation"
	"github.com/mediarepo/mediarepo/federation/federationtest"
	"github.com/mediarepo/mediarepo/netguard"
)

func newClient(t *testing.T, remote *federationtest.Remote, allowLoopback bool) *federation.Client {
	var allowed []string
	if allowLoopback {
		allowed = []string{"127.0.0.0/8"}
	}
	policy, err := netguard.NewPolicy(allowed, netguard.DefaultDenied())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := federation.ParseSigningKey(specKey)
	dialer := &net.Dialer{Timeout: 5 * time.Second, Control: policy.Control}
	overrides := map[string]string{"remote.test": remote.Listener.Addr().String()}
	return federation.NewClient(federation.ClientOptions{
		Resolver: federation.NewResolver(policy.Client(5*time.Second, false), noDNS, overrides),
		Keys:     map[string]*federation.SigningKey{"example.org": key},
		Dial:     dialer.DialContext, Roots: remote.Roots, Timeout: 10 * time.Second,
	})
}

// verifyXMatrix checks a request's X-Matrix header against the spec key, as
// the remote homeserver would.
func verifyXMatrix(r *http.Request) error {
	m := regexp.MustCompile(`^X-Matrix origin="([^"]+)",destination="([^"]+)",key="ed25519:1",sig="([^"]+)"$`).
		FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return fmt.Errorf("bad header %q", r.Header.Get("Authorization"))
	}
	canonical, _ := federation.CanonicalJSON(map[string]string{"method": r.Method, "uri": r.URL.RequestURI(), "origin": m[1], "destination": m[2]})
	sig, _ := base64.RawStdEncoding.DecodeString(m[3])
	pub, _ := base64.RawStdEncoding.DecodeString("XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI")
	if m[1] != "example.org" || m[2] != "remote.test" || !ed25519.Verify(pub, canonical, sig) {
		return errors.New("signature does not verify")
	}
	return nil
}

func multipartReply(w http.ResponseWriter, second string) {
	w.Header().Set("Content-Type", "multipart/mixed; boundary=B0UND")
	fmt.Fprint(w, "\r\n--B0UND\r\nContent-Type: application/json\r\n\r\n{}\r\n--B0UND\r\n"+second+"\r\n--B0UND--\r\n")
}

func TestDownload(t *testing.T) {
	var srv *federationtest.Remote
	srv = federationtest.Start(t, "remote.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/_matrix/federation/v1/media/download/"):
			if err := verifyXMatrix(r); err != nil {
				w.WriteHeader(401)
				fmt.Fprintf(w, `{"errcode":"M_UNAUTHORIZED","error":%q}`, err)
				return
			}
			switch r.URL.Path[len("/_matrix/federation/v1/media/download/"):] {
			case "bytes":
				multipartReply(w, "Content-Type: img/png\r\nContent-Disposition: inline; filename*=utf-8''caf%C3%A9.png\r\n\r\nPNGBYTES")
			case "located":
				multipartReply(w, "Location: "+srv.URL+"/cdn/blob\r\n\r\n")
			case "missing":
				w.WriteHeader(404)
				fmt.Fprint(w, `{"errcode":"M_NOT_FOUND","error":"no"}`)
			default: // an old server: no federation media route
				w.WriteHeader(404)
				fmt.Fprint(w, `{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`)
			}
		case r.URL.Path == "/cdn/blob":
			if r.Header.Get("Authorization") != "" {
				t.Error("credentials sent to a Location URL")
			}
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, "from the cdn")
		case r.URL.Path == "/_matrix/media/v3/download/remote.test/legacy":
			if r.URL.Query().Get("allow_remote") != "false" || r.Host != "remote.test" {
				t.Errorf("legacy request %s with Host %s", r.URL, r.Host)
			}
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Disposition", `attachment; filename="old.txt"`)
			fmt.Fprint(w, "legacy bytes")
		default:
			http.NotFound(w, r)
		}
	}))
	c := newClient(t, srv, true)
	tests := map[string]struct {
		id                 string
		wantType, wantName string
		wantBody           string
	}{
		"multipart bytes": {"bytes", "img/png", "café.png", "PNGBYTES"},
		"location part":   {"located", "text/plain", "", "from the cdn"},
		"legacy fallback": {"legacy", "text/plain", "old.txt", "legacy bytes"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r, err := c.Download(context.Background(), "example.org", "remote.test", tt.id)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Body.Close()
			body, _ := io.ReadAll(r.Body)
			if r.ContentType != tt.wantType || r.FileName != tt.wantName || string(body) != tt.wantBody {
				t.Errorf("got %q %q %q, want %q %q %q", r.ContentType, r.FileName, body, tt.wantType, tt.wantName, tt.wantBody)
			}
		})
	}
	if _, err := c.Download(context.Background(), "example.org", "remote.test", "missing"); !errors.Is(err, federation.ErrNotFound) {
		t.Errorf("missing = %v, want ErrNotFound without a fallback", err)
	}
	// The loopback test server is refused without the explicit allowance.
	strict := newClient(t, srv, false)
	_, err := strict.Download(context.Background(), "example.org", "remote.test", "bytes")
	if !errors.Is(err, federation.ErrUnavailable) || !netguard.Blocked(err) {
		t.Errorf("download from loopback, not allowed = %v, want a netguard refusal", err)
	}
}

func TestDownloadRefusals(t *testing.T) {
	srv := federationtest.Start(t, "remote.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/_matrix/media/v3/download/remote.test/slow":
			time.Sleep(2 * time.Second)
		case "/_matrix/media/v3/download/remote.test/redirect":
			http.Redirect(w, r, "https://10.255.255.1/private", http.StatusFound)
		default:
			w.WriteHeader(404)
			fmt.Fprint(w, `{"errcode":"M_UNRECOGNIZED"}`)
		}
	}))
	policy, _ := netguard.NewPolicy([]string{"127.0.0.0/8"}, netguard.DefaultDenied())
	key, _ := federation.ParseSigningKey(specKey)
	client := func(timeout time.Duration, allowLoopback bool) *federation.Client {
		p := policy
		if !allowLoopback {
			p, _ = netguard.NewPolicy(nil, netguard.DefaultDenied())
		}
		return federation.NewClient(federation.ClientOptions{
			Resolver: federation.NewResolver(p.Client(5*time.Second, false), noDNS,
				map[string]string{"remote.test": srv.Listener.Addr().String()}),
			Keys: map[string]*federation.SigningKey{"example.org": key},
			Dial: p.Dialer().DialContext, Roots: srv.Roots, Timeout: timeout,
		})
	}
	ctx := context.Background()

	if _, err := client(300*time.Millisecond, true).Download(ctx, "example.org", "remote.test", "slow"); !errors.Is(err, federation.ErrUnavailable) {
		t.Errorf("slow remote = %v, want ErrUnavailable after the timeout", err)
	}
	_, err := client(5*time.Second, true).Download(ctx, "example.org", "remote.test", "redirect")
	if !netguard.Blocked(err) {
		t.Errorf("redirect to a private address = %v, want a netguard refusal", err)
	}
	// A server name that resolves to loopback, loopback not allowed: no connection.
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	_, err = client(5*time.Second, false).Download(ctx, "example.org", "localhost:"+port, "abc")
	if !netguard.Blocked(err) {
		t.Errorf("localhost without the loopback switch = %v, want a netguard refusal", err)
	}
}
