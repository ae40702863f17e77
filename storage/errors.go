package storage

import "errors"

// Sentinel errors every implementation wraps.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrLimitExceeded: a per-user limit (such as pending uploads) is reached.
	ErrLimitExceeded = errors.New("limit exceeded")
	// ErrQuotaExceeded: a user's storage quota would be exceeded.
	ErrQuotaExceeded = errors.New("quota exceeded")
)
