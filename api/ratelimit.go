package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/mediarepo/mediarepo/ratelimit"
)

// withRateLimit refuses requests from a client IP beyond rateLimit's rate and
// burst. The IP comes from clientIP, so rotating X-Forwarded-For does not
// give a client a fresh bucket unless it comes through a trusted proxy.
// Federation requests are exempt: one large homeserver fetching its users'
// media is one IP, and its requests are signed.
func (s *Server) withRateLimit(next http.Handler) http.Handler {
	if s.limits == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_matrix/federation/") {
			next.ServeHTTP(w, r)
			return
		}
		if err := s.allow(r.Context(), "ip:"+stateFrom(r.Context()).ip); err != nil {
			s.fail(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allow takes a request token for key, or returns 429 M_LIMIT_EXCEEDED.
func (s *Server) allow(ctx context.Context, key string) error {
	if s.limits == nil {
		return nil
	}
	return s.limited(ctx, s.limits.Request(ctx, key), "Too many requests")
}

// takeDownload charges n served bytes to the client's download bucket, or
// returns 429 M_LIMIT_EXCEEDED. HEAD requests are free.
func (s *Server) takeDownload(r *http.Request, n int64) error {
	if s.limits == nil || r.Method == http.MethodHead {
		return nil
	}
	ctx := r.Context()
	return s.limited(ctx, s.limits.Download(ctx, "dl:"+stateFrom(ctx).ip, n), "Too much downloaded; try again later")
}

// limited turns a rate-limit decision into the answer. When the limiter
// itself fails (Redis down), requests are let through: a broken limiter must
// not take the media repository down with it.
func (s *Server) limited(ctx context.Context, err error, msg string) error {
	var ex *ratelimit.ExceededError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ex):
		return &Error{Status: 429, Code: "M_LIMIT_EXCEEDED", Message: msg, RetryAfter: ex.RetryAfter, Err: err}
	}
	logFrom(ctx).WithError(err).Warn("rate limiter unavailable; request allowed")
	return nil
}

// handleUsage serves GET /_matrix/media/unstable/org.matrix.msc4034/usage.
func (s *Server) handleUsage(w http.ResponseWriter, r *http.Request) error {
	u, err := s.media.Usage(r.Context(), userFrom(r.Context()).UserID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int64{
		"org.matrix.msc4034.storage.used":  u.Bytes,
		"org.matrix.msc4034.storage.files": u.Files,
	})
	return nil
}

// quotaFields are the MSC4034 additions to /media/config for userID.
func (s *Server) quotaFields(userID string, into map[string]any) {
	q, _ := s.media.Quota(userID)
	if q.MaxBytes > 0 {
		into["org.matrix.msc4034.storage.size"] = q.MaxBytes
	}
	if q.MaxFiles > 0 {
		into["org.matrix.msc4034.storage.max_files"] = q.MaxFiles
	}
}
