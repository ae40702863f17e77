package api

import (
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// withRequestLog gives each request an ID and a logger, and writes one access
// line when it finishes, at a level that follows the status.
func (s *Server) withRequestLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := newRequestID()
		w.Header().Set("X-Request-Id", id)
		st := &requestState{id: id, ip: s.clientIP(r), base: s.log}
		rec := &recorder{ResponseWriter: w}
		var body *countingBody
		if s.ops.metrics != nil && r.Body != nil {
			body = &countingBody{ReadCloser: r.Body}
			r.Body = body
		}
		next.ServeHTTP(rec, r.WithContext(withState(r.Context(), st)))
		if s.ops.metrics != nil {
			s.recordMetrics(r, st, rec, body, time.Since(start))
		}

		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		fields := make(logrus.Fields, 14)
		fields["request_id"] = id
		fields["method"] = r.Method
		fields["path"] = r.URL.EscapedPath() // never the query: it may hold a token
		fields["status"] = status
		fields["duration_ms"] = float64(time.Since(start).Microseconds()) / 1000
		fields["bytes"] = rec.bytes
		fields["server_name"] = r.Host
		fields["client_ip"] = st.ip
		if st.hs != nil {
			fields["server_name"] = st.hs.Name
		}
		if st.user != nil && st.user.UserID != "" {
			fields["user_id"] = st.user.UserID
		}
		for k, v := range st.extra {
			fields[k] = v
		}
		outage := false
		if e := st.err; e != nil {
			fields["errcode"] = e.Code
			outage = s.outages.kind(e.Err) >= 0
			if e.Err != nil && !outage {
				fields[logrus.ErrorKey] = e.Err
			}
		}
		// Built directly rather than with WithFields, which would copy the map.
		entry := &logrus.Entry{Logger: s.log, Data: fields}
		switch {
		case st.aborted:
			entry.Debug("request aborted by client")
		case outage:
			// Every request fails the same way until storage is back: its cause
			// is logged once a minute, each request as a warning.
			s.outages.log(s.log, st.err.Err)
			entry.Warn("request")
		case status >= 500:
			entry.Error("request")
		case status >= 400:
			entry.Warn("request")
		default:
			entry.Info("request")
		}
	})
}

// recordMetrics counts one answered request by its route's template
// (never its path, which would make a series per media).
func (s *Server) recordMetrics(r *http.Request, st *requestState, rec *recorder, body *countingBody, d time.Duration) {
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	route := st.route
	if route == "" {
		route = "unmatched"
	}
	var in int64
	if body != nil {
		in = body.n
	}
	s.ops.metrics.Request(route, r.Method, status, d.Seconds(), in, int64(rec.bytes))
}

// countingBody counts the bytes read of a request body.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

// withRecover turns a panic into 500 M_UNKNOWN and logs the stack.
func (s *Server) withRecover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v) // net/http's own way to abort a response
			}
			logFrom(r.Context()).WithField("stack", string(debug.Stack())).Errorf("panic: %v", v)
			if rec, ok := w.(*recorder); !ok || rec.status == 0 {
				writeError(w, r, &Error{Status: 500, Code: "M_UNKNOWN", Message: "Internal server error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// corsHeaders are set on every response. The keys are canonical and the
// slices are never modified, so they can be shared by all responses.
var corsHeaders = map[string][]string{
	"Access-Control-Allow-Origin":   {"*"},
	"Access-Control-Allow-Methods":  {"GET, HEAD, POST, PUT, DELETE, OPTIONS"},
	"Access-Control-Allow-Headers":  {"X-Requested-With, Content-Type, Authorization, Date"},
	"Access-Control-Expose-Headers": {"Content-Disposition, Content-Length, Content-Range, ETag"},
	"X-Content-Type-Options":        {"nosniff"},
	"Cross-Origin-Resource-Policy":  {"cross-origin"},
}

// withCORS sets the spec's CORS and protective headers on every response and
// answers every preflight.
func withCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k, v := range corsHeaders {
			h[k] = v
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireHost selects the homeserver from Host, or from X-Forwarded-Host when
// repo.useForwardedHost is on, and refuses unknown hosts.
func (s *Server) requireHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, header := r.Host, "Host"
		if s.conf().Repo.UseForwardedHost {
			if xf := r.Header.Get("X-Forwarded-Host"); xf != "" {
				host, header = xf, "X-Forwarded-Host"
			}
		}
		hs, ok := s.conf().Homeserver(host)
		st := stateFrom(r.Context())
		if !ok {
			st.extra = logrus.Fields{"host": host, "host_header": header}
			s.fail(w, r, errUnknownHost())
			return
		}
		st.hs = hs
		next.ServeHTTP(w, r)
	})
}

// clientIP is the peer address, or the nearest X-Forwarded-For hop that is not
// one of our proxies when the peer is trusted (loopback or private, or anyone
// with repo.trustAnyForwardedAddress). Walking from the right means a client
// cannot pick its own IP by sending the header itself.
func (s *Server) clientIP(r *http.Request) string {
	peer := remoteAddr(r.RemoteAddr)
	if !peer.IsValid() || !(s.conf().Repo.TrustAnyForwardedAddress || trustedProxy(peer)) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	ip := peer
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		ip = hop.Unmap()
		if !s.conf().Repo.TrustAnyForwardedAddress && !trustedProxy(ip) {
			break
		}
	}
	return ip.String()
}

func remoteAddr(addr string) netip.Addr {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip, _ := netip.ParseAddr(host)
	return ip.Unmap()
}

func trustedProxy(ip netip.Addr) bool {
	return ip.IsLoopback() || ip.IsPrivate()
}

func newRequestID() string {
	var b [8]byte
	v := rand.Uint64() // request IDs need uniqueness, not secrecy
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return hex.EncodeToString(b[:])
}

// recorder remembers the status and byte count for the access log. It passes
// ReadFrom through so that http.ServeContent can still use sendfile.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	rf, ok := r.ResponseWriter.(io.ReaderFrom)
	if !ok {
		n, err := io.Copy(struct{ io.Writer }{r.ResponseWriter}, src)
		r.bytes += n
		return n, err
	}
	n, err := rf.ReadFrom(src)
	r.bytes += n
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
