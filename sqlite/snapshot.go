package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// snapshot runs fn inside one read transaction, so that the several queries
// of a summary see the same state of the database while writers go on. It
// begins the transaction by hand: a writable DB's connections begin with
// BEGIN IMMEDIATE, which would take the write lock.
func (db *DB) snapshot(ctx context.Context, fn func(*sql.Conn) error) error {
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN DEFERRED`); err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	// Nothing was written: ending with ROLLBACK is the cheapest way out.
	defer conn.ExecContext(context.Background(), `ROLLBACK`)
	return fn(conn)
}
