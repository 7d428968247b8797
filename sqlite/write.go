package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// Commit writes a batch in one transaction: its rows, the sources they came
// from, its rejects, its sources' checkpoints and this run's counters. Either
// all of it is kept or none; it returns how long the transaction took.
//
// It works at the driver level, below database/sql: an insert then costs one
// crossing into C (bind and step fused), which doubles ingest speed.
func (db *DB) Commit(ctx context.Context, b *vibekit.Batch) (time.Duration, error) {
	if db.readOnly {
		return 0, errors.New("commit: database is open read-only")
	}
	start := time.Now()
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("commit %d rows: %w", b.Len(), err)
	}
	defer conn.Close()
	newSources := map[string]int64{}
	var runID int64
	err = conn.Raw(func(dc any) error {
		tx := &rawTx{db: db, c: dc.(*sqlite3.SQLiteConn), newSources: newSources}
		if err := tx.exec(`BEGIN IMMEDIATE`); err != nil {
			return err
		}
		done := false
		defer func() {
			if !done {
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
		if err := tx.insertRecords(b); err != nil {
			return err
		}
		for _, r := range b.Rejects {
			if err := tx.exec(`INSERT INTO vk_rejects (source, line, offset, length, reason, raw, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				r.Source, r.Line, r.Offset, r.Length, r.Reason, r.Raw, r.Time); err != nil {
				return fmt.Errorf("insert reject: %w", err)
			}
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
		if runID, err = tx.countRun(b, time.Since(start)); err != nil {
			return err
		}
		if err := tx.exec(`COMMIT`); err != nil {
			return err
		}
		done = true
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("commit %d rows: %w", b.Len(), err)
	}
	for key, id := range newSources {
		db.sourceIDs[key] = id
	}
	db.runID = runID
	if db.ckpt != nil {
		db.ckpt.committed(b.Bytes)
	}
	return time.Since(start), nil
}

// rawTx is one write transaction on the driver connection.
type rawTx struct {
	db         *DB
	c          *sqlite3.SQLiteConn
	newSources map[string]int64
	args       []driver.NamedValue
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

func (tx *rawTx) insertRecords(b *vibekit.Batch) error {
	if len(b.Records) == 0 {
		return nil
	}
	st, err := tx.insertStmt()
	if err != nil {
		return fmt.Errorf("prepare insert: %w", err)
	}
	query := st.(driver.StmtQueryContext)
	var args [10]driver.NamedValue
	for i := range args {
		args[i].Ordinal = i + 1
	}
	var firstID int64
	for i := range b.Records {
		r := &b.Records[i]
		args[0].Value = r.SessionID
		args[1].Value = string(r.EventType)
		args[2].Value = r.AgentType
		args[3].Value = nullString(r.Mode)
		args[4].Value = nullString(r.Prompt)
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
			return fmt.Errorf("insert record: %w", err)
		}
		rows.Close()
		if i == 0 {
			if firstID, err = tx.queryInt(`SELECT last_insert_rowid()`); err != nil {
				return fmt.Errorf("insert record: %w", err)
			}
		}
	}
	// This transaction holds the write lock and AUTOINCREMENT counts up by
	// one, so the batch's rows have the ids firstID, firstID+1, ...
	return tx.insertSpans(b, firstID)
}

// insertSpans records which source each run of the batch's rows came from.
func (tx *rawTx) insertSpans(b *vibekit.Batch, firstID int64) error {
	for i := 0; i < len(b.RecordSources); {
		j := i + 1
		for j < len(b.RecordSources) && b.RecordSources[j] == b.RecordSources[i] {
			j++
		}
		if src := b.RecordSources[i]; src != "" {
			// Registered with the batch's checkpoints; a key without one
			// (a caller's own batch) is its own name.
			id, err := tx.sourceID(src, src, "")
			if err != nil {
				return err
			}
			if err := tx.exec(`INSERT INTO vk_spans (source_id, first_id, last_id) VALUES (?, ?, ?)`, id, firstID+int64(i), firstID+int64(j-1)); err != nil {
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
func (tx *rawTx) countRun(b *vibekit.Batch, took time.Duration) (int64, error) {
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
		skipped = skipped + ?, flushes = flushes + 1, flush_ms_total = flush_ms_total + ?, flush_ms_last = ? WHERE id = ?`,
		now, b.Lines, b.Bytes, int64(len(b.Records)), int64(len(b.Rejects)), b.Skipped, ms, ms, id)
	if err != nil {
		return 0, fmt.Errorf("record run: %w", err)
	}
	return id, nil
}
