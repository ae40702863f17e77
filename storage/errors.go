package storage

import (
	"errors"
	"time"
)

// Sentinel errors every implementation wraps.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrLimitExceeded: a per-user limit (such as pending uploads) is reached.
	ErrLimitExceeded = errors.New("limit exceeded")
	// ErrQuotaExceeded: a user's storage quota would be exceeded.
	ErrQuotaExceeded = errors.New("quota exceeded")
	// ErrUnavailable: the database or a datastore cannot be reached or used
	// right now (down, restarting, locked); trying again later may work.
	ErrUnavailable = errors.New("storage unavailable")
	// ErrFull: the database or a datastore has no space left.
	ErrFull = errors.New("storage full")
	// ErrReadOnly: the database or a datastore cannot be written to.
	ErrReadOnly = errors.New("storage read-only")
	// ErrQuarantined: the bytes of new media are quarantined.
	ErrQuarantined = errors.New("content quarantined")
)

// LimitError is ErrLimitExceeded with the time the limit frees up, where the
// store knows it (the expiry of a user's oldest reservation).
type LimitError struct {
	Until time.Time
}

func (e *LimitError) Error() string {
	return "limit exceeded until " + e.Until.UTC().Format(time.RFC3339)
}

// Unwrap makes errors.Is(err, ErrLimitExceeded) hold.
func (e *LimitError) Unwrap() error { return ErrLimitExceeded }
