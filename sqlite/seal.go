package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Errors of Switch that callers tell apart.
var (
	// ErrSealPending means another seal is recorded as under way.
	ErrSealPending = errors.New("another seal of this database is under way")
	// ErrNothingToSeal means the database holds no row that is not sealed already.
	ErrNothingToSeal = errors.New("nothing to seal")
	// ErrWALBusy means a reader kept the WAL from being copied into the
	// database file, so the file alone is not the database: try again later.
	ErrWALBusy = errors.New("a reader holds the WAL; the seal waits for it")
)

// SealingTable holds the rows of a seal under way: the switch renames the
// telemetry table to it and puts a fresh, empty telemetry table in its
// place; finishing the seal drops it, and rolling the seal back moves its
// rows back. Readers of the live database and its archives read it too
// while it exists, as its rows are in no archive yet.
const SealingTable = "vk_sealing"

// Contents sums up what a database holds, for sealing and for listing
// archives.
type Contents struct {
	Rows, MaxID          int64 // telemetry rows and their largest id
	Rejects, MaxRejectID int64
	MinTs, MaxTs         int64 // Unix ms of the oldest and newest row; 0 with no rows
}

// querier is what Contents needs of *sql.DB, *sql.Conn and *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Contents reads the database's Contents.
func (db *DB) Contents(ctx context.Context) (Contents, error) {
	c, err := contentsOf(ctx, db.db)
	if err != nil {
		return c, fmt.Errorf("read contents of %s: %w", db.Path, err)
	}
	return c, nil
}

