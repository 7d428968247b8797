package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrNoIdentity means the database has no identity: it was written by a
// version before identities (and not opened for writing since), or it is
// not one of ours.
var ErrNoIdentity = errors.New("the database has no identity (vk_identity)")

// Identity returns the database's identity: 32 hex digits, made at random
// once when the schema was created (migration 0006) and never changed. It
// names the database in the archives it seals.
func (db *DB) Identity(ctx context.Context) (string, error) {
	id, err := identityOf(ctx, db.db)
	if err != nil {
		return "", fmt.Errorf("read the identity of %s: %w", db.Path, err)
	}
	return id, nil
}

func identityOf(ctx context.Context, q querier) (string, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'vk_identity'`).Scan(&n); err != nil {
		return "", err
	}
	if n == 0 {
		return "", ErrNoIdentity
	}
	var id string
	err := q.QueryRowContext(ctx, `SELECT id FROM vk_identity WHERE one = 1`).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !validIdentity(id)) {
		return "", ErrNoIdentity
	}
	return id, err
}

// validIdentity reports whether id looks like one Identity returns.
func validIdentity(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
