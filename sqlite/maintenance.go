package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// UsedBytes is the size of the data in the database: its pages less the free
// ones, as of the last commit, whether the pages are in the database file or
// still in its WAL. Rotation compares it with maxSizeMB. Free pages are left
// out because a seal deletes rows without shrinking the file: new rows reuse
// those pages.
func (db *DB) UsedBytes(ctx context.Context) (int64, error) {
	var pages, free, size int64
	err := db.withConn(ctx, func(c *sql.Conn) error {
		if err := c.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
			return err
		}
		if err := c.QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&free); err != nil {
			return err
		}
		return c.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&size)
	})
	if err != nil {
		return 0, fmt.Errorf("database size: %w", err)
	}
	return (pages - free) * size, nil
}

func (db *DB) withConn(ctx context.Context, fn func(*sql.Conn) error) error {
	c, err := db.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

// Reindex rebuilds every index (the guide's reindex).
func (db *DB) Reindex(ctx context.Context) error {
	if db.readOnly {
		return errors.New("reindex: database is open read-only")
	}
	if _, err := db.db.ExecContext(ctx, `REINDEX`); err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	return nil
}

// IntegrityCheck runs PRAGMA integrity_check and returns the problems it
// found; none means the database is sound.
func (db *DB) IntegrityCheck(ctx context.Context) ([]string, error) {
	rows, err := db.db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return nil, fmt.Errorf("integrity check: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("integrity check: %w", err)
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("integrity check: %w", err)
	}
	return problems, nil
}

// pruneChunk is how many rows one prune transaction deletes: a long prune
// lets the pipe's commits in between instead of holding the lock throughout.
const pruneChunk = 5000

// PruneResult is what one retention pass deleted.
type PruneResult struct {
	Time        time.Time // when the pass ran
	Before      time.Time // rows older than this were deleted
	Rows        int64     // telemetry rows deleted from the live database
	Rejects     int64
	Archives    []string // archives deleted (their newest row was older)
	ArchiveRows int64    // the rows those archives held
}

// Prune deletes the telemetry rows and rejects older than before, a chunk at
// a time, and returns how many.
func (db *DB) Prune(ctx context.Context, before time.Time) (rows, rejects int64, err error) {
	cut := before.UnixMilli()
	// Deleted means unreadable: see secureDelete.
	err = db.secureDelete(ctx, func(conn *sql.Conn) (int64, error) {
		for _, t := range []struct {
			n    *int64
			stmt string
		}{
			{&rows, `DELETE FROM telemetry WHERE id IN (SELECT id FROM telemetry WHERE timestamp < ? LIMIT ?)`},
			{&rejects, `DELETE FROM vk_rejects WHERE id IN (SELECT id FROM vk_rejects WHERE timestamp < ? LIMIT ?)`},
		} {
			for {
				res, err := conn.ExecContext(ctx, t.stmt, cut, pruneChunk)
				if err != nil {
					return rows + rejects, err
				}
				n, _ := res.RowsAffected()
				*t.n += n
				if n < pruneChunk {
					break
				}
			}
		}
		return rows + rejects, nil
	})
	scrubErr := err
	if err != nil && !errors.Is(err, ErrNotScrubbed) {
		return rows, rejects, fmt.Errorf("prune rows older than %s: %w", before.UTC().Format(time.RFC3339), err)
	}
	// Spans whose rows are all gone say nothing any more; but while a seal
	// is under way, rows of theirs may be in the sealing table, and go back
	// if the seal is rolled back: those spans wait for the next pass.
	if rows > 0 {
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			sealing, err := hasSealing(ctx, tx)
			if err != nil || sealing {
				return err
			}
			_, err = tx.ExecContext(ctx, `DELETE FROM vk_spans
				WHERE NOT EXISTS (SELECT 1 FROM telemetry WHERE id BETWEEN vk_spans.first_id AND vk_spans.last_id)`)
			return err
		})
		if err != nil {
			return rows, rejects, fmt.Errorf("prune spans: %w", err)
		}
	}
	if scrubErr != nil {
		return rows, rejects, fmt.Errorf("prune: %w", scrubErr)
	}
	return rows, rejects, nil
}

// RecordPrune keeps what a retention pass deleted, for stats.
func (db *DB) RecordPrune(ctx context.Context, p PruneResult) error {
	if p.Rows == 0 && p.Rejects == 0 && len(p.Archives) == 0 {
		return nil
	}
	_, err := db.db.ExecContext(ctx, `INSERT INTO vk_prunes (time, before, rows, rejects, archives, archive_rows, names) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		p.Time.UnixMilli(), p.Before.UnixMilli(), p.Rows, p.Rejects, int64(len(p.Archives)), p.ArchiveRows, nullString(strings.Join(p.Archives, "\n")))
	if err != nil {
		return fmt.Errorf("record prune: %w", err)
	}
	return nil
}

// PruneTotals sums what retention has deleted from this database and its
// archives, for `stats`.
type PruneTotals = vibekit.PruneTotals

// Pruned returns the totals of the vk_prunes log.
func (db *DB) Pruned(ctx context.Context) (PruneTotals, error) {
	var t PruneTotals
	err := db.withConn(ctx, func(c *sql.Conn) error {
		var err error
		t, err = pruned(ctx, c)
		return err
	})
	return t, err
}

// pruned reads the vk_prunes log on c. A database without the log (written
// by another tool, or by a version before rotation) has pruned nothing.
func pruned(ctx context.Context, c *sql.Conn) (PruneTotals, error) {
	var (
		t            PruneTotals
		n            int
		last, before sql.NullInt64
	)
	err := c.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'vk_prunes'`).Scan(&n)
	if err == nil && n > 0 {
		err = c.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(rows), 0), coalesce(sum(rejects), 0), coalesce(sum(archives), 0),
		coalesce(sum(archive_rows), 0), max(time), (SELECT before FROM vk_prunes ORDER BY id DESC LIMIT 1) FROM vk_prunes`).
			Scan(&t.Passes, &t.Rows, &t.Rejects, &t.Archives, &t.ArchiveRows, &last, &before)
	}
	if err != nil {
		return t, fmt.Errorf("read prune log: %w", err)
	}
	t.Last, t.LastBefore = last.Int64, before.Int64
	return t, nil
}

// OpenExisting opens an existing database for writing, for maintenance
// (vacuum, reindex): unlike Open it does not create the file, and it leaves
// the query indexes as they are. It waits for another process's lock as
// OpenContext does, with opts (whose EnableIndexes it ignores).
func OpenExisting(ctx context.Context, path string, opts Options) (*DB, error) {
	ro, err := OpenReadOnly(path)
	if err != nil {
		return nil, err
	}
	var n int
	err = ro.db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?`, indexes[0].name).Scan(&n)
	ro.Close()
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	opts.EnableIndexes = n > 0
	return OpenContext(ctx, path, opts)
}
