package storage

import "errors"

// Sentinel errors every implementation wraps.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)
