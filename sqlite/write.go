package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// Written is what a commit kept of its batch.
type Written struct {
	Took    time.Duration
	Rows    int64 // telemetry rows stored
	Rejects int64 // rejects stored, refused rows included
	// Refused counts the rows the database refused (a constraint of its
	// schema, a trigger that fails): each is stored as a reject instead,
	// with the database's message. Lost counts the rows and rejects that
	// the database refused to store even as rejects.
	Refused, Lost int64
	// Refusal is the database's message for the first refused row.
	Refusal string
}

// Commit writes a batch in one transaction: its rows, the sources they came
// from, its rejects, its sources' checkpoints and this run's counters. Either
// all of it is kept or none; it returns how long the transaction took. See
// Write for rows the database refuses.
func (db *DB) Commit(ctx context.Context, b *vibekit.Batch) (time.Duration, error) {
	w, err := db.Write(ctx, b)
	return w.Took, err
}

// Write commits a batch as Commit does, and says what it kept. When the
// database refuses a row for good (a permanent error, see IsPermanent), the
// batch is written again row by row in one transaction: rows that store
// are stored, each refused row becomes a reject with the database's
// message, and the checkpoints commit with them. A transient error (a lock,
// a full disk) fails the whole commit, for the caller to retry.
//
// It works at the driver level, below database/sql: an insert then costs one
// crossing into C (bind and step fused), which doubles ingest speed.
func (db *DB) Write(ctx context.Context, b *vibekit.Batch) (Written, error) {
	if db.readOnly {
		return Written{}, errors.New("commit: database is open read-only")
	}
	start := time.Now()
	w, err := db.writeTx(ctx, b, nil, start)
	if err != nil && (IsPermanent(err) || errors.Is(err, errNotAllStored)) {
		ref := &refusals{rows: map[int]string{}, lost: map[int]bool{}, lostRejects: map[int]bool{}}
		// Each try that the database rolls back whole (a trigger's
		// RAISE(ROLLBACK)) learns one more refusal, so this ends.
		for range b.Len() + 2 {
			if w, err = db.writeTx(ctx, b, ref, start); !errors.Is(err, errRolledBack) {
				break
			}
		}
	}
	if err != nil {
		return Written{}, fmt.Errorf("commit %d rows: %w", b.Len(), err)
	}
	db.pendingLost = 0
	if db.ckpt != nil {
		db.ckpt.committed(b.Bytes)
	}
	w.Took = time.Since(start)
	return w, nil
}

// SetCommitWait makes each commit wait at most d (rounded to ms) for another
// writer's lock before it fails with SQLITE_BUSY, instead of the busy
// timeout: for a caller that retries and reports stalls as they happen.
func (db *DB) SetCommitWait(d time.Duration) { db.commitWait = d }

// CountNotStored adds n rows that were given up on (a batch that could not
// be committed) to this run's counters, with its next commit.
func (db *DB) CountNotStored(n int64) { db.pendingLost += n }

// refusals are what the database refused of a batch, found row by row.
type refusals struct {
	rows        map[int]string // record index -> the database's message
	lost        map[int]bool   // refused records whose reject was refused too
	lostRejects map[int]bool   // rejects of the batch the database refused
}

// errNotAllStored means that the rows of a batch written at once are not
// the ids they should have: a trigger kept one out or added rows between.
var errNotAllStored = errors.New("the database did not store every row as written")

// errRolledBack means that a refused statement rolled back the whole
// transaction, which is then tried again.
var errRolledBack = errors.New("the database rolled the transaction back")

