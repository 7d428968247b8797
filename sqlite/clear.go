package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// Counts are the rows a change touched: telemetry rows and rejected lines.
type Counts struct {
	Events  int64 // telemetry rows
	Rejects int64 // rejected input lines
}

// ErrNotScrubbed means that rows were deleted but copies of them may still
// be read in the file or its WAL: the rebuild or the truncating checkpoint
// after the deletion could not be done (a reader using the WAL, a full
// disk). The next deletion, or vacuum, tries again.
var ErrNotScrubbed = errors.New("the deleted rows may still be read in the database file or its WAL")

// secureDelete runs del, which deletes rows, on one connection with
// secure_delete ON, so that SQLite overwrites the deleted content and the
// pages it frees with zeros (FAST, the writer's setting, leaves freed pages
// as they were). That is not enough: the unused space of live pages keeps
// copies of rows that a page split or merge moved, and the WAL's earlier
// frames hold the rows as they were written. So VACUUM then writes the
// database anew, copying only live rows into blank pages, and a TRUNCATE
// checkpoint empties the WAL. del returns how many rows it deleted: none,
// and there is nothing to scrub. The error wraps ErrNotScrubbed if the rows
// were deleted but the scrub could not be done.
func (db *DB) secureDelete(ctx context.Context, del func(*sql.Conn) (int64, error)) error {
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var prev int
	if err := conn.QueryRowContext(ctx, `PRAGMA secure_delete`).Scan(&prev); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
		return err
	}
	defer conn.ExecContext(context.Background(), `PRAGMA secure_delete = `+map[int]string{0: "OFF", 1: "ON", 2: "FAST"}[prev])
	if n, err := del(conn); err != nil || n == 0 {
		return err
	}
	return scrub(ctx, conn)
}

// Scrub rebuilds the database file and empties its WAL, so that no copy of
// a row that is no longer live stays in either: the free pages a seal left
// hold the rows it moved into an archive, and once retention deletes that
// archive they must go too. The error wraps ErrNotScrubbed.
func (db *DB) Scrub(ctx context.Context) error {
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return scrub(ctx, conn)
}

// scrub is VACUUM (the live rows copied into blank pages) and a TRUNCATE
// checkpoint (the WAL's earlier frames gone).
func scrub(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("%w: rebuild the file: %v", ErrNotScrubbed, err)
	}
	var busy, log, moved int
	if err := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &log, &moved); err != nil {
		return fmt.Errorf("%w: truncate the WAL: %v", ErrNotScrubbed, err)
	}
	if busy != 0 {
		return fmt.Errorf("%w: a reader kept the WAL from being truncated", ErrNotScrubbed)
	}
	return nil
}

// onlyTime reports whether f selects by time alone: rejected lines, which
// have no session or agent, are cleared only by such filters.
func onlyTime(f *vibekit.Filter) bool {
	return len(f.SessionIDs) == 0 && len(f.EventTypes) == 0 && len(f.AgentTypes) == 0 && len(f.Modes) == 0 &&
		f.Contains == "" && len(f.Metadata) == 0 && len(f.Sources) == 0
}

// rejectsWhere renders f's time bounds over the rejects table.
func rejectsWhere(f *vibekit.Filter) (string, []any) {
	return where(&vibekit.Filter{From: f.From, To: f.To})
}

// liveTables are the tables that hold live rows: telemetry, and the sealing
// table while a seal is under way (its rows go back to telemetry if the
// seal is rolled back), aliased so that filters apply to it as they are.
func liveTables(ctx context.Context, q querier) ([]string, error) {
	tables := []string{"telemetry"}
	sealing, err := hasSealing(ctx, q)
	if sealing {
		tables = append(tables, SealingTable+` AS telemetry`)
	}
	return tables, err
}

// deleteLive deletes the live rows that f selects, in tx.
func deleteLive(ctx context.Context, tx *sql.Tx, f *vibekit.Filter) (int64, error) {
	tables, err := liveTables(ctx, tx)
	if err != nil {
		return 0, err
	}
	w, args := where(f)
	var deleted int64
	for _, t := range tables {
		res, err := tx.ExecContext(ctx, `DELETE FROM `+t+w, args...)
		if err != nil {
			return deleted, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return deleted, err
		}
		deleted += n
	}
	return deleted, nil
}

// CountClear counts the rows that Clear(f) would delete.
func (db *DB) CountClear(ctx context.Context, f vibekit.Filter) (Counts, error) {
	var c Counts
	// One read transaction: the tables as of one moment, a switch or not.
	err := db.snapshot(ctx, func(conn *sql.Conn) error {
		tables, err := liveTables(ctx, conn)
		if err != nil {
			return err
		}
		w, args := where(&f)
		for _, t := range tables {
			var n int64
			if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t+w, args...).Scan(&n); err != nil {
				return err
			}
			c.Events += n
		}
		if onlyTime(&f) {
			w, args := rejectsWhere(&f)
			return conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM vk_rejects`+w, args...).Scan(&c.Rejects)
		}
		return nil
	})
	if err != nil {
		return Counts{}, fmt.Errorf("count rows: %w", err)
	}
	return c, nil
}

// Clear deletes, in one transaction, the telemetry rows that f selects and,
// when f selects by time alone, the rejected lines of that time. It keeps
// the sources' read offsets, so followed files do not start over. No copy
// of a deleted row stays readable in the file or its WAL (secureDelete);
// if one may, the rows are deleted and the error wraps ErrNotScrubbed.
func (db *DB) Clear(ctx context.Context, f vibekit.Filter) (Counts, error) {
	var c Counts
	if db.readOnly {
		return c, errors.New("clear: database is open read-only")
	}
	if f.Limit != 0 || f.Offset != 0 {
		return c, errors.New("clear: a limit or offset does not apply")
	}
	err := db.secureDelete(ctx, func(conn *sql.Conn) (int64, error) {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return 0, err
		}
		defer tx.Rollback()
		if c.Events, err = deleteLive(ctx, tx, &f); err != nil {
			return 0, err
		}
		if onlyTime(&f) {
			w, args := rejectsWhere(&f)
			res, err := tx.ExecContext(ctx, `DELETE FROM vk_rejects`+w, args...)
			if err != nil {
				return 0, err
			}
			if c.Rejects, err = res.RowsAffected(); err != nil {
				return 0, err
			}
		}
		return c.Events + c.Rejects, tx.Commit()
	})
	switch {
	case errors.Is(err, ErrNotScrubbed):
		return c, fmt.Errorf("clear: %w", err) // the rows are deleted all the same
	case err != nil:
		return Counts{}, fmt.Errorf("clear: %w", err)
	}
	return c, nil
}