func contentsOf(ctx context.Context, q querier) (Contents, error) {
	var c Contents
	var minTs, maxTs sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT count(*), coalesce(max(id), 0), min(timestamp), max(timestamp) FROM telemetry`).
		Scan(&c.Rows, &c.MaxID, &minTs, &maxTs)
	if err == nil {
		err = q.QueryRowContext(ctx, `SELECT count(*), coalesce(max(id), 0) FROM vk_rejects`).Scan(&c.Rejects, &c.MaxRejectID)
	}
	c.MinTs, c.MaxTs = minTs.Int64, maxTs.Int64
	return c, err
}

// Seal is one rotation of the database into an archive, as vk_seals
// records it.
type Seal struct {
	ID       int64
	Archive  string // file name in the archives directory (<db>.archives/)
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

// Pin is a read transaction, on a connection of its own, whose snapshot is
// all in the database file: the switch copied the rest of the WAL into the
// file while writers were held. Until the pin is closed no checkpoint
// writes to the file (a checkpoint copies no frame past the oldest
// reader's snapshot, and every frame up to this one's is in the file
// already), so the file's first Pages pages are the database as the pin
// sees it, byte for byte, while writers go on in the WAL.
type Pin struct {
	db       *sql.DB
	conn     *sql.Conn
	Contents       // what the pinned database holds
	Pages    int64 // its size in pages
	PageSize int64
	// Held is how long the switch held the write lock: how long writers
	// waited for it.
	Held time.Duration
}

// Close ends the read transaction: checkpoints go on.
func (p *Pin) Close() error {
	if p == nil || p.db == nil {
		return nil
	}
	if p.conn != nil {
		p.conn.ExecContext(context.Background(), `ROLLBACK`)
		p.conn.Close()
	}
	err := p.db.Close()
	p.db = nil
	return err
}

// Switch starts a seal. Holding the write lock, so that nothing commits
// meanwhile, it pins the database and copies the rest of the WAL into the
// file (see Pin); then, in the same write transaction, it renames the
// telemetry table to SealingTable, creates a fresh telemetry table with the
// same indexes and triggers whose ids go on counting, and records the seal
// pending, its archive named by name. Writers wait only for this: a few
// schema statements, whatever the size of the database. The pinned file is
// what the archive is made of: the caller compresses it and then closes
// the pin. It fails with ErrSealPending while another seal is pending,
// ErrNothingToSeal when there is nothing to seal, and ErrWALBusy when a
// reader keeps the WAL from the file.
func (db *DB) Switch(ctx context.Context, name func(id int64, c Contents) string) (Seal, *Pin, error) {
	s := Seal{State: SealPending, Started: db.now(), PID: int64(os.Getpid())}
	pin, err := db.switchTables(ctx, &s, name)
	if err != nil {
		pin.Close()
		if errors.Is(err, ErrSealPending) || errors.Is(err, ErrNothingToSeal) || errors.Is(err, ErrWALBusy) {
			return s, nil, err
		}
		return s, nil, fmt.Errorf("switch to a fresh table: %w", err)
	}
	return s, pin, nil
}

func (db *DB) switchTables(ctx context.Context, s *Seal, name func(int64, Contents) string) (*Pin, error) {
	if db.ckpt != nil {
		// This process's checkpoints wait: the switch runs its own.
		db.ckpt.mu.Lock()
		defer db.ckpt.mu.Unlock()
	}
	pdb := sql.OpenDB(connector(dsn(db.Path, BusyTimeout, ""), ""))
	pdb.SetMaxOpenConns(2)
	pin := &Pin{db: pdb}
	conn, err := pdb.Conn(ctx)
	if err != nil {
		return pin, err
	}
	pin.conn = conn
	ckpt, err := pdb.Conn(ctx)
	if err != nil {
		return pin, err
	}
	defer ckpt.Close()
	var pending int64
	if err := db.db.QueryRowContext(ctx, `SELECT count(*) FROM vk_seals WHERE state = 'pending'`).Scan(&pending); err != nil {
		return pin, err
	}
	if pending > 0 {
		return pin, ErrSealPending // and again below, under the lock
	}
	// Most of the WAL is copied into the file before writers are held; and
	// if a reader's snapshot keeps frames out of it, the seal waits without
	// holding them.
	if err := backfill(ctx, ckpt, time.Second); err != nil {
		return pin, err
	}

	// The switch is committed with an fsync of the WAL: the archive put in
	// place later must never outlive, after a power loss, the record of
	// its seal.
	if _, err := db.db.ExecContext(ctx, `PRAGMA synchronous = FULL`); err != nil {
		return pin, err
	}
	defer db.db.ExecContext(context.Background(), `PRAGMA synchronous = NORMAL`)
	tx, err := db.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: writers wait from here
	if err != nil {
		return pin, err
	}
	locked := time.Now()
	defer tx.Rollback()
	var sealedID, sealedReject int64
	if err := tx.QueryRow(`SELECT count(*) FILTER (WHERE state = 'pending'), coalesce(max(max_id), 0), coalesce(max(max_reject_id), 0) FROM vk_seals`).
		Scan(&pending, &sealedID, &sealedReject); err != nil {
		return pin, err
	}
	if pending > 0 {
		return pin, ErrSealPending
	}
	// The first read of the pin fixes its snapshot: the state this
	// transaction starts from. The pin is taken before the rest of the WAL
	// is copied, so that its snapshot ends in the WAL (unless nothing was
	// committed since the copy before): a checkpoint then stops at it at
	// once, rather than trying, after every commit until the pin is closed,
	// to copy frames it may not. Only what the switch needs is read with
	// writers held, each in O(log n); the rest of the pin's contents after.
	if _, err := conn.ExecContext(ctx, `BEGIN DEFERRED`); err != nil {
		return pin, err
	}
	var maxID, maxReject int64
	if err := conn.QueryRowContext(ctx, `SELECT coalesce((SELECT max(id) FROM telemetry), 0), coalesce((SELECT max(id) FROM vk_rejects), 0)`).
		Scan(&maxID, &maxReject); err != nil {
		return pin, err
	}
	if err := backfill(ctx, ckpt, 16*time.Millisecond); err != nil {
		return pin, err
	}
	if err := conn.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pin.Pages); err != nil {
		return pin, err
	}
	if err := conn.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&pin.PageSize); err != nil {
		return pin, err
	}
	s.Bytes = pin.Pages * pin.PageSize
	if maxID <= sealedID && maxReject <= sealedReject {
		return pin, ErrNothingToSeal
	}
	if err := moveTelemetry(tx); err != nil {
		return pin, err
	}
	// Recorded with no archive name until its contents are known: a crash
	// before that leaves a pending seal with no archive, rolled back.
	err = tx.QueryRow(`INSERT INTO vk_seals (archive, state, max_id, max_reject_id, rows, rejects, min_ts, max_ts, bytes, started, pid)
		VALUES ('', 'pending', ?, ?, 0, 0, NULL, NULL, ?, ?, ?) RETURNING id`,
		maxID, maxReject, s.Bytes, s.Started.UnixMilli(), s.PID).Scan(&s.ID)
	if err != nil {
		return pin, err
	}
	err = tx.Commit()
	pin.Held = time.Since(locked)
	if err != nil {
		return pin, err
	}
	c, err := contentsOf(ctx, conn)
	if err != nil {
		return pin, err
	}
	pin.Contents, s.Contents = c, c
	s.Archive = name(s.ID, c)
	// Fsynced too: the archive of that name is put in place later.
	if _, err := db.db.ExecContext(ctx, `UPDATE vk_seals SET archive = ?, rows = ?, rejects = ?, min_ts = ?, max_ts = ? WHERE id = ?`,
		s.Archive, c.Rows, c.Rejects, c.MinTs, c.MaxTs, s.ID); err != nil {
		return pin, err
	}
	// Writers' commits go back to synchronous=NORMAL at once (the deferred
	// reset is for the ways out before this).
	db.db.ExecContext(context.WithoutCancel(ctx), `PRAGMA synchronous = NORMAL`)
	return pin, nil
}

// backfill copies the WAL into the database file, on conn, which is in no
// transaction; with the write lock held, the file then holds the whole
// database, as the pin sees it. It fails with ErrWALBusy, at once, if a
// reader's snapshot keeps frames out of the file (that reader began before
// the latest commits: the seal is tried again once it is done), and after
// patience if another process's checkpoint goes on that long.
func backfill(ctx context.Context, conn *sql.Conn, patience time.Duration) error {
	deadline := time.Now().Add(patience)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		var busy, frames, copied int64
		err := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
		if err != nil {
			return err
		}
		switch {
		case frames < 0 && busy == 0:
			return errors.New("the database is not in WAL mode")
		case busy == 0 && frames == copied:
			return nil
		case busy == 0, time.Now().After(deadline):
			return ErrWALBusy
		}
		// Another connection is checkpointing (this one did not run: busy,
		// and -1 for both counts); it is done in a moment.
		time.Sleep(wait)
	}
}

// moveTelemetry renames the telemetry table to SealingTable and creates
// the table again, empty, from its own schema: its indexes and triggers
// (the guide's and any a user added) move to the fresh table, and its ids
// go on from the sealed ones. Views and triggers elsewhere that name the
// table keep naming it: legacy_alter_table leaves them as they are. A
// rename and some CREATEs: no row is touched, whatever the table holds.
func moveTelemetry(tx *sql.Tx) (err error) {
	var table string
	if err := tx.QueryRow(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'telemetry'`).Scan(&table); err != nil {
		return fmt.Errorf("read the telemetry table's schema: %w", err)
	}
	type object struct{ kind, name, sql string }
	var objects []object
	rows, err := tx.Query(`SELECT type, name, sql FROM sqlite_master
		WHERE tbl_name = 'telemetry' AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY rowid`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var o object
		if err := rows.Scan(&o.kind, &o.name, &o.sql); err != nil {
			rows.Close()
			return err
		}
		objects = append(objects, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if _, err := tx.Exec(`PRAGMA legacy_alter_table = ON`); err != nil {
		return err
	}
	defer func() {
		if _, rerr := tx.Exec(`PRAGMA legacy_alter_table = OFF`); err == nil {
			err = rerr
		}
	}()
	for _, o := range objects {
		if _, err := tx.Exec(`DROP ` + strings.ToUpper(o.kind) + ` ` + quoteIdent(o.name)); err != nil {
			return fmt.Errorf("move %s %s: %w", o.kind, o.name, err)
		}
	}
	stmts := []string{
		`ALTER TABLE telemetry RENAME TO ` + SealingTable,
		table,
	}
	for _, o := range objects {
		stmts = append(stmts, o.sql)
	}
	stmts = append(stmts, `INSERT INTO sqlite_sequence (name, seq) SELECT 'telemetry', seq FROM sqlite_sequence WHERE name = '`+SealingTable+`'`)
	for _, q := range stmts {
		if _, err := tx.Exec(q); err != nil {
			return fmt.Errorf("%s: %w", strings.SplitN(q, "(", 2)[0], err)
		}
	}
	return nil
}

// Sealing reports whether a seal under way has moved rows into the sealing
// table.
func (db *DB) Sealing(ctx context.Context) (bool, error) {
	ok, err := hasSealing(ctx, db.db)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", db.Path, err)
	}
	return ok, nil
}

