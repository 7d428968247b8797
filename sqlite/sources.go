package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// Sources returns the committed checkpoints of every input the store has
// read, ordered by name, oldest first within a name: a follower resumes
// from them, and `vibekit telemetry sources` lists them.
func (db *DB) Sources(ctx context.Context) ([]vibekit.SourceState, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT key, name, kind, dev, ino, fingerprint, offset, line, size, updated
		FROM vk_sources ORDER BY name, id`)
	if err != nil {
		return nil, fmt.Errorf("read sources: %w", err)
	}
	defer rows.Close()
	var out []vibekit.SourceState
	for rows.Next() {
		var (
			s                   vibekit.SourceState
			dev, ino, size, upd sql.NullInt64
			fingerprint         []byte
		)
		if err := rows.Scan(&s.Key, &s.Source, &s.Kind, &dev, &ino, &fingerprint, &s.Offset, &s.Line, &size, &upd); err != nil {
			return nil, fmt.Errorf("read source: %w", err)
		}
		s.Dev, s.Ino = uint64(dev.Int64), uint64(ino.Int64)
		s.Fingerprint = fingerprint
		s.Size, s.Updated = size.Int64, upd.Int64
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read sources: %w", err)
	}
	return out, nil
}
