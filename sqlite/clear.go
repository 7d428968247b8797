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
		var err error
		if c.Events, err = deleteLive(ctx, tx, &f); err != nil {
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
