package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// Errors of BeginSeal that callers tell apart.
var (
	// ErrSealPending means another seal is recorded as under way.
	ErrSealPending = errors.New("another seal of this database is under way")
	// ErrNothingToSeal means the snapshot holds no row that is not sealed already.
	ErrNothingToSeal = errors.New("nothing to seal")
)

// Snapshot copies a consistent image of the database at src into a new file
// dest (0600), with SQLite's backup API in a single step: that is one read
// transaction, so writers, in this process or others, go on meanwhile and
// none of their later commits is in the copy. The copy is left in rollback
// journal mode, so that it can be opened read-only with no -wal or -shm.
func Snapshot(ctx context.Context, src, dest string) error {
	f, err := os.OpenFile(dest, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	f.Close()
	drv := &sqlite3.SQLiteDriver{}
	sc, err := drv.Open(dsn(src, BusyTimeout, "mode=ro"))
	if err != nil {
		return fmt.Errorf("snapshot: open %s: %w", src, err)
	}
	defer sc.Close()
	// The copy is a temp file that a crash leaves for Recover to remove,
	// and the archive made from it is fsynced: writing it needs no fsync.
	dc, err := drv.Open(dsn(dest, BusyTimeout, "_synchronous=OFF"))
	if err != nil {
		return fmt.Errorf("snapshot: open %s: %w", dest, err)
	}
	defer dc.Close()
	srcConn, destConn := sc.(*sqlite3.SQLiteConn), dc.(*sqlite3.SQLiteConn)
	for backoff := time.Millisecond; ; backoff = min(2*backoff, 100*time.Millisecond) {
		bk, err := destConn.Backup("main", srcConn, "main")
		if err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		done, err := bk.Step(-1)
		if ferr := bk.Finish(); err == nil && done {
			err = ferr
		}
		if err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		if done {
			break
		}
		// The source was locked (SQLITE_BUSY): try again.
		select {
		case <-ctx.Done():
			return fmt.Errorf("snapshot: %w", ctx.Err())
		case <-time.After(backoff):
		}
	}
	if _, err := destConn.Exec(`PRAGMA journal_mode = DELETE`, nil); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// Contents sums up what a database holds, for sealing and for listing
// archives.
type Contents struct {
	Rows, MaxID          int64 // telemetry rows and their largest id
	Rejects, MaxRejectID int64
	MinTs, MaxTs         int64 // Unix ms of the oldest and newest row; 0 with no rows
}

// Contents reads the database's Contents.
func (db *DB) Contents(ctx context.Context) (Contents, error) {
	var c Contents
	var minTs, maxTs sql.NullInt64
	err := db.db.QueryRowContext(ctx, `SELECT count(*), coalesce(max(id), 0), min(timestamp), max(timestamp) FROM telemetry`).
		Scan(&c.Rows, &c.MaxID, &minTs, &maxTs)
	if err == nil {
		err = db.db.QueryRowContext(ctx, `SELECT count(*), coalesce(max(id), 0) FROM vk_rejects`).Scan(&c.Rejects, &c.MaxRejectID)
	}
	if err != nil {
		return c, fmt.Errorf("read contents of %s: %w", db.Path, err)
	}
	c.MinTs, c.MaxTs = minTs.Int64, maxTs.Int64
	return c, nil
}

// Seal is one rotation of the database into an archive, as vk_seals
// records it.
type Seal struct {
	ID       int64
	Archive  string // file name in archives/
	State    string // pending, done
	Contents        // what the archive holds
	Bytes    int64  // the uncompressed database
	Started  time.Time
	Finished time.Time // zero while pending
	PID      int64
}

// Seal states.
const (
	SealPending = "pending"
	SealDone    = "done"
)

// BeginSeal records a seal of the snapshot c as pending, before its archive
// is put in place. name gives the archive's file name from the seal's id.
// It fails with ErrSealPending while another seal is pending, and with
// ErrNothingToSeal when an earlier seal already holds every row of c.
func (db *DB) BeginSeal(ctx context.Context, c Contents, bytes int64, name func(id int64) string) (Seal, error) {
	s := Seal{State: SealPending, Contents: c, Bytes: bytes, Started: db.now(), PID: int64(os.Getpid())}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var pending, maxID, maxReject int64
		if err := tx.QueryRow(`SELECT count(*) FILTER (WHERE state = 'pending'), coalesce(max(max_id), 0), coalesce(max(max_reject_id), 0) FROM vk_seals`).
			Scan(&pending, &maxID, &maxReject); err != nil {
			return err
		}
		if pending > 0 {
			return ErrSealPending
		}
		if c.MaxID <= maxID && c.MaxRejectID <= maxReject {
			return ErrNothingToSeal
		}
		err := tx.QueryRow(`INSERT INTO vk_seals (archive, state, max_id, max_reject_id, rows, rejects, min_ts, max_ts, bytes, started, pid)
			VALUES ('', 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			c.MaxID, c.MaxRejectID, c.Rows, c.Rejects, c.MinTs, c.MaxTs, bytes, s.Started.UnixMilli(), s.PID).Scan(&s.ID)
		if err != nil {
			return err
		}
		s.Archive = name(s.ID)
		_, err = tx.Exec(`UPDATE vk_seals SET archive = ? WHERE id = ?`, s.Archive, s.ID)
		return err
	})
	if err != nil {
		return s, fmt.Errorf("begin seal: %w", err)
	}
	return s, nil
}

// FinishSeal is the switch: in one transaction it deletes the rows the
// seal's archive holds (telemetry rows, their spans, rejects) and marks the
// seal done. The source offsets stay, so followed files go on where they were.
func (db *DB) FinishSeal(ctx context.Context, id int64) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var maxID, maxReject, rows int64
		err := tx.QueryRow(`SELECT max_id, max_reject_id, rows FROM vk_seals WHERE id = ? AND state = 'pending'`, id).Scan(&maxID, &maxReject, &rows)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("seal %d is not pending", id)
		}
		if err != nil {
			return err
		}
		if err := deleteSealed(tx, maxID, rows); err != nil {
			return err
		}
		for _, q := range []struct {
			stmt string
			arg  int64
		}{
			{`DELETE FROM vk_spans WHERE last_id <= ?`, maxID},
			{`DELETE FROM vk_rejects WHERE id <= ?`, maxReject},
		} {
			if _, err := tx.Exec(q.stmt, q.arg); err != nil {
				return err
			}
		}
		_, err = tx.Exec(`UPDATE vk_seals SET state = 'done', finished = ? WHERE id = ?`, db.now().UnixMilli(), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("switch to the fresh database (seal %d): %w", id, err)
	}
	return nil
}

// keepAtMost is the share of rows newer than a seal, against the sealed
// ones, up to which the switch empties the table and puts them back rather
// than deleting the sealed rows one by one.
const keepAtMost = 4 // 1/4

// deleteSealed deletes the telemetry rows with ids up to maxID; sealed is
// how many the seal holds. Deleting a row costs its table and index entries,
// about 2 µs each with the four indexes: 0.2 s per 100 MB, which writers
// wait for. Emptying the whole table is SQLite's truncate, which frees the
// pages without visiting the rows (30 ms per 100 MB), so when few rows are
// newer than the seal (rows arriving at an agent's pace, not a bulk load)
// they are copied aside, the table emptied, and the copies put back, ids
// and all; sqlite_sequence keeps counting.
func deleteSealed(tx *sql.Tx, maxID, sealed int64) error {
	var kept int64
	if err := tx.QueryRow(`SELECT count(*) FROM telemetry WHERE id > ?`, maxID).Scan(&kept); err != nil {
		return err
	}
	if kept*keepAtMost > sealed {
		_, err := tx.Exec(`DELETE FROM telemetry WHERE id <= ?`, maxID)
		return err
	}
	for _, q := range []string{
		`DROP TABLE IF EXISTS temp.vk_kept`,
		`CREATE TEMP TABLE vk_kept AS SELECT ` + recordColumns + ` FROM telemetry WHERE id > ?`,
		`DELETE FROM telemetry`,
		`INSERT INTO telemetry (` + recordColumns + `) SELECT ` + recordColumns + ` FROM temp.vk_kept ORDER BY id`,
		`DROP TABLE temp.vk_kept`,
	} {
		var args []any
		if strings.Contains(q, "?") {
			args = append(args, maxID)
		}
		if _, err := tx.Exec(q, args...); err != nil {
			return err
		}
	}
	return nil
}

// AbortSeal forgets a pending seal whose archive was not made: every row it
// would have sealed is still live.
func (db *DB) AbortSeal(ctx context.Context, id int64) error {
	if _, err := db.db.ExecContext(ctx, `DELETE FROM vk_seals WHERE id = ? AND state = 'pending'`, id); err != nil {
		return fmt.Errorf("roll back seal %d: %w", id, err)
	}
	return nil
}

// Seals returns the recorded seals, oldest first.
func (db *DB) Seals(ctx context.Context) ([]Seal, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT id, archive, state, max_id, max_reject_id, rows, rejects, coalesce(min_ts, 0), coalesce(max_ts, 0),
		bytes, started, coalesce(finished, 0), coalesce(pid, 0) FROM vk_seals ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read seals: %w", err)
	}
	defer rows.Close()
	var out []Seal
	for rows.Next() {
		var s Seal
		var started, finished int64
		if err := rows.Scan(&s.ID, &s.Archive, &s.State, &s.MaxID, &s.MaxRejectID, &s.Rows, &s.Rejects, &s.MinTs, &s.MaxTs,
			&s.Bytes, &started, &finished, &s.PID); err != nil {
			return nil, fmt.Errorf("read seals: %w", err)
		}
		s.Started = time.UnixMilli(started)
		if finished != 0 {
			s.Finished = time.UnixMilli(finished)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
