package api

import (
	"io"
	"net/http"
	"time"
)

// Slow bodies: a body must not stall for more than timeouts.bodyIdleSeconds
// between two reads or writes, nor come or go slower on average than
// timeouts.minBodyBytesPerSecond once the first idle period is over.
// Without this, fifty clients trickling a byte a second held fifty
// connections and fifty temp files for as long as they liked.

// pacedBody sets the connection's read deadline before each read of the
// body: the sooner of now plus the idle time and the time by which the bytes
// read so far should have come at the minimum rate.
type pacedBody struct {
	r     io.Reader
	rc    *http.ResponseController
	start time.Time
	idle  time.Duration
	rate  int64 // bytes a second; 0: no floor
	read  int64
}

func (s *Server) pacedBody(w http.ResponseWriter, body io.Reader) io.Reader {
	t := s.conf().Timeouts
	return &pacedBody{r: body, rc: http.NewResponseController(w), start: time.Now(),
		idle: time.Duration(t.BodyIdleSeconds) * time.Second, rate: t.MinBodyBytesPerSecond}
}

func (p *pacedBody) Read(b []byte) (int, error) {
	deadline := time.Now().Add(p.idle)
	if p.rate > 0 {
		floor := p.start.Add(p.idle + time.Duration(float64(p.read)/float64(p.rate)*float64(time.Second)))
		if floor.Before(deadline) {
			deadline = floor
		}
	}
	p.rc.SetReadDeadline(deadline) // unsupported by a writer: no deadline, as before
	n, err := p.r.Read(b)
	p.read += int64(n)
	return n, err
}

// paceWrite gives a response of n bytes the time it may take: the idle time
// plus n at the minimum rate.
func (s *Server) paceWrite(w http.ResponseWriter, n int64) {
	t := s.conf().Timeouts
	d := time.Duration(t.BodyIdleSeconds) * time.Second
	if t.MinBodyBytesPerSecond > 0 {
		d += time.Duration(float64(n) / float64(t.MinBodyBytesPerSecond) * float64(time.Second))
	}
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
}
