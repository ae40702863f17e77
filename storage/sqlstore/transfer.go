package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/mediarepo/mediarepo/storage"
)

var _ storage.TransferStore = (*Store)(nil)

// TransferBlobs implements storage.TransferStore.
func (s *Store) TransferBlobs(ctx context.Context, from string, before time.Time, after string, limit int) (_ []storage.TransferBlob, err error) {
	defer s.classify(&err)
	rows, err := s.db.QueryContext(ctx, s.a.transferBlobs, from, before.UnixMilli(), after, limit)
	if err != nil {
		return nil, fmt.Errorf("select blobs of datastore %s: %w", from, err)
	}
	defer rows.Close()
	var out []storage.TransferBlob
	for rows.Next() {
		var b storage.TransferBlob
		if err := rows.Scan(&b.SHA256, &b.Size); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// MoveBlob implements storage.TransferStore.
func (s *Store) MoveBlob(ctx context.Context, sha256, from, to string, before time.Time) (moved int64, err error) {
	defer s.classify(&err)
	err = s.inTx(ctx, "move blob "+sha256, func(tx *sql.Tx) error {
		if err := s.lock(ctx, tx, blobLock(sha256)); err != nil {
			return err
		}
		moved = 0
		for _, q := range []string{s.a.moveMedia, s.a.moveThumbs, s.a.moveParts} {
			res, err := tx.ExecContext(ctx, q, from, before.UnixMilli(), sha256, to)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			moved += n
		}
		return nil
	})
	return moved, err
}
