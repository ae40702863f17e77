package admin

import (
	"context"
	"errors"
	"io"

	"github.com/mediarepo/mediarepo/archive"
	"github.com/mediarepo/mediarepo/mxid"
	"github.com/mediarepo/mediarepo/storage"
)

// Exports and imports in matrix-media-repo's archive format: who may start
// them. An export is then read by its ID alone, the secret it is.

// archiving refuses every archive call while archiving is off.
func (s *Service) archiving() error {
	if s.archives == nil || !s.conf().Archiving.Enabled {
		return invalid("archiving is not enabled")
	}
	return nil
}

// ExportUser starts an export of userID's uploads: a repository admin's,
// or with archiving.selfService the user's own.
func (s *Service) ExportUser(ctx context.Context, c Caller, userID string, includeS3URLs bool) (string, int64, error) {
	if err := s.archiving(); err != nil {
		return "", 0, err
	}
	if !mxid.ValidUserID(userID) {
		return "", 0, invalid("Invalid user ID")
	}
	if !c.Global {
		if !s.conf().Archiving.SelfService {
			return "", 0, forbidden("Only repository admins may export media")
		}
		if c.UserID != userID {
			return "", 0, invalid("cannot export data for another user")
		}
	}
	return s.archives.StartExport(ctx, archive.Entity{UserID: userID}, includeS3URLs)
}

// ExportServer starts an export of a server's media: a repository
// admin's, of any server, or with archiving.selfService a homeserver
// admin's of their own.
func (s *Service) ExportServer(ctx context.Context, c Caller, server string, includeS3URLs bool) (string, int64, error) {
	if err := s.archiving(); err != nil {
		return "", 0, err
	}
	if !mxid.ValidServerName(server) {
		return "", 0, invalid("Invalid server name")
	}
	if !c.Global {
		if !s.conf().Archiving.SelfService {
			return "", 0, forbidden("Only repository admins may export media")
		}
		ok, err := s.homeserverAdmin(ctx, c)
		if err != nil {
			return "", 0, err
		}
		if !ok || !sameServer(server, c.hostName()) {
			return "", 0, invalid("cannot export data for another server")
		}
	}
	return s.archives.StartExport(ctx, archive.Entity{Server: server}, includeS3URLs)
}

// Export returns an export and its parts; anyone with its ID may.
func (s *Service) Export(ctx context.Context, id string) (*storage.Export, error) {
	if err := s.archiving(); err != nil {
		return nil, err
	}
	e, err := s.archives.Export(ctx, id)
	return e, notFound(err, "Unknown export")
}

// notFound names what an unknown ID was.
func notFound(err error, msg string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return &Error{Kind: NotFound, Msg: msg, Err: err}
	}
	return err
}

// ExportPart opens one part of an export; anyone with its ID may.
func (s *Service) ExportPart(ctx context.Context, id string, index int) (storage.ExportPart, io.ReadSeekCloser, error) {
	if err := s.archiving(); err != nil {
		return storage.ExportPart{}, nil, err
	}
	p, body, err := s.archives.OpenPart(ctx, id, index)
	return p, body, notFound(err, "Unknown export or part")
}

// DeleteExport deletes an export; anyone with its ID may.
func (s *Service) DeleteExport(ctx context.Context, id string) error {
	if err := s.archiving(); err != nil {
		return err
	}
	return s.archives.DeleteExport(ctx, id)
}

// StartImport starts an import with one part: repository admins only.
func (s *Service) StartImport(ctx context.Context, c Caller, part io.Reader) (string, int64, error) {
	if err := s.importer(c); err != nil {
		return "", 0, err
	}
	return s.archives.StartImport(ctx, part)
}

// ImportPart adds a part to an import: repository admins only.
func (s *Service) ImportPart(ctx context.Context, c Caller, id string, part io.Reader) error {
	if err := s.importer(c); err != nil {
		return err
	}
	return notFound(s.archives.AddImportPart(ctx, id, part), "Unknown or finished import")
}

// CloseImport ends an import once its parts are read: repository admins
// only.
func (s *Service) CloseImport(ctx context.Context, c Caller, id string) error {
	if err := s.importer(c); err != nil {
		return err
	}
	return notFound(s.archives.CloseImport(ctx, id), "Unknown or finished import")
}

func (s *Service) importer(c Caller) error {
	if err := s.archiving(); err != nil {
		return err
	}
	return RequireGlobal(c)
}