// quoteIdent quotes a name for SQL.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// hasSealing reports whether the sealing table exists.
func hasSealing(ctx context.Context, q querier) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '`+SealingTable+`'`).Scan(&n)
	return n > 0, err
}

// FinishSeal ends a seal whose archive is in place and verified: in one
// transaction it drops the sealing table, deletes the spans and rejects the
// archive holds, and marks the seal done. Dropping a table frees its pages
// without visiting its rows. The source offsets stay, so followed files go
// on where they were. It returns how long it held the write lock.
func (db *DB) FinishSeal(ctx context.Context, id int64) (time.Duration, error) {
	held, err := db.finishSeal(ctx, id)
	if err != nil {
		return held, fmt.Errorf("finish seal %d: %w", id, err)
	}
	return held, nil
}

func (db *DB) finishSeal(ctx context.Context, id int64) (time.Duration, error) {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	locked := time.Now()
	defer tx.Rollback()
	var maxID, maxReject int64
	err = tx.QueryRow(`SELECT max_id, max_reject_id FROM vk_seals WHERE id = ? AND state = 'pending'`, id).Scan(&maxID, &maxReject)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("seal %d is not pending", id)
	}
	if err != nil {
		return 0, err
	}
	ok, err := hasSealing(ctx, tx)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("seal %d has no %s table", id, SealingTable)
	}
	for _, q := range []struct {
		stmt string
		args []any
	}{
		{`DROP TABLE ` + SealingTable, nil},
		{`DELETE FROM vk_spans WHERE last_id <= ?`, []any{maxID}},
		{`DELETE FROM vk_rejects WHERE id <= ?`, []any{maxReject}},
		{`UPDATE vk_seals SET state = 'done', finished = ? WHERE id = ?`, []any{db.now().UnixMilli(), id}},
	} {
		if _, err := tx.Exec(q.stmt, q.args...); err != nil {
			return 0, err
		}
	}
	err = tx.Commit()
	return time.Since(locked), err
}

// AbortSeal rolls back a pending seal whose archive was not made: the rows
// of the sealing table go back to the telemetry table, ids and all, and the
// seal is forgotten. (A pending seal without a sealing table never moved
// its rows: they are live already.)
func (db *DB) AbortSeal(ctx context.Context, id int64) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		ok, err := hasSealing(ctx, tx)
		if err != nil {
			return err
		}
		if ok {
			for _, q := range []string{
				// The same columns, in the same order: the table was made
				// from telemetry's own schema, columns a user added included.
				`INSERT INTO telemetry SELECT * FROM ` + SealingTable + ` ORDER BY id`,
				`DROP TABLE ` + SealingTable,
			} {
				if _, err := tx.Exec(q); err != nil {
					return err
				}
			}
		}
		_, err = tx.Exec(`DELETE FROM vk_seals WHERE id = ? AND state = 'pending'`, id)
		return err
	})
	if err != nil {
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
