package homeserver

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors of this package.
var (
	// ErrUnknownToken: the homeserver does not accept the access token.
	ErrUnknownToken = errors.New("unknown access token")
	// ErrUnreachable: the homeserver could not be asked, or failed (5xx, bad reply).
	ErrUnreachable = errors.New("homeserver unreachable")
)

// TokenError is the homeserver's own refusal of a token, relayed to the client
// as it was said: status, errcode, message and soft_logout. A 401 is
// ErrUnknownToken under errors.Is.
type TokenError struct {
	Status     int
	Code       string
	Message    string
	SoftLogout bool
	RetryAfter time.Duration // with 429, from retry_after_ms or Retry-After
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("homeserver refused token: %d %s: %s", e.Status, e.Code, e.Message)
}

// Is makes a 401 match ErrUnknownToken.
func (e *TokenError) Is(target error) bool {
	return target == ErrUnknownToken && e.Status == 401
}
