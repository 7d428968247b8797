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

// CountClear counts the rows that Clear(f) would delete.
func (db *DB) CountClear(ctx context.Context, f vibekit.Filter) (Counts, error) {
	var c Counts
	w, args := where(&f)
	if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM telemetry`+w, args...).Scan(&c.Events); err != nil {
		return c, fmt.Errorf("count rows: %w", err)
	}
	if onlyTime(&f) {
		w, args := rejectsWhere(&f)
		if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM vk_rejects`+w, args...).Scan(&c.Rejects); err != nil {
			return c, fmt.Errorf("count rejects: %w", err)
		}
	}
	return c, nil
}

// Clear deletes, in one transaction, the telemetry rows that f selects and,
// when f selects by time alone, the rejected lines of that time. It keeps
// the sources' read offsets, so followed files do not start over.
func (db *DB) Clear(ctx context.Context, f vibekit.Filter) (Counts, error) {
	var c Counts
	if db.readOnly {
		return c, errors.New("clear: database is open read-only")
	}
	if f.Limit != 0 || f.Offset != 0 {
		return c, errors.New("clear: a limit or offset does not apply")
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		w, args := where(&f)
		res, err := tx.ExecContext(ctx, `DELETE FROM telemetry`+w, args...)
		if err != nil {
			return err
		}
		if c.Events, err = res.RowsAffected(); err != nil {
			return err
		}
		if onlyTime(&f) {
			w, args := rejectsWhere(&f)
			res, err := tx.ExecContext(ctx, `DELETE FROM vk_rejects`+w, args...)
			if err != nil {
				return err
			}
			c.Rejects, err = res.RowsAffected()
			return err
		}
		return nil
	})
	if err != nil {
		return Counts{}, fmt.Errorf("clear: %w", err)
	}
	return c, nil
}
