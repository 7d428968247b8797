package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// Commit writes a batch in one transaction: its rows, the sources they came
// from, its rejects, its sources' checkpoints and this run's counters. Either
// all of it is kept or none; it returns how long the transaction took.
func (db *DB) Commit(ctx context.Context, b *vibekit.Batch) (time.Duration, error) {
	if db.readOnly {
		return 0, errors.New("commit: database is open read-only")
	}
	start := time.Now()
	newSources := map[string]int64{}
	var runID int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		sourceID := func(name, kind string) (int64, error) {
			if id, ok := db.sourceIDs[name]; ok {
				return id, nil
			}
			if id, ok := newSources[name]; ok {
				return id, nil
			}
			var id int64
			err := tx.QueryRowContext(ctx, `INSERT INTO vk_sources (name, kind, updated) VALUES (?, ?, ?)
				ON CONFLICT(name) DO UPDATE SET name = excluded.name RETURNING id`, name, kind, db.now().UnixMilli()).Scan(&id)
			if err != nil {
				return 0, fmt.Errorf("register source %s: %w", name, err)
			}
			newSources[name] = id
			return id, nil
		}
		if err := db.insertRecords(ctx, tx, b, sourceID); err != nil {
			return err
		}
		if err := insertRejects(ctx, tx, b.Rejects); err != nil {
			return err
		}
		for _, c := range b.Checkpoints {
			if _, err := sourceID(c.Source, c.Kind); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `UPDATE vk_sources SET kind = ?, dev = ?, ino = ?, fingerprint = ?, offset = ?, line = ?, size = ?, updated = ? WHERE name = ?`,
				c.Kind, int64(c.Dev), int64(c.Ino), c.Fingerprint, c.Offset, c.Line, c.Size, db.now().UnixMilli(), c.Source)
			if err != nil {
				return fmt.Errorf("checkpoint %s: %w", c.Source, err)
			}
		}
		var err error
		runID, err = db.countRun(ctx, tx, b, time.Since(start))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("commit %d rows: %w", b.Len(), err)
	}
	for name, id := range newSources {
		db.sourceIDs[name] = id
	}
	db.runID = runID
	return time.Since(start), nil
}

func (db *DB) insertRecords(ctx context.Context, tx *sql.Tx, b *vibekit.Batch, sourceID func(name, kind string) (int64, error)) error {
	if len(b.Records) == 0 {
		return nil
	}
	stmt := tx.StmtContext(ctx, db.insert)
	defer stmt.Close()
	var (
		args      [10]any
		spanSrc   string
		spanFirst int64
		spanLast  int64
	)
	flushSpan := func() error {
		if spanSrc == "" {
			return nil
		}
		id, err := sourceID(spanSrc, "")
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO vk_spans (source_id, first_id, last_id) VALUES (?, ?, ?)`, id, spanFirst, spanLast)
		return err
	}
	for i := range b.Records {
		r := &b.Records[i]
		args[0] = r.SessionID
		args[1] = string(r.EventType)
		args[2] = r.AgentType
		args[3] = nullString(r.Mode)
		args[4] = nullString(r.Prompt)
		args[5] = nullString(r.StreamData)
		args[6] = nullString(r.SandboxID)
		args[7] = nullString(r.RepoURL)
		args[8] = nil
		if len(r.Metadata) > 0 {
			args[8] = string(r.Metadata)
		}
		args[9] = r.Timestamp
		res, err := stmt.ExecContext(ctx, args[:]...)
		if err != nil {
			return fmt.Errorf("insert record: %w", err)
		}
		var src string
		if i < len(b.RecordSources) {
			src = b.RecordSources[i]
		}
		if src == "" && spanSrc == "" {
			continue
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		if src == spanSrc && id == spanLast+1 {
			spanLast = id
			continue
		}
		if err := flushSpan(); err != nil {
			return err
		}
		spanSrc, spanFirst, spanLast = src, id, id
	}
	return flushSpan()
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func insertRejects(ctx context.Context, tx *sql.Tx, rejects []vibekit.Reject) error {
	for _, r := range rejects {
		_, err := tx.ExecContext(ctx, `INSERT INTO vk_rejects (source, line, offset, length, reason, raw, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			r.Source, r.Line, r.Offset, r.Length, r.Reason, r.Raw, r.Time)
		if err != nil {
			return fmt.Errorf("insert reject: %w", err)
		}
	}
	return nil
}

// countRun adds the batch to this process's vk_runs row, creating it with the
// first commit.
func (db *DB) countRun(ctx context.Context, tx *sql.Tx, b *vibekit.Batch, took time.Duration) (int64, error) {
	now := db.now().UnixMilli()
	ms := float64(took) / float64(time.Millisecond)
	id := db.runID
	if id == 0 {
		err := tx.QueryRowContext(ctx, `INSERT INTO vk_runs (pid, started, updated) VALUES (?, ?, ?) RETURNING id`, os.Getpid(), now, now).Scan(&id)
		if err != nil {
			return 0, fmt.Errorf("record run: %w", err)
		}
	}
	_, err := tx.ExecContext(ctx, `UPDATE vk_runs SET updated = ?, lines = lines + ?, bytes = bytes + ?, rows = rows + ?, rejects = rejects + ?,
		skipped = skipped + ?, flushes = flushes + 1, flush_ms_total = flush_ms_total + ?, flush_ms_last = ? WHERE id = ?`,
		now, b.Lines, b.Bytes, len(b.Records), len(b.Rejects), b.Skipped, ms, ms, id)
	if err != nil {
		return 0, fmt.Errorf("record run: %w", err)
	}
	return id, nil
}
