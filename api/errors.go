package api

import (
	"context"
	"errors"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/mediarepo/mediarepo/antivirus"
	"github.com/mediarepo/mediarepo/archive"
	"github.com/mediarepo/mediarepo/federation"
	"github.com/mediarepo/mediarepo/homeserver"
	"github.com/mediarepo/mediarepo/media"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/thumbnails"
	"github.com/sirupsen/logrus"
)

// Error is a Matrix error response. Only Status, Code and Message reach the
// client; Err is the cause, for logs and errors.Is.
type Error struct {
	Status     int
	Code       string
	Message    string
	SoftLogout bool          // sent as soft_logout with M_UNKNOWN_TOKEN
	RetryAfter time.Duration // with 429: Retry-After and retry_after_ms
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// body is the JSON the client sees.
func (e *Error) body() any {
	type body struct {
		Code         string `json:"errcode"`
		Message      string `json:"error"`
		SoftLogout   *bool  `json:"soft_logout,omitempty"`
		RetryAfterMS int64  `json:"retry_after_ms,omitempty"`
	}
	b := body{Code: e.Code, Message: e.Message, RetryAfterMS: e.RetryAfter.Milliseconds()}
	if e.Code == "M_UNKNOWN_TOKEN" {
		b.SoftLogout = &e.SoftLogout
	}
	return b
}

func errNotFound(msg string) *Error { return &Error{Status: 404, Code: "M_NOT_FOUND", Message: msg} }
func errUnrecognized(status int) *Error {
	return &Error{Status: status, Code: "M_UNRECOGNIZED", Message: "Unrecognized request"}
}
func errInvalidParam(msg string) *Error {
	return &Error{Status: 400, Code: "M_INVALID_PARAM", Message: msg}
}
func errTooLarge(msg string) *Error { return &Error{Status: 413, Code: "M_TOO_LARGE", Message: msg} }
func errMissingToken() *Error {
	return &Error{Status: 401, Code: "M_MISSING_TOKEN", Message: "Missing access token"}
}
func errUnknownToken() *Error {
	return &Error{Status: 401, Code: "M_UNKNOWN_TOKEN", Message: "Unrecognised access token"}
}
func errGuestForbidden() *Error {
	return &Error{Status: 403, Code: "M_GUEST_ACCESS_FORBIDDEN", Message: "Guest access is not allowed here"}
}
func errUnknownHost() *Error {
	return &Error{Status: 404, Code: "M_NOT_FOUND", Message: "This media repository does not serve this host"}
}

// matrixError turns any error into the Matrix error the client gets. Causes it
// does not know become a generic 500: their text could leak internals.
func matrixError(err error) *Error {
	var me *Error
	if errors.As(err, &me) {
		return me
	}
	if ae, ok := adminError(err); ok {
		return ae
	}
	var te *homeserver.TokenError
	if errors.As(err, &te) {
		return &Error{Status: te.Status, Code: te.Code, Message: te.Message, SoftLogout: te.SoftLogout, RetryAfter: te.RetryAfter, Err: err}
	}
	var le *storage.LimitError
	if errors.As(err, &le) {
		return &Error{Status: 429, Code: "M_LIMIT_EXCEEDED", Message: "Too many media IDs reserved and not uploaded yet",
			RetryAfter: max(time.Until(le.Until), time.Second), Err: err}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		e := errTooLarge("Upload is larger than the limit of this server")
		e.Err = err
		return e
	}
	for _, m := range sentinels {
		if errors.Is(err, m.err) {
			return &Error{Status: m.status, Code: m.code, Message: m.msg, RetryAfter: m.retry, Err: err}
		}
	}
	return &Error{Status: 500, Code: "M_UNKNOWN", Message: "Internal server error", Err: err}
}

// sentinels maps lower packages' sentinel errors to Matrix errors. Order
// matters: an error may wrap several (a failed remote fetch wraps
// media.ErrRemoteFailed and what went wrong), and the first match wins.
var sentinels = []struct {
	err    error
	status int
	code   string
	msg    string
	retry  time.Duration
}{
	// A storage outage is what the client most needs to hear, whatever else failed with it.
	{storage.ErrFull, 507, "M_UNKNOWN", "The media store is full; try again later", time.Minute},
	{storage.ErrReadOnly, 503, "M_UNKNOWN", "The media store cannot be written to right now; try again later", time.Minute},
	{storage.ErrUnavailable, 503, "M_UNKNOWN", "The media store cannot be reached right now; try again later", 5 * time.Second},
	{antivirus.ErrInfected, 403, "M_FORBIDDEN", "The file was refused: the virus scanner found malware in it", 0},
	{antivirus.ErrUnavailable, 503, "M_UNKNOWN", "The virus scanner cannot be reached right now; try again later", 30 * time.Second},
	{federation.ErrNotFound, 404, "M_NOT_FOUND", "Media not found on the remote server", 0},
	{media.ErrRemoteTooLarge, 502, "M_TOO_LARGE", "The remote media is larger than this server accepts", 0},
	{media.ErrRemoteFailed, 502, "M_UNKNOWN", "The remote server could not be reached for this media", 0},
	{media.ErrNoRemote, 404, "M_NOT_FOUND", "Media not found (this repository does not fetch media from that server)", 0},
	{media.ErrNotCached, 404, "M_NOT_FOUND", "Media not found (remote media is fetched only on /_matrix/client/v1/media)", 0},
	{media.ErrNotYetUploaded, 504, "M_NOT_YET_UPLOADED", "The media has not been uploaded yet", 0},
	{media.ErrCannotOverwrite, 409, "M_CANNOT_OVERWRITE_MEDIA", "This media has already been uploaded", 0},
	{media.ErrNotReserved, 404, "M_NOT_FOUND", "This media ID was never created, or it expired", 0},
	{media.ErrNotOwner, 403, "M_FORBIDDEN", "This media ID was created by another user", 0},
	{media.ErrTooManyPending, 429, "M_LIMIT_EXCEEDED", "Too many media IDs reserved and not uploaded yet", 0},
	{media.ErrTooLarge, 413, "M_TOO_LARGE", "Upload is larger than the limit of this server", 0},
	{media.ErrTooSmall, 400, "M_TOO_SMALL", "Upload is smaller than the minimum size of this server", 0},
	{archive.ErrPartTooLarge, 413, "M_TOO_LARGE", "The part is larger than an export part can be", 0},
	{archive.ErrBusy, 429, "M_LIMIT_EXCEEDED", "Too many imports are in progress; close one first", time.Minute},
	{archive.ErrNoDatastore, 503, "M_UNKNOWN", "No datastore takes archives here (see datastores[].forKinds)", 0},
	{storage.ErrQuarantined, 403, "M_FORBIDDEN", "This content is not allowed on this server", 0},
	{storage.ErrNotFound, 404, "M_NOT_FOUND", "Media not found", 0},
	{storage.ErrQuotaExceeded, 403, "M_FORBIDDEN", "Your media storage quota is used up", 0},
	{homeserver.ErrUnknownToken, 401, "M_UNKNOWN_TOKEN", "Unrecognised access token", 0},
	{homeserver.ErrUnreachable, 502, "M_UNKNOWN", "The homeserver could not be reached to check the access token; try again later", 0},
	{thumbnails.ErrTooManyPixels, 413, "M_TOO_LARGE", "The image is too large to thumbnail", 0},
	{thumbnails.ErrTooLarge, 413, "M_TOO_LARGE", "The image is too large to thumbnail", 0},
	{thumbnails.ErrUnsupported, 400, "M_UNKNOWN", "This media cannot be thumbnailed", 0},
	{thumbnails.ErrCorrupt, 400, "M_UNKNOWN", "The image could not be read to thumbnail it", 0},
	{os.ErrDeadlineExceeded, 408, "M_UNKNOWN", "The request body came too slowly", 0},
	{context.DeadlineExceeded, 504, "M_UNKNOWN", "Timed out", 0},
}

// outageLog logs the cause of storage outages (full, read-only, unreachable)
// at most once a minute each, where every request would otherwise log it.
type outageLog struct {
	last [3]atomic.Int64 // unix seconds of the last line, by kind
}

var outageKinds = [3]error{storage.ErrFull, storage.ErrReadOnly, storage.ErrUnavailable}

// kind is err's index in outageKinds, or -1.
func (o *outageLog) kind(err error) int {
	for i, k := range outageKinds {
		if err != nil && errors.Is(err, k) {
			return i
		}
	}
	return -1
}

func (o *outageLog) log(log *logrus.Logger, err error) {
	i := o.kind(err)
	if i < 0 {
		return
	}
	now := time.Now().Unix()
	last := o.last[i].Load()
	if now-last < 60 || !o.last[i].CompareAndSwap(last, now) {
		return
	}
	log.WithError(err).WithField("kind", outageKinds[i].Error()).Error("storage outage: requests fail until it ends (logged once a minute)")
}
