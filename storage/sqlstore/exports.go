package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mediarepo/mediarepo/storage"
)

var _ storage.ExportStore = (*Store)(nil)

// CreateExport implements storage.ExportStore.
func (s *Store) CreateExport(ctx context.Context, e *storage.Export) (err error) {
	defer s.classify(&err)
	if _, err := s.db.ExecContext(ctx, s.a.insertExport, e.ID, e.Entity, e.TaskID, e.Created.UnixMilli()); err != nil {
		return fmt.Errorf("insert export: %w", err)
	}
	return nil
}

// AddExportPart implements storage.ExportStore.
func (s *Store) AddExportPart(ctx context.Context, id string, p storage.ExportPart, publish func(context.Context) error) (err error) {
	defer s.classify(&err)
	return s.inTx(ctx, "add export part", func(tx *sql.Tx) error {
		if err := s.lock(ctx, tx, blobLock(p.SHA256)); err != nil {
			return err
		}
		if publish != nil {
			if err := publish(ctx); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, s.a.insertExportPart, id, p.Index, p.Name, p.Size, p.SHA256, p.DatastoreID)
		return err
	})
}

// Export implements storage.ExportStore.
func (s *Store) Export(ctx context.Context, id string) (_ *storage.Export, err error) {
	defer s.classify(&err)
	e := &storage.Export{ID: id}
	var created int64
	err = s.db.QueryRowContext(ctx, s.a.selectExport, id).Scan(&e.Entity, &e.TaskID, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("export %s: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("select export: %w", err)
	}
	e.Created = time.UnixMilli(created)
	rows, err := s.db.QueryContext(ctx, s.a.selectExportParts, id)
	if err != nil {
		return nil, fmt.Errorf("select export parts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p storage.ExportPart
		if err := rows.Scan(&p.Index, &p.Name, &p.Size, &p.SHA256, &p.DatastoreID); err != nil {
			return nil, err
		}
		e.Parts = append(e.Parts, p)
	}
	return e, rows.Err()
}

// DeleteExport implements storage.ExportStore.
func (s *Store) DeleteExport(ctx context.Context, id string) (refs []storage.BlobRef, err error) {
	defer s.classify(&err)
	err = s.inTx(ctx, "delete export", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.a.selectExportParts, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var p storage.ExportPart
			if err := rows.Scan(&p.Index, &p.Name, &p.Size, &p.SHA256, &p.DatastoreID); err != nil {
				return err
			}
			refs = append(refs, storage.BlobRef{DatastoreID: p.DatastoreID, SHA256: p.SHA256})
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		if _, err := tx.ExecContext(ctx, s.a.deleteParts, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.a.deleteExport, id)
		return err
	})
	return refs, err
}
