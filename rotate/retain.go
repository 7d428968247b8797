package rotate

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/vibekit/vibekit-pipe/sqlite"
)

// Prune deletes what is older than before: telemetry rows and rejects of the
// live database, and archives whose newest row is older. What it deleted is
// logged in vk_prunes, for stats. Archives are left alone while another
// process holds the seal lock (it may be writing one); the next pass gets
// them.
func (s *Sealer) Prune(ctx context.Context, before, now time.Time) (sqlite.PruneResult, error) {
	res := sqlite.PruneResult{Time: now, Before: before}
	var err error
	res.Rows, res.Rejects, err = s.DB.Prune(ctx, before)
	if err != nil && !errors.Is(err, sqlite.ErrNotScrubbed) {
		return res, err
	}
	// Rows deleted but perhaps still readable in the WAL: reported, and the
	// pass goes on.
	scrubErr := err
	err = nil
	if _, serr := os.Stat(s.dir()); serr != nil {
		return res, errors.Join(scrubErr, s.DB.RecordPrune(ctx, res)) // no archives
	}
	unlock, lerr := s.lock()
	switch {
	case errors.Is(lerr, ErrLocked):
	case lerr != nil:
		err = lerr
	default:
		err = s.pruneArchives(before, &res)
		unlock()
	}
	return res, errors.Join(scrubErr, err, s.DB.RecordPrune(ctx, res))
}

func (s *Sealer) pruneArchives(before time.Time, res *sqlite.PruneResult) error {
	as, err := List(s.DB.Path)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range as {
		if a.Err != nil || !a.To.Before(before) {
			continue // a symlink or the like is not ours to delete
		}
		m, _ := ReadMeta(a.Path)
		if err := os.Remove(a.Path); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Archives = append(res.Archives, a.Name)
		res.ArchiveRows += m.Rows
	}
	if len(res.Archives) > 0 {
		errs = append(errs, syncDir(s.dir()))
	}
	return errors.Join(errs...)
}