// writeTx is one try at committing b. With ref nil, any error fails it;
// with ref, each row is written under a savepoint and what the database
// refuses is recorded in ref and kept out.
func (db *DB) writeTx(ctx context.Context, b *vibekit.Batch, ref *refusals, start time.Time) (Written, error) {
	var w Written
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return w, err
	}
	defer conn.Close()
	newSources := map[string]int64{}
	var runID int64
	err = conn.Raw(func(dc any) error {
		tx := &rawTx{db: db, c: dc.(*sqlite3.SQLiteConn), newSources: newSources, ref: ref}
		if db.commitWait > 0 {
			// This commit waits less for the lock than other statements
			// do, so that the caller sees a stall early and reports it.
			if err := tx.exec(`PRAGMA busy_timeout = ` + strconv.Itoa(int(db.commitWait/time.Millisecond))); err != nil {
				return err
			}
			defer tx.exec(`PRAGMA busy_timeout = ` + strconv.Itoa(int(db.busy/time.Millisecond)))
		}
		if err := tx.exec(`BEGIN IMMEDIATE`); err != nil {
			return err
		}
		done := false
		defer func() {
			if !done && !tx.c.AutoCommit() {
				tx.exec(`ROLLBACK`)
			}
		}()
		// Sources first: the spans of the records refer to them.
		cpIDs := make([]int64, len(b.Checkpoints))
		for i := range b.Checkpoints {
			c := &b.Checkpoints[i]
			id, err := tx.sourceID(c.SourceKey(), c.Source, c.Kind)
			if err != nil {
				return err
			}
			cpIDs[i] = id
		}
		if err := tx.insertRecords(b, &w); err != nil {
			return err
		}
		if err := tx.insertRejects(b, &w); err != nil {
			return err
		}
		for i, c := range b.Checkpoints {
			if err := tx.exec(`UPDATE vk_sources SET name = ?, kind = ?, dev = ?, ino = ?, fingerprint = ?, offset = ?, line = ?, size = ?, birth = ?, gone = ?, updated = ? WHERE id = ?`,
				c.Source, c.Kind, int64(c.Dev), int64(c.Ino), c.Fingerprint, c.Offset, c.Line, c.Size, nullInt(c.Birth), c.Gone, db.now().UnixMilli(), cpIDs[i]); err != nil {
				return fmt.Errorf("checkpoint %s: %w", c.Source, err)
			}
		}
		for _, c := range b.Checkpoints {
			if c.Release {
				if err := tx.exec(`DELETE FROM vk_claims WHERE file = ? AND owner = ?`, claimFile(c.Dev, c.Ino), db.claimer.id); err != nil {
					return fmt.Errorf("release claim of %s: %w", c.Source, err)
				}
			}
		}
		if err := tx.renewClaims(); err != nil {
			return err
		}
		if err := tx.insertWarnings(b.Warnings); err != nil {
			return err
		}
		var err error
		if runID, err = tx.countRun(b, &w, time.Since(start)); err != nil {
			return err
		}
		if err := tx.exec(`COMMIT`); err != nil {
			return err
		}
		done = true
		return nil
	})
	if err != nil {
		return Written{}, err
	}
	for key, id := range newSources {
		db.sourceIDs[key] = id
	}
	db.runID = runID
	return w, nil
}

// maxRefusedRaw bounds the JSON of a refused row kept in its reject.
const maxRefusedRaw = 64 << 10

// refusedReject is the reject that stands for record i of b, which the
// database refused with msg: its source and position, and the record as
// JSON.
func refusedReject(b *vibekit.Batch, i int, msg string, now int64) vibekit.Reject {
	r := vibekit.Reject{Reason: "the database refused the row: " + msg, Time: now}
	if i < len(b.RecordSources) && b.RecordSources[i] != "" {
		key := b.RecordSources[i]
		r.Source = key
		for j := range b.Checkpoints {
			if b.Checkpoints[j].SourceKey() == key {
				r.Source = b.Checkpoints[j].Source
				break
			}
		}
	}
	if i < len(b.RecordLines) {
		p := b.RecordLines[i]
		r.Line, r.Offset, r.Length = p.Line, p.Offset, p.Length
	}
	// The row has no id: it was never stored.
	rec := b.Records[i]
	rec.ID = 0
	raw := vibekit.AppendJSON(nil, &rec)
	raw = append([]byte{'{'}, raw[len(`{"id":0,`):]...)
	if len(raw) > maxRefusedRaw {
		raw = raw[:maxRefusedRaw] // a rune cut in two becomes U+FFFD
	}
	r.Raw = vibekit.ValidUTF8(raw)
	return r
}

// rawTx is one write transaction on the driver connection.
type rawTx struct {
	db         *DB
	c          *sqlite3.SQLiteConn
	newSources map[string]int64
	args       []driver.NamedValue
	ref        *refusals // nil: any error fails the transaction
}

