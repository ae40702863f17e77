package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Roles name the datastore (by ID) new blobs of each kind go to.
type Roles struct {
	LocalMedia  string
	RemoteMedia string
	Thumbnails  string
}

// Datastores are the configured blob stores by datastore ID, with the roles
// that say where new blobs go. Rows keep the ID of the datastore holding their
// blob, so reading goes by ID and writing by role.
type Datastores struct {
	byID  map[string]BlobStore
	roles Roles
}

// NewDatastores checks that every role names one of byID.
func NewDatastores(byID map[string]BlobStore, roles Roles) (*Datastores, error) {
	for role, id := range map[string]string{"local media": roles.LocalMedia, "remote media": roles.RemoteMedia, "thumbnails": roles.Thumbnails} {
		if _, ok := byID[id]; !ok {
			return nil, fmt.Errorf("no datastore %q for %s", id, role)
		}
	}
	return &Datastores{byID: byID, roles: roles}, nil
}

// ByID returns the blob stores by datastore ID (a copy of the map).
func (d *Datastores) ByID() map[string]BlobStore {
	m := make(map[string]BlobStore, len(d.byID))
	for id, s := range d.byID {
		m[id] = s
	}
	return m
}

// Roles returns where new blobs of each kind go.
func (d *Datastores) Roles() Roles { return d.roles }

// Put stores r's bytes in the datastore id (one of Roles) and returns the
// digest and size, as storage.Put.
func (d *Datastores) Put(ctx context.Context, id string, r io.Reader) (sha256 string, size int64, err error) {
	s, ok := d.byID[id]
	if !ok {
		return "", 0, fmt.Errorf("datastore %q is not configured", id)
	}
	return Put(ctx, s, r)
}

// Stage stages r's bytes in the datastore id, as BlobStore.Stage.
func (d *Datastores) Stage(ctx context.Context, id string, r io.Reader) (StagedBlob, error) {
	s, ok := d.byID[id]
	if !ok {
		return nil, fmt.Errorf("datastore %q is not configured", id)
	}
	return s.Stage(ctx, r)
}

// Open opens the blob sha256 of datastore id; the caller closes it. A missing
// blob is an error wrapping ErrNotFound; a datastore that is no longer
// configured is another error, since the row points at bytes we cannot reach.
func (d *Datastores) Open(ctx context.Context, id, sha256 string) (io.ReadSeekCloser, error) {
	s, ok := d.byID[id]
	if !ok {
		return nil, fmt.Errorf("open blob %s: datastore %q is not configured", sha256, id)
	}
	return s.Open(ctx, sha256)
}

// RedirectURL is where a client can fetch blob sha256 of datastore id
// itself, or "" when its store does not redirect.
func (d *Datastores) RedirectURL(ctx context.Context, id, sha256 string, h RedirectHeaders) (string, error) {
	r, ok := d.byID[id].(Redirector)
	if !ok {
		return "", nil
	}
	return r.RedirectURL(ctx, sha256, h)
}

// Close closes the blob stores that hold resources.
func (d *Datastores) Close() error {
	var errs []error
	for _, s := range d.byID {
		if c, ok := s.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}
