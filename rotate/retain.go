package rotate

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/vibekit/vibekit-pipe/sqlite"
)

// Prune deletes what is older than before: telemetry rows and rejects of the
// live database, and the database's own archives that are older, by the
// timestamp of their newest row or by the time they were sealed: every row
// of an archive was stored before its seal, so a row dated in the future
// does not keep its archive past retention. What it deleted is logged in
// vk_prunes, for stats. Archives are left alone while another process holds
// the seal lock (it may be writing one); the next pass gets them. Another
// database's archives (ErrForeign) are not deleted.
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
	if _, serr := os.Lstat(s.dir()); serr != nil {
		return res, errors.Join(scrubErr, s.DB.RecordPrune(ctx, res)) // no archives
	}
	unlock, lerr := s.lock()
	switch {
	case errors.Is(lerr, ErrLocked):
	case lerr != nil:
		err = lerr
	default:
		err = s.pruneArchives(ctx, before, &res)
		unlock()
	}
	if len(res.Archives) > 0 && res.Rows == 0 && err == nil {
		// The live file's free pages may still hold the rows of the archives
		// just deleted: the seal that made them only freed their pages. (A
		// pass that deleted live rows scrubbed the file already.)
		scrubErr = s.DB.Scrub(ctx)
	}
	return res, errors.Join(scrubErr, err, s.DB.RecordPrune(ctx, res))
}

func (s *Sealer) pruneArchives(ctx context.Context, before time.Time, res *sqlite.PruneResult) error {
	id, err := s.DB.Identity(ctx)
	if err != nil {
		return err
	}
	as, err := Owned(s.DB.Path, id)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range as {
		if a.Err != nil {
			continue // a symlink, another database's archive: not ours to delete
		}
		m, err := a.Meta()
		if err != nil {
			continue // read by claim a moment ago; gone meanwhile
		}
		sealed := time.UnixMilli(m.Sealed)
		if !a.To.Before(before) && (m.Sealed <= 0 || !sealed.Before(before)) {
			continue
		}
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
