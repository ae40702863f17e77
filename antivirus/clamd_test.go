package antivirus_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/antivirus"
	"github.com/mediarepo/mediarepo/antivirus/clamdtest"
)

// scan streams body through a scanner of addr as an upload would, and
// returns what was read and the verdict.
func scan(t *testing.T, o antivirus.Options, body []byte) ([]byte, error, error) {
	t.Helper()
	s, err := antivirus.New(o)
	if err != nil {
		t.Fatal(err)
	}
	r, verdict := s.Wrap(context.Background(), bytes.NewReader(body))
	got, readErr := io.ReadAll(r)
	if readErr != nil {
		return got, readErr, nil
	}
	return got, nil, verdict()
}

func TestScanWhileStreaming(t *testing.T) {
	clamd := clamdtest.Start(t)
	big := make([]byte, 5<<20)
	rand.Read(big)
	infectedBig := append(bytes.Clone(big[:3<<20]), append([]byte(clamdtest.Pattern), big[3<<20:]...)...)
	for _, addr := range []string{clamd.TCP, clamd.Unix} {
		for _, c := range []struct {
			name     string
			body     []byte
			infected bool
		}{
			{"clean", []byte("a perfectly ordinary file"), false},
			{"empty", nil, false},
			{"clean 5 MiB", big, false},
			{"infected", []byte("header " + clamdtest.Pattern), true},
			{"infected after 3 MiB", infectedBig, true},
		} {
			t.Run(addr[:4]+" "+c.name, func(t *testing.T) {
				got, readErr, verdict := scan(t, antivirus.Options{Address: addr, Timeout: 10 * time.Second}, c.body)
				if readErr != nil || !bytes.Equal(got, c.body) {
					t.Fatalf("read %d bytes, %v; want all %d passed through", len(got), readErr, len(c.body))
				}
				if c.infected {
					if !errors.Is(verdict, antivirus.ErrInfected) || !strings.Contains(verdict.Error(), clamdtest.Signature) {
						t.Errorf("verdict = %v, want ErrInfected naming %s", verdict, clamdtest.Signature)
					}
				} else if verdict != nil {
					t.Errorf("verdict = %v, want clean", verdict)
				}
			})
		}
	}
	// Over clamd's StreamMaxLength (20M here): not scanned, so refused.
	huge := make([]byte, 21<<20)
	_, readErr, verdict := scan(t, antivirus.Options{Address: clamd.TCP, Timeout: 10 * time.Second}, huge)
	if err := errors.Join(readErr, verdict); !errors.Is(err, antivirus.ErrUnavailable) {
		t.Errorf("a file over clamd's StreamMaxLength = %v, %v; want ErrUnavailable", readErr, verdict)
	}
}

func TestClamdDown(t *testing.T) {
	clamd := clamdtest.Start(t)
	clamd.Stop()
	body := []byte("uploaded while clamd is down")
	_, readErr, _ := scan(t, antivirus.Options{Address: clamd.TCP, Timeout: 2 * time.Second}, body)
	if !errors.Is(readErr, antivirus.ErrUnavailable) {
		t.Errorf("fail closed with clamd down: read error %v, want ErrUnavailable before anything is stored", readErr)
	}
	var warned error
	got, readErr, verdict := scan(t, antivirus.Options{Address: clamd.TCP, Timeout: 2 * time.Second, FailOpen: true,
		Warn: func(err error) { warned = err }}, body)
	if readErr != nil || verdict != nil || !bytes.Equal(got, body) || !errors.Is(warned, antivirus.ErrUnavailable) {
		t.Errorf("fail open with clamd down: %v, %v, warned %v; want the file through with a warning", readErr, verdict, warned)
	}
	clamd.Restart(t)
	s, _ := antivirus.New(antivirus.Options{Address: clamd.Unix})
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping after restart: %v", err)
	}
}

func TestParseAddress(t *testing.T) {
	for _, c := range []struct {
		in, network, addr string
		ok                bool
	}{
		{"tcp://127.0.0.1:3310", "tcp", "127.0.0.1:3310", true},
		{"tcp://clamav:3310", "tcp", "clamav:3310", true},
		{"unix:///run/clamav/clamd.ctl", "unix", "/run/clamav/clamd.ctl", true},
		{"tcp://clamav", "", "", false},
		{"127.0.0.1:3310", "", "", false},
		{"unix://relative/path", "", "", false},
		{"http://clamav:3310", "", "", false},
	} {
		network, addr, err := antivirus.ParseAddress(c.in)
		if (err == nil) != c.ok || network != c.network || addr != c.addr {
			t.Errorf("ParseAddress(%q) = %q, %q, %v", c.in, network, addr, err)
		}
	}
}