func (tx *rawTx) named(args []any) []driver.NamedValue {
	tx.args = tx.args[:0]
	for i, a := range args {
		tx.args = append(tx.args, driver.NamedValue{Ordinal: i + 1, Value: a})
	}
	return tx.args
}

func (tx *rawTx) exec(q string, args ...any) error {
	_, err := tx.c.ExecContext(context.Background(), q, tx.named(args))
	return err
}

// queryInt runs q and reads one integer from its first row.
func (tx *rawTx) queryInt(q string, args ...any) (int64, error) {
	rows, err := tx.c.QueryContext(context.Background(), q, tx.named(args))
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	if err := rows.Next(dest); err != nil {
		return 0, err
	}
	n, ok := dest[0].(int64)
	if !ok {
		return 0, fmt.Errorf("want an integer, got %T", dest[0])
	}
	return n, nil
}

// sourceID returns the vk_sources id of the source with key, registering it
// under name and kind if it is new.
func (tx *rawTx) sourceID(key, name, kind string) (int64, error) {
	if id, ok := tx.db.sourceIDs[key]; ok {
		return id, nil
	}
	if id, ok := tx.newSources[key]; ok {
		return id, nil
	}
	id, err := tx.queryInt(`INSERT INTO vk_sources (key, name, kind, updated) VALUES (?, ?, ?, ?)
		ON CONFLICT(key) DO UPDATE SET key = excluded.key RETURNING id`, key, name, kind, tx.db.now().UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("register source %s: %w", name, err)
	}
	tx.newSources[key] = id
	return id, nil
}

