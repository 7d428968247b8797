package sqlite

import (
	"context"
	"errors"
	"fmt"
)

// Vacuum rebuilds the database file to give the space of deleted rows back
// to the file system, then truncates the WAL.
func (db *DB) Vacuum(ctx context.Context) error {
	if db.readOnly {
		return errors.New("vacuum: database is open read-only")
	}
	if _, err := db.db.ExecContext(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	if _, err := db.checkpointTruncate(ctx); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	return nil
}

// checkpointTruncate copies the whole WAL into the database and truncates
// it to zero bytes. done is false if a reader kept it from finishing.
func (db *DB) checkpointTruncate(ctx context.Context) (done bool, err error) {
	var busy, log, moved int
	if err := db.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &log, &moved); err != nil {
		return false, fmt.Errorf("checkpoint: %w", err)
	}
	return busy == 0, nil
}
