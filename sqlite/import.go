package sqlite

import (
	"context"
	"errors"
	"fmt"

	sqlite3 "github.com/mattn/go-sqlite3"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// Import writes rows in ONE transaction, however many there are: next fills
// b with the next records and rejects (b is reset before each call) and
// reports whether more follow. If next or a write fails, nothing is kept.
// Unlike Commit it leaves the run counters alone: an import is no pipe run.
func (db *DB) Import(ctx context.Context, next func(b *vibekit.Batch) (more bool, err error)) (Counts, error) {
	var n Counts
	if db.readOnly {
		return n, errors.New("import: database is open read-only")
	}
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return n, fmt.Errorf("import: %w", err)
	}
	defer conn.Close()
	newSources := map[string]int64{}
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
		var b vibekit.Batch
		for more := true; more; {
			if err := ctx.Err(); err != nil {
				return err
			}
			b.Reset()
			var err error
			if more, err = next(&b); err != nil {
				return err
			}
			var w Written
			if err := tx.insertRecords(&b, &w); err != nil {
				return err
			}
			if err := tx.insertRejects(&b, &w); err != nil {
				return err
			}
			n.Events += int64(len(b.Records))
			n.Rejects += int64(len(b.Rejects))
		}
		if err := tx.exec(`COMMIT`); err != nil {
			return err
		}
		done = true
		return nil
	})
	if err != nil {
		return Counts{}, fmt.Errorf("import: %w", err)
	}
	for name, id := range newSources {
		db.sourceIDs[name] = id
	}
	return n, nil
}
