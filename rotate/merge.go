package rotate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

// MergeOptions configure Merge.
type MergeOptions struct {
	ReadOptions
	// WholeSessions reads f's time bounds as sqlite.DB.Sessions does: they
	// select sessions by their first row, and every row of such a session
	// is merged, whichever archive holds it.
	WholeSessions bool
	// NoText leaves prompt and streamData NULL (sqlite.CopyOptions.NoText):
	// for summaries, which do not read them. Run them without f.Contains,
	// which the merge applied.
	NoText bool
}

// Merged is the live database and its archives gathered into one database
// file, in a private temporary directory that Remove deletes.
type Merged struct {
	Path     string // the database: open it with sqlite.OpenPrivate
	Rows     int64  // the rows it holds
	Archives int    // the archives that were opened
	dir      string
}

// Remove deletes the merged database and its directory.
func (m *Merged) Remove() error { return os.RemoveAll(m.dir) }

// Merge copies the telemetry rows that f selects (its paging and order
// aside) from the live database at dbPath and its archives into a new
// database with the same telemetry table, so that summaries and user
// queries run on them as on one database; the other tables are not merged.
// As in Scan, archives whose time range cannot match f are not opened,
// those the database did not seal are left out (ReadOptions.OnForeign), the
// others are unpacked within o.Limits into a private temporary directory
// (the next one while the current one is copied), and a bad archive in the
// range stops the merge with a *BadArchiveError naming it. The caller
// removes the result; on error nothing is left.
func Merge(ctx context.Context, dbPath string, f vibekit.Filter, o MergeOptions) (_ *Merged, err error) {
	dir, err := privateTemp(o.TempDir)
	if err != nil {
		return nil, err
	}
	out := &Merged{Path: filepath.Join(dir, "merged.db"), dir: dir}
	defer func() {
		if err != nil {
			out.Remove()
		}
	}()
	m, err := sqlite.CreateMerged(ctx, out.Path)
	if err != nil {
		return nil, err
	}
	defer m.Close()

	rows := f
	rows.Limit, rows.Offset = 0, 0
	whole := o.WholeSessions && (!f.From.IsZero() || !f.To.IsZero())
	if whole {
		// Rows outside the bounds may belong to a session that started
		// within them. Merging more rows than needed is harmless: a session
		// whose rows are all there and that started outside is left out.
		rows.From, rows.To = time.Time{}, time.Time{}
	}
	// The live rows first, the archives listed after: a seal that switches
	// in between shows its rows in both, and they are dropped from the live
	// side by id (as in Scan), rather than in neither. No other row is
	// dropped: the database's archives hold each id once.
	id, err := Identity(ctx, dbPath)
	if err != nil {
		return nil, err
	}
	_, statErr := os.Stat(dbPath)
	var live int64
	if statErr == nil {
		if live, err = m.Copy(ctx, dbPath, rows, sqlite.CopyOptions{NoText: o.NoText}); err != nil {
			return nil, err
		}
	}
	from, to := bounds(f)
	inRange := func(a *Archive) bool { return a.To.UnixMilli() >= from && a.From.UnixMilli() <= to }
	if whole {
		inRange = func(*Archive) bool { return true } // any may hold a wanted session's rows
	}
	archives, err := o.owned(dbPath, id, inRange)
	if err != nil {
		return nil, err
	}
	if statErr != nil && len(archives) == 0 {
		return nil, fmt.Errorf("open database %s: no such file, and no archives of it beside it", dbPath)
	}
	var within, outside []*Archive
	var maxArchived int64
	for i := range archives {
		a := &archives[i]
		if a.Err == nil {
			m, _ := a.Meta()
			maxArchived = max(maxArchived, m.MaxID)
		}
		if a.To.UnixMilli() < from || a.From.UnixMilli() > to {
			outside = append(outside, a)
			continue
		}
		within = append(within, a)
	}
	if live > 0 && maxArchived > 0 {
		dropped, err := m.DropUpTo(ctx, maxArchived)
		if err != nil {
			return nil, err
		}
		live -= dropped
	}
	out.Rows += live
	copyEach := func(as []*Archive, co sqlite.CopyOptions) error {
		return unpackEach(ctx, as, dir, o.Limits, func(a *Archive, path string, meta Meta) error {
			if err := checkUnpackedFile(ctx, a, path, meta, id); err != nil {
				return err
			}
			n, err := m.Copy(ctx, path, rows, co)
			if err != nil && ctx.Err() == nil {
				return &BadArchiveError{a.Path, err}
			}
			out.Rows += n
			out.Archives++
			return err
		})
	}
	if err := copyEach(within, sqlite.CopyOptions{Immutable: true, NoText: o.NoText}); err != nil {
		return nil, err
	}
	if whole && len(outside) > 0 {
		// The archives outside the bounds hold only the other rows of the
		// sessions that have a row within them, if any.
		n, err := m.Want(ctx, f.From, f.To)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			if err := copyEach(outside, sqlite.CopyOptions{Immutable: true, Wanted: true, NoText: o.NoText}); err != nil {
				return nil, err
			}
		}
	}
	if err := m.Close(); err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	return out, nil
}

// bounds are f's time bounds in Unix ms, open ends at the extremes.
func bounds(f vibekit.Filter) (from, to int64) {
	from, to = -1<<63, 1<<63-1
	if !f.From.IsZero() {
		from = f.From.UnixMilli()
	}
	if !f.To.IsZero() {
		to = f.To.UnixMilli()
	}
	return from, to
}

// unpackEach unpacks the archives in turn into dir and calls fn with each
// unpacked file, which it removes after; it unpacks the next archive while
// fn works on the current one.
func unpackEach(ctx context.Context, as []*Archive, dir string, lim Limits, fn func(a *Archive, path string, m Meta) error) error {
	if len(as) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type unpacked struct {
		path string
		meta Meta
		err  error
	}
	ready := make(chan unpacked) // unbuffered: one archive ahead, no more
	go func() {
		defer close(ready)
		for _, a := range as {
			var u unpacked
			if u.err = a.Err; u.err == nil {
				u.path, u.meta, u.err = Unpack(ctx, a.Path, dir, lim)
			}
			select {
			case ready <- u:
			case <-ctx.Done():
				if u.path != "" {
					os.Remove(u.path)
				}
				return
			}
			if u.err != nil {
				return
			}
		}
	}()
	defer func() {
		cancel()
		for u := range ready { // let the unpacker stop, and remove what it made
			if u.path != "" {
				os.Remove(u.path)
			}
		}
	}()
	i := 0
	for u := range ready {
		if u.err != nil {
			return u.err
		}
		err := fn(as[i], u.path, u.meta)
		os.Remove(u.path)
		i++
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// checkUnpackedFile is checkUnpacked on the unpacked file at path.
func checkUnpackedFile(ctx context.Context, a *Archive, path string, m Meta, id string) error {
	db, err := sqlite.OpenPrivate(path)
	if err != nil {
		return &BadArchiveError{a.Path, err}
	}
	defer db.Close()
	return checkUnpacked(ctx, a, db, m, id)
}