// insertStmt returns the prepared insert of this connection, preparing it on
// first use (and again if the pool replaced the connection).
func (tx *rawTx) insertStmt() (driver.Stmt, error) {
	if tx.db.insertConn == tx.c && tx.db.insert != nil {
		return tx.db.insert, nil
	}
	if tx.db.insert != nil {
		tx.db.insert.Close()
		tx.db.insert = nil
	}
	st, err := tx.c.Prepare(`INSERT INTO telemetry (sessionId, eventType, agentType, mode, prompt, streamData, sandboxId, repoUrl, metadata, timestamp) VALUES (?,?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		return nil, err
	}
	tx.db.insert, tx.db.insertConn = st, tx.c
	return st, nil
}

func (tx *rawTx) insertRecords(b *vibekit.Batch, w *Written) error {
	if len(b.Records) == 0 {
		return nil
	}
	st, err := tx.insertStmt()
	if err != nil && tx.ref != nil && IsPermanent(err) {
		// The insert itself does not compile (a trigger calls a module
		// this program lacks): the database refuses every row.
		for i := range b.Records {
			tx.ref.rows[i] = sqliteMessage(err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("prepare insert: %w", err)
	}
	query := st.(driver.StmtQueryContext)
	var args [10]driver.NamedValue
	for i := range args {
		args[i].Ordinal = i + 1
	}
	insert := func(r *vibekit.Record) error {
		args[0].Value = r.SessionID
		args[1].Value = string(r.EventType)
		args[2].Value = r.AgentType
		// The original schema has mode and prompt NOT NULL: '' fits it,
		// and readers show it as null, as they do NULL.
		args[3].Value = r.Mode
		args[4].Value = r.Prompt
		args[5].Value = nullString(r.StreamData)
		args[6].Value = nullString(r.SandboxID)
		args[7].Value = nullString(r.RepoURL)
		args[8].Value = nil
		if len(r.Metadata) > 0 {
			args[8].Value = string(r.Metadata)
		}
		args[9].Value = r.Timestamp
		// Query, not Exec: go-sqlite3 binds and steps in one call into C.
		rows, err := query.QueryContext(context.Background(), args[:])
		if err != nil {
			return err
		}
		return rows.Close()
	}
	if tx.ref == nil {
		var firstID int64
		for i := range b.Records {
			if err := insert(&b.Records[i]); err != nil {
				return fmt.Errorf("insert record: %w", err)
			}
			if i == 0 {
				if firstID, err = tx.queryInt(`SELECT last_insert_rowid()`); err != nil {
					return fmt.Errorf("insert record: %w", err)
				}
			}
		}
		// A trigger may keep a row out without an error (RAISE(IGNORE)), or
		// insert rows of its own in between: then the rows are not firstID,
		// firstID+1, ... and the batch is written again row by row.
		n, err := tx.queryInt(`SELECT count(*) FROM telemetry WHERE id BETWEEN ? AND ?`, firstID, firstID+int64(len(b.Records))-1)
		if err != nil {
			return fmt.Errorf("insert record: %w", err)
		}
		if n != int64(len(b.Records)) {
			return errNotAllStored
		}
		if last, err := tx.queryInt(`SELECT last_insert_rowid()`); err != nil || last != firstID+int64(len(b.Records))-1 {
			if err != nil {
				return fmt.Errorf("insert record: %w", err)
			}
			return errNotAllStored
		}
		w.Rows = int64(len(b.Records))
		// This transaction holds the write lock and AUTOINCREMENT counts up by
		// one, so the batch's rows have the ids firstID, firstID+1, ...
		return tx.insertSpans(b, func(i int) int64 { return firstID + int64(i) })
	}
	ids := make([]int64, len(b.Records))
	for i := range b.Records {
		if _, refused := tx.ref.rows[i]; refused {
			continue
		}
		err := tx.savepoint(func() error { return insert(&b.Records[i]) })
		if err == nil {
			stored, err := tx.queryInt(`SELECT changes()`)
			if err != nil {
				return fmt.Errorf("insert record: %w", err)
			}
			if stored == 0 {
				tx.ref.rows[i] = "a trigger of the database kept the row out (RAISE(IGNORE))"
				continue
			}
			if ids[i], err = tx.queryInt(`SELECT last_insert_rowid()`); err != nil {
				return fmt.Errorf("insert record: %w", err)
			}
			w.Rows++
			continue
		}
		if !IsPermanent(err) {
			return fmt.Errorf("insert record: %w", err)
		}
		tx.ref.rows[i] = sqliteMessage(err)
		if tx.c.AutoCommit() {
			return errRolledBack
		}
	}
	return tx.insertSpans(b, func(i int) int64 { return ids[i] })
}

// savepoint runs fn under a savepoint, which it rolls back if fn fails, so
// that a refused statement leaves nothing behind (a trigger's earlier
// effects included). If the failure ended the transaction, there is
// nothing left to roll back.
func (tx *rawTx) savepoint(fn func() error) error {
	if err := tx.exec(`SAVEPOINT vk_row`); err != nil {
		return err
	}
	if err := fn(); err != nil {
		if !tx.c.AutoCommit() {
			tx.exec(`ROLLBACK TO vk_row`)
			tx.exec(`RELEASE vk_row`)
		}
		return err
	}
	return tx.exec(`RELEASE vk_row`)
}

// insertRejects stores the batch's rejects and, row by row, a reject for
// each record the database refused. What the database refuses even there
// is counted lost.
func (tx *rawTx) insertRejects(b *vibekit.Batch, w *Written) error {
	insert := func(r *vibekit.Reject) error {
		return tx.exec(`INSERT INTO vk_rejects (source, line, offset, length, reason, raw, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			r.Source, r.Line, r.Offset, r.Length, r.Reason, r.Raw, r.Time)
	}
	if tx.ref == nil {
		for i := range b.Rejects {
			if err := insert(&b.Rejects[i]); err != nil {
				return fmt.Errorf("insert reject: %w", err)
			}
		}
		w.Rejects = int64(len(b.Rejects))
		return nil
	}
	// keep stores r, or counts it lost (in lost, under i) if the database
	// refuses it for good.
	keep := func(r *vibekit.Reject, lost map[int]bool, i int) error {
		if lost[i] {
			w.Lost++
			return nil
		}
		err := tx.savepoint(func() error { return insert(r) })
		switch {
		case err == nil:
			w.Rejects++
			return nil
		case !IsPermanent(err):
			return fmt.Errorf("insert reject: %w", err)
		}
		lost[i] = true
		w.Lost++
		if tx.c.AutoCommit() {
			return errRolledBack
		}
		return nil
	}
	for i := range b.Rejects {
		if err := keep(&b.Rejects[i], tx.ref.lostRejects, i); err != nil {
			return err
		}
	}
	now := tx.db.now().UnixMilli()
	for i := range b.Records {
		msg, refused := tx.ref.rows[i]
		if !refused {
			continue
		}
		w.Refused++
		if w.Refusal == "" {
			w.Refusal = msg
		}
		r := refusedReject(b, i, msg, now)
		if err := keep(&r, tx.ref.lost, i); err != nil {
			return err
		}
	}
	return nil
}

