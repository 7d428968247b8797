package sqlite

import (
	"context"
	"fmt"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// Rejects calls fn with each stored reject, oldest first; limit 0 means all.
func (db *DB) Rejects(ctx context.Context, limit int, fn func(id int64, r *vibekit.Reject) error) error {
	if limit <= 0 {
		limit = -1
	}
	rows, err := db.db.QueryContext(ctx, `SELECT id, coalesce(source, ''), coalesce(line, 0), coalesce(offset, 0), coalesce(length, 0), reason, coalesce(raw, ''), timestamp
		FROM vk_rejects ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return fmt.Errorf("query rejects: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id int64
			r  vibekit.Reject
		)
		if err := rows.Scan(&id, &r.Source, &r.Line, &r.Offset, &r.Length, &r.Reason, &r.Raw, &r.Time); err != nil {
			return fmt.Errorf("read reject: %w", err)
		}
		if err := fn(id, &r); err != nil {
			return err
		}
	}
	return rows.Err()
}
