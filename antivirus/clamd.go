// Package antivirus scans media with ClamAV's clamd while it streams in:
// every chunk the upload path reads is also sent to clamd over its INSTREAM
// protocol, so a file is neither read twice nor held in memory, and the
// verdict is ready when the last byte has been read. It imports nothing of
// mediarepo.
package antivirus

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"
)

// ErrInfected is the verdict on a file clamd found a signature in; the
// error says which.
var ErrInfected = errors.New("infected")

// Infected is the verdict on an infected file: it is ErrInfected, and
// names the signature clamd found.
type Infected struct{ Signature string }

func (e *Infected) Error() string        { return "infected: " + e.Signature }
func (e *Infected) Is(target error) bool { return target == ErrInfected }

// ErrUnavailable is the error of a scan clamd could not make (unreachable,
// timed out, refused the stream): with failOpen false the file is refused.
var ErrUnavailable = errors.New("virus scanner unavailable")

// Options configure a Scanner.
type Options struct {
	// Address is clamd's: "tcp://host:port" or "unix:///path/to/clamd.ctl".
	Address string
	// Timeout bounds connecting and, after the last byte, the verdict.
	Timeout time.Duration
	// FailOpen lets files through when clamd cannot scan them; otherwise
	// they are refused with ErrUnavailable.
	FailOpen bool
	// Warn, if not nil, is told of each file let through unscanned.
	Warn func(err error)
}

// Scanner talks to one clamd. It is safe for concurrent use: each scan has
// a connection of its own.
type Scanner struct {
	network, addr string
	o             Options
}

// New parses o.Address; it does not connect (clamd may start later).
func New(o Options) (*Scanner, error) {
	network, addr, err := ParseAddress(o.Address)
	if err != nil {
		return nil, err
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	return &Scanner{network: network, addr: addr, o: o}, nil
}

// ParseAddress splits "tcp://host:port" or "unix:///path" into a network
// and an address for net.Dial.
func ParseAddress(s string) (network, addr string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", "", fmt.Errorf("clamd address %q: %w", s, err)
	}
	switch u.Scheme {
	case "tcp":
		if _, _, err := net.SplitHostPort(u.Host); err != nil || u.Path != "" {
			return "", "", fmt.Errorf("clamd address %q: want tcp://host:port", s)
		}
		return "tcp", u.Host, nil
	case "unix":
		if u.Path == "" || u.Host != "" {
			return "", "", fmt.Errorf("clamd address %q: want unix:///path/to/socket", s)
		}
		return "unix", u.Path, nil
	}
	return "", "", fmt.Errorf("clamd address %q: want tcp://host:port or unix:///path", s)
}

// Ping checks that clamd answers, for start-up logs and readiness.
func (s *Scanner) Ping(ctx context.Context) error {
	conn, err := s.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(s.o.Timeout))
	if _, err := conn.Write([]byte("zPING\x00")); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	reply, err := bufio.NewReader(conn).ReadString(0)
	if err != nil || strings.TrimSuffix(reply, "\x00") != "PONG" {
		return fmt.Errorf("%w: clamd answered %q to PING (%v)", ErrUnavailable, reply, err)
	}
	return nil
}

func (s *Scanner) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: s.o.Timeout}
	conn, err := d.DialContext(ctx, s.network, s.addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return conn, nil
}

// Wrap returns r with every byte read from it also sent to clamd, and the
// verdict to ask for once r has been read to its end: nil for a clean file
// (or, failing open, one that could not be scanned), an error wrapping
// ErrInfected or ErrUnavailable otherwise. Reading fails early, with
// ErrUnavailable, when clamd cannot be reached and failOpen is off.
func (s *Scanner) Wrap(ctx context.Context, r io.Reader) (io.Reader, func() error) {
	st := &stream{s: s, r: r}
	conn, err := s.dial(ctx)
	if err == nil {
		conn.SetWriteDeadline(time.Now().Add(s.o.Timeout))
		_, err = conn.Write([]byte("zINSTREAM\x00"))
		if err != nil {
			conn.Close()
			err = fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	if err != nil {
		st.fail(err)
	} else {
		st.conn = conn
	}
	return st, st.verdict
}

// stream tees reads into clamd's INSTREAM chunks.
type stream struct {
	s    *Scanner
	r    io.Reader
	conn net.Conn // nil once scanning failed
	err  error    // why scanning failed
	eof  bool
}

// fail records a scan that cannot go on and drops the connection.
func (st *stream) fail(err error) {
	if st.conn != nil {
		st.conn.Close()
		st.conn = nil
	}
	if st.err == nil {
		st.err = err
	}
}

func (st *stream) Read(p []byte) (int, error) {
	if st.err != nil && !st.s.o.FailOpen {
		return 0, st.err
	}
	n, err := st.r.Read(p)
	if n > 0 && st.conn != nil {
		var size [4]byte
		binary.BigEndian.PutUint32(size[:], uint32(n))
		st.conn.SetWriteDeadline(time.Now().Add(st.s.o.Timeout))
		if _, werr := st.conn.Write(size[:]); werr != nil {
			st.fail(st.writeError(werr))
		} else if _, werr := st.conn.Write(p[:n]); werr != nil {
			st.fail(st.writeError(werr))
		}
		if st.err != nil && !st.s.o.FailOpen {
			return 0, st.err
		}
	}
	if err == io.EOF {
		st.eof = true
	}
	return n, err
}

// writeError explains a write clamd stopped reading: it closes the stream
// when it exceeds its StreamMaxLength, after saying so.
func (st *stream) writeError(err error) error {
	st.conn.SetReadDeadline(time.Now().Add(time.Second))
	if reply, rerr := bufio.NewReader(st.conn).ReadString(0); rerr == nil || reply != "" {
		return fmt.Errorf("%w: clamd stopped the stream: %s", ErrUnavailable, strings.TrimSuffix(reply, "\x00"))
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

// verdict ends the stream and reads clamd's answer.
func (st *stream) verdict() error {
	if st.conn != nil && st.eof {
		defer st.conn.Close()
		st.conn.SetDeadline(time.Now().Add(st.s.o.Timeout))
		if _, err := st.conn.Write([]byte{0, 0, 0, 0}); err != nil {
			st.fail(fmt.Errorf("%w: %v", ErrUnavailable, err))
		} else if reply, err := bufio.NewReader(st.conn).ReadString(0); err != nil {
			st.fail(fmt.Errorf("%w: no verdict: %v", ErrUnavailable, err))
		} else {
			return st.judge(strings.TrimSuffix(reply, "\x00"))
		}
	} else if st.conn != nil {
		st.fail(fmt.Errorf("%w: the file was not read to its end", ErrUnavailable))
	}
	if st.err == nil {
		return nil
	}
	if st.s.o.FailOpen {
		if st.s.o.Warn != nil {
			st.s.o.Warn(st.err)
		}
		return nil
	}
	return st.err
}

// judge reads clamd's one-line answer to a stream.
func (st *stream) judge(reply string) error {
	switch {
	case strings.HasSuffix(reply, " OK"):
		return nil
	case strings.HasSuffix(reply, " FOUND"):
		return &Infected{Signature: strings.TrimSuffix(strings.TrimPrefix(reply, "stream: "), " FOUND")}
	}
	st.err = fmt.Errorf("%w: clamd answered %q", ErrUnavailable, reply)
	if st.s.o.FailOpen {
		if st.s.o.Warn != nil {
			st.s.o.Warn(st.err)
		}
		return nil
	}
	return st.err
}
