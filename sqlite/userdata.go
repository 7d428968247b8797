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
	// Archived is how many of the user's rows were deleted from the
	// archives first (rotate.Sealer.DeleteRows); the audit record counts
	// them with the live ones.
	Archived int64
}

// Deleted is what DeleteUserData did.
type Deleted struct {
	Events int64
	// WALScrubbed is true when the database was rewritten without its free
	// pages and the WAL copied into it and truncated, so that no earlier
	// copy of the deleted rows remains in either. Another process using the
	// database at that moment keeps it false.
	WALScrubbed bool
}

// DeleteUserData deletes the rows of one user (see UserFilter) and records
// the deletion, without the user's id, in vk_deletions, in one transaction.
// With secure_delete on, SQLite overwrites the deleted content with zeros;
// VACUUM then rewrites the database without its free pages, which may hold
// older copies, and a TRUNCATE checkpoint removes the WAL frames that still
// held any.
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
	restore := map[int]string{0: "OFF", 1: "ON", 2: "FAST"}[prev]
	defer conn.ExecContext(context.Background(), `PRAGMA secure_delete = `+restore)
	f := UserFilter(key, value)
	err = func() error {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if out.Events, err = deleteLive(ctx, tx, &f); err != nil {
			return err
		}
		var requested sql.NullInt64
		if !d.Requested.IsZero() {
			requested = sql.NullInt64{Int64: d.Requested.UnixMilli(), Valid: true}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO vk_deletions (key, reason, request_id, requested, deleted, events) VALUES (?, ?, ?, ?, ?, ?)`,
			key, nullString(d.Reason), nullString(d.RequestID), requested, db.now().UnixMilli(), out.Events+d.Archived); err != nil {
			return err
		}
		return tx.Commit()
	}()
	if err != nil {
		return Deleted{}, fmt.Errorf("delete user data: %w", err)
	}
	// Free pages are not cleared by secure_delete FAST nor by a dropped
	// table: those of rows deleted before (a seal's, a prune's) may still
	// hold copies of the user's rows. VACUUM writes the database anew,
	// without them.
	// The rows are deleted and the deletion recorded: a VACUUM that fails
	// (another process writing, a full disk) leaves the copies in free
	// pages, which is reported as a scrub not done, not as a failure.
	if _, err := conn.ExecContext(ctx, `VACUUM`); err != nil {
		return out, nil
	}
	var busy, log, moved int
	if err := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &log, &moved); err != nil {
		return out, fmt.Errorf("delete user data: scrub WAL: %w", err)
	}
	out.WALScrubbed = busy == 0
	return out, nil
}

// DeleteRowsFromFile deletes the telemetry rows that f selects from the
// database file at path, which nothing else has open (an unpacked archive),
// with secure_delete on, and then, if it deleted any, rebuilds the file with
// VACUUM, so that no free page keeps a copy. It returns how many rows it
// deleted and what the file holds after.
func DeleteRowsFromFile(ctx context.Context, path string, f vibekit.Filter) (int64, Contents, error) {
	sqldb := sql.OpenDB(connector(dsn(path, BusyTimeout, "_journal_mode=DELETE&_synchronous=OFF&_secure_delete=on"), ""))
	defer sqldb.Close()
	sqldb.SetMaxOpenConns(1)
	fail := func(err error) (int64, Contents, error) {
		return 0, Contents{}, fmt.Errorf("delete rows from %s: %w", path, err)
	}
	w, args := where(&f)
	res, err := sqldb.ExecContext(ctx, `DELETE FROM telemetry`+w, args...)
	if err != nil {
		return fail(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fail(err)
	}
	if n > 0 {
		if _, err := sqldb.ExecContext(ctx, `VACUUM`); err != nil {
			return fail(err)
		}
	}
	c, err := contentsOf(ctx, sqldb)
	if err != nil {
		return fail(err)
	}
	return n, c, sqldb.Close()
}
