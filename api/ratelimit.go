package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/mediarepo/mediarepo/storage"
)

// withRateLimit refuses requests from a client IP beyond rateLimit's rate and
// burst. The IP comes from clientIP, so rotating X-Forwarded-For does not
// give a client a fresh bucket unless it comes through a trusted proxy.
// Federation requests are exempt: one large homeserver fetching its users'
// media is one IP, and its requests are signed.
func (s *Server) withRateLimit(next http.Handler) http.Handler {
	if s.limiter == nil {
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

// allow takes a request token for key, or returns 429 M_LIMIT_EXCEEDED. When
// the limiter itself fails (Redis down), requests are let through: a broken
// limiter must not take the media repository down with it.
func (s *Server) allow(ctx context.Context, key string) error {
	if s.limiter == nil {
		return nil
	}
	rl := s.cfg.RateLimit
	ok, wait, err := s.limiter.Allow(ctx, key, rl.RequestsPerSecond, rl.Burst)
	if err != nil {
		logFrom(ctx).WithError(err).Warn("rate limiter unavailable; request allowed")
		return nil
	}
	if !ok {
		return errLimitExceeded("Too many requests", wait)
	}
	return nil
}

// takeDownload charges n served bytes to the client's download bucket, or
// returns 429 M_LIMIT_EXCEEDED. HEAD requests are free.
func (s *Server) takeDownload(r *http.Request, n int64) error {
	b := s.cfg.RateLimit.Buckets.Downloads
	if s.limiter == nil || b.CapacityBytes == 0 || r.Method == http.MethodHead {
		return nil
	}
	ok, wait, err := s.limiter.TakeBytes(r.Context(), "dl:"+stateFrom(r.Context()).ip, n, b.CapacityBytes, b.OverflowLimitBytes, float64(b.DrainBytesPerMinute)/60)
	if err != nil {
		logFrom(r.Context()).WithError(err).Warn("rate limiter unavailable; download allowed")
		return nil
	}
	if !ok {
		return errLimitExceeded("Too much downloaded; try again later", wait)
	}
	return nil
}

func errLimitExceeded(msg string, wait time.Duration) *Error {
	return &Error{Status: 429, Code: "M_LIMIT_EXCEEDED", Message: msg, RetryAfter: max(wait, time.Second)}
}

// quota returns the storage quota and pending limit that apply to userID.
func (s *Server) quota(userID string) (storage.Quota, int) {
	rule, ok := s.cfg.Uploads.Quotas.Quota(userID)
	if !ok {
		return storage.Quota{}, s.cfg.Uploads.MaxPending
	}
	pending := s.cfg.Uploads.MaxPending
	if rule.MaxPending > 0 {
		pending = rule.MaxPending
	}
	return storage.Quota{MaxBytes: rule.MaxBytes, MaxFiles: rule.MaxFiles}, pending
}

// checkQuotaBeforeUpload refuses an upload before its body is read when the
// user is already at their quota. The final, atomic check happens when the
// row is written.
func (s *Server) checkQuotaBeforeUpload(ctx context.Context, userID string) error {
	q, _ := s.quota(userID)
	if q.MaxBytes <= 0 && q.MaxFiles <= 0 {
		return nil
	}
	u, err := s.meta.Usage(ctx, userID)
	if err != nil {
		return err
	}
	if (q.MaxBytes > 0 && u.Bytes >= q.MaxBytes) || (q.MaxFiles > 0 && u.Files >= q.MaxFiles) {
		return errQuotaExceeded()
	}
	return nil
}

func errQuotaExceeded() *Error {
	return &Error{Status: 403, Code: "M_FORBIDDEN", Message: "Your media storage quota is used up"}
}

// handleUsage serves GET /_matrix/media/unstable/org.matrix.msc4034/usage.
func (s *Server) handleUsage(w http.ResponseWriter, r *http.Request) error {
	u, err := s.meta.Usage(r.Context(), userFrom(r.Context()).UserID)
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
	q, _ := s.quota(userID)
	if q.MaxBytes > 0 {
		into["org.matrix.msc4034.storage.size"] = q.MaxBytes
	}
	if q.MaxFiles > 0 {
		into["org.matrix.msc4034.storage.max_files"] = q.MaxFiles
	}
}
