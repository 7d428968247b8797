package rotate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

// Deleted is what DeleteRows did.
type Deleted struct {
	Rows     int64    // rows deleted from archives
	Archives []string // the archives rewritten, by name
}

// Exclusive runs fn with the seal lock held, so that no seal runs in this
// or another process meanwhile, after finishing or rolling back a seal that
// a crash left: the rows fn sees are each in the telemetry table or in an
// archive, none in the middle of a seal, and a change fn makes to the live
// rows cannot miss a copy that a seal is making of them. It waits up to
// wait for a seal under way. Deleting user data and clear run in it.
func (s *Sealer) Exclusive(ctx context.Context, wait time.Duration, fn func() error) error {
	unlock, err := s.lockWait(ctx, wait)
	if err != nil {
		return err
	}
	defer unlock()
	s.exclusive = true
	defer func() { s.exclusive = false }()
	if err := s.recover(ctx); err != nil {
		return err
	}
	return fn()
}

// DeleteRows deletes the rows that f selects from every archive of the
// database, for a user's deletion request; it runs within Exclusive. Each
// archive that holds such rows is rewritten: unpacked into a private
// temporary directory, the rows deleted there with secure_delete on and the
// file vacuumed, packed into a temp file beside the archive, verified, and
// renamed over it. The archive keeps its name, seal and ids; its metadata
// gives its rows and time range after. A crash leaves each archive whole,
// old or new. An archive it cannot read stops it (no copy of the rows may
// be left in one without saying so); what it deleted before is returned
// with the error.
func (s *Sealer) DeleteRows(ctx context.Context, f vibekit.Filter) (Deleted, error) {
	var out Deleted
	if !s.exclusive {
		return out, errors.New("delete rows from archives: not within Exclusive")
	}
	archives, err := List(s.DB.Path)
	if err != nil || len(archives) == 0 {
		return out, err
	}
	tmp, err := privateTemp("")
	if err != nil {
		return out, err
	}
	defer os.RemoveAll(tmp)
	for _, a := range archives {
		if a.Err != nil {
			return out, a.Err
		}
		n, err := s.deleteFrom(ctx, a, f, tmp)
		if err != nil {
			return out, err
		}
		if n > 0 {
			out.Rows += n
			out.Archives = append(out.Archives, a.Name)
		}
	}
	return out, nil
}

// deleteFrom rewrites one archive without the rows f selects, if it holds
// any, and returns how many it held.
func (s *Sealer) deleteFrom(ctx context.Context, a Archive, f vibekit.Filter, tmp string) (int64, error) {
	m, err := ReadMeta(a.Path)
	if err != nil && !errors.Is(err, errNoMeta) {
		return 0, err
	}
	unpacked, _, err := Unpack(ctx, a.Path, tmp, s.Limits)
	if err != nil {
		return 0, err
	}
	defer os.Remove(unpacked)
	n, c, err := sqlite.DeleteRowsFromFile(ctx, unpacked, f)
	if err != nil {
		return 0, &BadArchiveError{a.Path, err}
	}
	if n == 0 {
		return 0, nil
	}
	m.Rows, m.MinTs, m.MaxTs, m.Rejects = c.Rows, c.MinTs, c.MaxTs, c.Rejects
	if m.DB == "" {
		m.DB = filepath.Base(s.DB.Path)
	}
	next := filepath.Join(Dir(s.DB.Path), "."+a.Name+".tmp")
	defer os.Remove(next)
	level := s.Level
	if level == 0 {
		level = zstd.SpeedDefault
	}
	_, want, err := pack(ctx, unpacked, next, m, level, s.Concurrency)
	if err != nil {
		return 0, err
	}
	if err := verifyAgainst(ctx, next, want); err != nil {
		return 0, fmt.Errorf("verify the rewritten %s: %w", a.Name, err)
	}
	if err := os.Rename(next, a.Path); err != nil {
		return 0, fmt.Errorf("put the rewritten %s in place: %w", a.Name, err)
	}
	if err := syncDir(Dir(s.DB.Path)); err != nil {
		return 0, fmt.Errorf("put the rewritten %s in place: fsync: %w", a.Name, err)
	}
	return n, nil
}

// lockWait takes the seal lock, trying again while another process holds it
// (it is sealing: a second or so), until wait has passed.
func (s *Sealer) lockWait(ctx context.Context, wait time.Duration) (func(), error) {
	deadline := time.Now().Add(wait)
	for {
		unlock, err := s.lock()
		if !errors.Is(err, ErrLocked) || time.Now().After(deadline) {
			return unlock, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
