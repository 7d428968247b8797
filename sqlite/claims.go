package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// ClaimLease is how long a claim stays valid without a heartbeat. A claim of
// a process on this host that no longer runs is stale at once; the host of
// another machine cannot be asked, so there only the lease tells.
const ClaimLease = 60 * time.Second

// heartbeatDue is how old the last renewal of the claims may be before a
// commit or Heartbeat renews them.
const heartbeatDue = 5 * time.Second

// claimOwner is this process's identity in vk_claims: a random id (a pid can
// be reused), the pid and the host, for the message a refused process prints.
type claimOwner struct {
	id   string
	pid  int64
	host string
}

func newClaimOwner() claimOwner {
	var b [8]byte
	rand.Read(b[:])
	host, _ := os.Hostname()
	return claimOwner{id: hex.EncodeToString(b[:]), pid: int64(os.Getpid()), host: host}
}

func (db *DB) owner() claimOwner { return db.claimer }

// Claim makes this process the reader of the followed file dev:ino (at
// path), unless another live process holds it: then the error wraps
// vibekit.ErrClaimed and names the holder. A stale claim (its process gone,
// or its heartbeat older than ClaimLease) is taken over; takenFrom then
// describes the former holder. The file's committed checkpoints are
// returned, read in the same transaction: a holder may have moved them
// since this process started.
func (db *DB) Claim(ctx context.Context, path string, dev, ino uint64) (cps []vibekit.Checkpoint, takenFrom string, err error) {
	me := db.owner()
	file := claimFile(dev, ino)
	db.claimedAny.Store(true)
	err = retryBusy(BusyTimeout, func() error {
		cps, takenFrom = nil, ""
		return db.inTx(ctx, func(tx *sql.Tx) error {
			var (
				owner, host, held string
				pid, since, beat  int64
			)
			err := tx.QueryRowContext(ctx, `SELECT owner, pid, host, since, heartbeat, path FROM vk_claims WHERE file = ?`, file).
				Scan(&owner, &pid, &host, &since, &beat, &held)
			now := db.now()
			switch {
			case errors.Is(err, sql.ErrNoRows), err == nil && owner == me.id:
			case err != nil:
				return err
			case !claimStale(me, host, pid, beat, now):
				return fmt.Errorf("%w: vibekit-pipe pid %d on %s has read %s since %s (heartbeat %s ago)",
					vibekit.ErrClaimed, pid, host, held, time.UnixMilli(since).UTC().Format(time.RFC3339), now.Sub(time.UnixMilli(beat)).Round(time.Second))
			default:
				takenFrom = fmt.Sprintf("pid %d on %s, last heard of %s ago", pid, host, now.Sub(time.UnixMilli(beat)).Round(time.Second))
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO vk_claims (file, path, owner, pid, host, since, heartbeat) VALUES (?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT(file) DO UPDATE SET path = excluded.path, owner = excluded.owner, pid = excluded.pid, host = excluded.host,
				since = excluded.since, heartbeat = excluded.heartbeat`,
				file, path, me.id, me.pid, me.host, now.UnixMilli(), now.UnixMilli()); err != nil {
				return err
			}
			cps, err = fileCheckpoints(ctx, tx, dev, ino)
			return err
		})
	})
	if err != nil && !errors.Is(err, vibekit.ErrClaimed) {
		err = fmt.Errorf("claim %s: %w", path, err)
	}
	return cps, takenFrom, err
}

// claimStale reports whether a claim can be taken over: its process, on this
// host, is gone; or nothing was heard of it for the lease.
func claimStale(me claimOwner, host string, pid, beat int64, now time.Time) bool {
	if now.Sub(time.UnixMilli(beat)) > ClaimLease {
		return true
	}
	if host != me.host {
		return false
	}
	// Signal 0 checks that the process exists; EPERM means it does (another user's).
	return syscall.Kill(int(pid), 0) == syscall.ESRCH
}

// fileCheckpoints are the committed checkpoints of the file dev:ino.
func fileCheckpoints(ctx context.Context, tx *sql.Tx, dev, ino uint64) ([]vibekit.Checkpoint, error) {
	rows, err := tx.QueryContext(ctx, `SELECT key, name, kind, fingerprint, offset, line, size, birth, gone
		FROM vk_sources WHERE kind = 'file' AND dev = ? AND ino = ? ORDER BY id`, int64(dev), int64(ino))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []vibekit.Checkpoint
	for rows.Next() {
		c := vibekit.Checkpoint{Dev: dev, Ino: ino}
		var size, birth sql.NullInt64
		if err := rows.Scan(&c.Key, &c.Source, &c.Kind, &c.Fingerprint, &c.Offset, &c.Line, &size, &birth, &c.Gone); err != nil {
			return nil, err
		}
		c.Size, c.Birth = size.Int64, birth.Int64
		out = append(out, c)
	}
	return out, rows.Err()
}

// Unclaim gives up this process's claim of the file dev:ino.
func (db *DB) Unclaim(ctx context.Context, dev, ino uint64) error {
	file := claimFile(dev, ino)
	err := retryBusy(BusyTimeout, func() error {
		_, err := db.db.ExecContext(ctx, `DELETE FROM vk_claims WHERE file = ? AND owner = ?`, file, db.owner().id)
		return err
	})
	if err != nil {
		return fmt.Errorf("release claim: %w", err)
	}
	return nil
}

// Heartbeat renews this process's claims, so others know it still reads,
// unless a commit did so lately.
func (db *DB) Heartbeat(ctx context.Context) error {
	if !db.claimedAny.Load() || db.now().UnixMilli()-db.lastBeat.Load() < heartbeatDue.Milliseconds() {
		return nil
	}
	// One try: the next is due soon, well within the lease, and a store
	// locked by another writer should not hold this one's commits back.
	now := db.now().UnixMilli()
	_, err := db.db.ExecContext(ctx, `UPDATE vk_claims SET heartbeat = ? WHERE owner = ?`, now, db.owner().id)
	if err == nil {
		db.lastBeat.Store(now)
	}
	if err != nil {
		return fmt.Errorf("renew claims: %w", err)
	}
	return nil
}

// ReleaseClaims gives up every claim of this process, as it stops.
func (db *DB) ReleaseClaims(ctx context.Context) error {
	err := retryBusy(BusyTimeout, func() error {
		_, err := db.db.ExecContext(ctx, `DELETE FROM vk_claims WHERE owner = ?`, db.owner().id)
		return err
	})
	if err != nil {
		return fmt.Errorf("release claims: %w", err)
	}
	return nil
}

// claimFile is a file's key in vk_claims.
func claimFile(dev, ino uint64) string {
	return strconv.FormatUint(dev, 10) + ":" + strconv.FormatUint(ino, 10)
}

// retryBusy runs fn again while it fails with SQLITE_BUSY, for at most
// timeout: a claim is a small write that another process's commit delays.
func retryBusy(timeout time.Duration, fn func() error) error {
	deadline := time.Now().Add(timeout)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		err := fn()
		if err == nil || !IsBusy(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait)
	}
}
