package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// View is a read transaction held open: every read through it sees the
// database as it was when the view was taken, whatever is committed since.
// Reading archives and the live database as one data set needs that: the
// live rows (those of the telemetry table, and of the sealing table while a
// seal is under way) are pinned first, then the archives are listed, so a seal
// that puts its archive in place in between shows its rows twice (which the
// reader drops by id) rather than not at all.
type View struct {
	db           *DB
	conn         *sql.Conn
	MaxID        int64 // the largest telemetry id in the view; 0 if none
	MinTs, MaxTs int64 // the oldest and newest row's timestamp; 0 if none
	// Sealing is true when a seal is under way in the view: rows moved out
	// of the telemetry table into SealingTable, in no archive yet.
	Sealing                    bool
	SealingMinTs, SealingMaxTs int64
}

// View opens a read transaction and pins its snapshot.
func (db *DB) View(ctx context.Context) (*View, error) {
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", db.Path, err)
	}
	v := &View{db: db, conn: conn}
	if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
		conn.Close()
		return nil, fmt.Errorf("read %s: %w", db.Path, err)
	}
	// The first read of a transaction fixes its snapshot.
	// min and max, each alone, use idx_timestamp: no scan of the table.
	err = conn.QueryRowContext(ctx, `SELECT coalesce(max(id), 0), coalesce((SELECT min(timestamp) FROM telemetry), 0),
		coalesce((SELECT max(timestamp) FROM telemetry), 0) FROM telemetry`).Scan(&v.MaxID, &v.MinTs, &v.MaxTs)
	if err != nil {
		v.Close()
		return nil, fmt.Errorf("read %s: %w", db.Path, err)
	}
	if v.Sealing, err = hasSealing(ctx, conn); err == nil && v.Sealing {
		err = conn.QueryRowContext(ctx, `SELECT coalesce(min(timestamp), 0), coalesce(max(timestamp), 0) FROM `+SealingTable).
			Scan(&v.SealingMinTs, &v.SealingMaxTs)
	}
	if err != nil {
		v.Close()
		return nil, fmt.Errorf("read %s: %w", db.Path, err)
	}
	return v, nil
}

// Scan is DB.Scan within the view.
// While a seal is under way, it reads the sealing table's rows too, in the
// same order (one query: the view has one connection).
func (v *View) Scan(ctx context.Context, f vibekit.Filter, fn func(*vibekit.Record) error) error {
	table := "telemetry"
	if v.Sealing {
		table = `(SELECT * FROM telemetry UNION ALL SELECT * FROM ` + SealingTable + `)`
	}
	return scanOn(ctx, v.conn, table, f, fn)
}

// Close ends the read transaction.
func (v *View) Close() error {
	v.conn.ExecContext(context.Background(), `ROLLBACK`)
	return v.conn.Close()
}
