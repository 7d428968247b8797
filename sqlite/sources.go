package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// Sources returns the committed checkpoints of every input the store has
// read, ordered by name, oldest first within a name: a follower resumes
// from them, and `vibekit telemetry sources` lists them.
func (db *DB) Sources(ctx context.Context) ([]vibekit.SourceState, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT key, name, kind, dev, ino, fingerprint, offset, line, size, birth, gone, updated
		FROM vk_sources ORDER BY name, id`)
	if err != nil && strings.Contains(err.Error(), "no such column") {
		// A database of an earlier version, opened read-only.
		rows, err = db.db.QueryContext(ctx, `SELECT key, name, kind, dev, ino, fingerprint, offset, line, size, NULL, 0, updated
			FROM vk_sources ORDER BY name, id`)
	}
	if err != nil {
		return nil, fmt.Errorf("read sources: %w", err)
	}
	defer rows.Close()
	var out []vibekit.SourceState
	for rows.Next() {
		var (
			s                   vibekit.SourceState
			dev, ino, size, upd sql.NullInt64
			birth               sql.NullInt64
			fingerprint         []byte
		)
		if err := rows.Scan(&s.Key, &s.Source, &s.Kind, &dev, &ino, &fingerprint, &s.Offset, &s.Line, &size, &birth, &s.Gone, &upd); err != nil {
			return nil, fmt.Errorf("read source: %w", err)
		}
		s.Dev, s.Ino = uint64(dev.Int64), uint64(ino.Int64)
		s.Fingerprint = fingerprint
		s.Size, s.Updated, s.Birth = size.Int64, upd.Int64, birth.Int64
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read sources: %w", err)
	}
	return out, nil
}

// Forgotten returns the checkpoints of followed files that were deleted from
// vk_sources (by hand) and not yet reported: reading such a file again from
// 0 stores its lines again, which the follower reports.
func (db *DB) Forgotten(ctx context.Context) ([]vibekit.ForgottenSource, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT id, key, name, kind, dev, ino, fingerprint, offset, line, size, birth
		FROM vk_forgotten ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read deleted checkpoints: %w", err)
	}
	defer rows.Close()
	var out []vibekit.ForgottenSource
	for rows.Next() {
		var (
			f                     vibekit.ForgottenSource
			dev, ino, size, birth sql.NullInt64
		)
		if err := rows.Scan(&f.ID, &f.Key, &f.Source, &f.Kind, &dev, &ino, &f.Fingerprint, &f.Offset, &f.Line, &size, &birth); err != nil {
			return nil, fmt.Errorf("read deleted checkpoint: %w", err)
		}
		f.Dev, f.Ino, f.Size, f.Birth = uint64(dev.Int64), uint64(ino.Int64), size.Int64, birth.Int64
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read deleted checkpoints: %w", err)
	}
	return out, nil
}

// Warnings returns the reports of reading (gaps, re-reads, refused claims),
// oldest first.
func (db *DB) Warnings(ctx context.Context) ([]vibekit.Warning, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT time, kind, source, offset, bytes, detail FROM vk_warnings ORDER BY id`)
	if err != nil && strings.Contains(err.Error(), "no such table") {
		return nil, nil // a database of an earlier version, opened read-only
	}
	if err != nil {
		return nil, fmt.Errorf("read warnings: %w", err)
	}
	defer rows.Close()
	var out []vibekit.Warning
	for rows.Next() {
		var (
			w             vibekit.Warning
			source        sql.NullString
			offset, bytes sql.NullInt64
		)
		if err := rows.Scan(&w.Time, &w.Kind, &source, &offset, &bytes, &w.Detail); err != nil {
			return nil, fmt.Errorf("read warning: %w", err)
		}
		w.Source, w.Offset, w.Bytes = source.String, offset.Int64, -1
		if bytes.Valid {
			w.Bytes = bytes.Int64
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read warnings: %w", err)
	}
	return out, nil
}