// insertSpans records which source each run of the batch's rows came from;
// idOf gives a record's row id, 0 for a record not stored.
func (tx *rawTx) insertSpans(b *vibekit.Batch, idOf func(int) int64) error {
	n := min(len(b.RecordSources), len(b.Records))
	for i := 0; i < n; {
		first := idOf(i)
		j := i + 1
		for j < n && b.RecordSources[j] == b.RecordSources[i] && first != 0 && idOf(j) == first+int64(j-i) {
			j++
		}
		if src := b.RecordSources[i]; src != "" && first != 0 {
			// Registered with the batch's checkpoints; a key without one
			// (a caller's own batch) is its own name.
			id, err := tx.sourceID(src, src, "")
			if err != nil {
				return err
			}
			if err := tx.exec(`INSERT INTO vk_spans (source_id, first_id, last_id) VALUES (?, ?, ?)`, id, first, first+int64(j-i-1)); err != nil {
				return fmt.Errorf("record source: %w", err)
			}
		}
		i = j
	}
	return nil
}

// renewClaims renews this process's claims with a commit, when they are
// due, so that a busy follower needs no transaction of its own for it.
func (tx *rawTx) renewClaims() error {
	now := tx.db.now().UnixMilli()
	if !tx.db.claimedAny.Load() || now-tx.db.lastBeat.Load() < heartbeatDue.Milliseconds() {
		return nil
	}
	if err := tx.exec(`UPDATE vk_claims SET heartbeat = ? WHERE owner = ?`, now, tx.db.claimer.id); err != nil {
		return fmt.Errorf("renew claims: %w", err)
	}
	tx.db.lastBeat.Store(now) // a rollback only makes the next one due sooner
	return nil
}

// insertWarnings records the batch's reports; a report of a re-read settles
// the deleted checkpoint it was about.
func (tx *rawTx) insertWarnings(ws []vibekit.Warning) error {
	for _, w := range ws {
		var bytes any
		if w.Bytes >= 0 {
			bytes = w.Bytes
		}
		if err := tx.exec(`INSERT INTO vk_warnings (time, kind, source, offset, bytes, detail, pid) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			w.Time, w.Kind, w.Source, w.Offset, bytes, w.Detail, int64(os.Getpid())); err != nil {
			return fmt.Errorf("record warning: %w", err)
		}
		if w.Forgotten != 0 {
			if err := tx.exec(`DELETE FROM vk_forgotten WHERE id = ?`, w.Forgotten); err != nil {
				return fmt.Errorf("record warning: %w", err)
			}
		}
	}
	return nil
}

func nullInt(n int64) any {
	if n == 0 {
		return nil
	}
	return n
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// countRun adds the batch to this process's vk_runs row, creating it with the
// first commit.
func (tx *rawTx) countRun(b *vibekit.Batch, w *Written, took time.Duration) (int64, error) {
	now := tx.db.now().UnixMilli()
	ms := float64(took) / float64(time.Millisecond)
	id := tx.db.runID
	if id == 0 {
		var err error
		id, err = tx.queryInt(`INSERT INTO vk_runs (pid, started, updated) VALUES (?, ?, ?) RETURNING id`, int64(os.Getpid()), now, now)
		if err != nil {
			return 0, fmt.Errorf("record run: %w", err)
		}
	}
	err := tx.exec(`UPDATE vk_runs SET updated = ?, lines = lines + ?, bytes = bytes + ?, rows = rows + ?, rejects = rejects + ?,
		skipped = skipped + ?, flushes = flushes + 1, flush_ms_total = flush_ms_total + ?, flush_ms_last = ?,
		refused = refused + ?, not_stored = not_stored + ? WHERE id = ?`,
		now, b.Lines, b.Bytes, w.Rows, w.Rejects, b.Skipped, ms, ms, w.Refused, w.Lost+tx.db.pendingLost, id)
	if err != nil {
		return 0, fmt.Errorf("record run: %w", err)
	}
	return id, nil
}
