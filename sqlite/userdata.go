package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// UserFilter selects the rows of one user: those whose metadata field key
// (a dotted path, such as userId or user.id) equals value.
func UserFilter(key, value string) vibekit.Filter {
	return vibekit.Filter{Metadata: map[string]string{key: value}}
}

// Deletion describes a request to delete a user's data, for the audit trail.
type Deletion struct {
	Reason    string
	RequestID string
	Requested time.Time // when the request was made; zero if unknown
}

// Deleted is what DeleteUserData did.
type Deleted struct {
	Events int64
	// WALScrubbed is true when the WAL was copied into the database and
	// truncated, so that no earlier copy of the deleted rows remains in it.
	// Another process reading the database at that moment keeps it false.
	WALScrubbed bool
}

// DeleteUserData deletes the rows of one user (see UserFilter) and records
// the deletion, without the user's id, in vk_deletions, in one transaction.
// With secure_delete on, SQLite overwrites the deleted content with zeros;
// a TRUNCATE checkpoint then removes the WAL frames that still held it.
func (db *DB) DeleteUserData(ctx context.Context, key, value string, d Deletion) (Deleted, error) {
	var out Deleted
	if db.readOnly {
		return out, errors.New("delete user data: database is open read-only")
	}
	if key == "" || value == "" {
		return out, errors.New("delete user data: empty key or value")
	}
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return out, fmt.Errorf("delete user data: %w", err)
	}
	defer conn.Close()
	var prev int
	if err := conn.QueryRowContext(ctx, `PRAGMA secure_delete`).Scan(&prev); err != nil {
		return out, fmt.Errorf("delete user data: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
		return out, fmt.Errorf("delete user data: %w", err)
	}
	defer conn.ExecContext(context.Background(), fmt.Sprintf(`PRAGMA secure_delete = %d`, prev))
	f := UserFilter(key, value)
	err = func() error {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		w, args := where(&f)
		res, err := tx.ExecContext(ctx, `DELETE FROM telemetry`+w, args...)
		if err != nil {
			return err
		}
		if out.Events, err = res.RowsAffected(); err != nil {
			return err
		}
		var requested sql.NullInt64
		if !d.Requested.IsZero() {
			requested = sql.NullInt64{Int64: d.Requested.UnixMilli(), Valid: true}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO vk_deletions (key, reason, request_id, requested, deleted, events) VALUES (?, ?, ?, ?, ?, ?)`,
			key, nullString(d.Reason), nullString(d.RequestID), requested, db.now().UnixMilli(), out.Events); err != nil {
			return err
		}
		return tx.Commit()
	}()
	if err != nil {
		return Deleted{}, fmt.Errorf("delete user data: %w", err)
	}
	var busy, log, moved int
	if err := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &log, &moved); err != nil {
		return out, fmt.Errorf("delete user data: scrub WAL: %w", err)
	}
	out.WALScrubbed = busy == 0
	return out, nil
}
