package rotate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

// ReadOptions configure reading a database together with its archives.
type ReadOptions struct {
	Limits Limits
	// TempDir is where the private directory for unpacked archives is made;
	// "" means the system's temporary directory.
	TempDir string
	// OnForeign, when set, hears of each archive in the archives directory
	// that the database did not seal (an error wrapping ErrForeign, naming
	// it and saying why), which is then left out; when nil, such an
	// archive within the filter's time range stops the read with that
	// error. Its rows are never mixed in.
	OnForeign func(error)
}

// owned lists the archives of the database at dbPath whose identity is id,
// hands those it did not seal to o.OnForeign and leaves them out; without
// OnForeign, a foreign archive that inRange says may match is an error.
func (o ReadOptions) owned(dbPath, id string, inRange func(*Archive) bool) ([]Archive, error) {
	as, err := Owned(dbPath, id)
	if err != nil {
		return nil, err
	}
	out := as[:0]
	for _, a := range as {
		if a.Err != nil && errors.Is(a.Err, ErrForeign) {
			if o.OnForeign != nil {
				o.OnForeign(a.Err)
				continue
			}
			if inRange(&a) {
				return nil, a.Err
			}
			continue
		}
		out = append(out, a)
	}
	return out, nil
}

// liveIdentity is the identity of the live database db ("" if it has none).
func liveIdentity(ctx context.Context, db *sqlite.DB) (string, error) {
	id, err := db.Identity(ctx)
	if errors.Is(err, sqlite.ErrNoIdentity) {
		return "", nil
	}
	return id, err
}

// checkUnpacked checks that the archive a, unpacked to db with metadata m,
// is the database id's: its metadata, read again, and the sealed database
// itself say so.
func checkUnpacked(ctx context.Context, a *Archive, db *sqlite.DB, m Meta, id string) error {
	if why := foreign(m, id); why != "" {
		return &BadArchiveError{a.Path, fmt.Errorf("%w: %s", ErrForeign, why)}
	}
	if err := sameIdentity(ctx, db, m); err != nil {
		return &BadArchiveError{a.Path, err}
	}
	return nil
}

// errEnough stops a scan once the limit is reached.
var errEnough = errors.New("enough records")

// source is the live database or one archive, with the time range of its rows.
type source struct {
	from, to int64 // Unix ms
	archive  *Archive
	maxID    int64 // an archive's largest id, from its metadata
}

// Scan calls fn with each record that f selects from the live database at
// dbPath and its archives, as one data set in f's order (by time, then id),
// with f's offset and limit applied to the whole. Archives whose time range
// cannot match f are not opened; those the database did not seal are left
// out (see ReadOptions.OnForeign). The others are unpacked, within o.Limits,
// into a private temporary directory that is removed afterwards; the next
// archive is unpacked while the current one is read. A bad archive in the
// range stops the scan with a *BadArchiveError naming it. The record is
// valid only during the call.
func Scan(ctx context.Context, dbPath string, f vibekit.Filter, o ReadOptions, fn func(*vibekit.Record) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The live rows are pinned before the archives are listed: a seal that
	// switches in between then shows its rows in both, and they are dropped
	// from the live side by id, rather than in neither.
	var view *sqlite.View
	var id string
	if _, err := os.Stat(dbPath); err == nil {
		live, err := sqlite.OpenReadOnly(dbPath)
		if err != nil {
			return err
		}
		defer live.Close()
		if id, err = liveIdentity(ctx, live); err != nil {
			return err
		}
		if view, err = live.View(ctx); err != nil {
			return err
		}
		defer view.Close()
	}
	from, to := bounds(f)
	inRange := func(a *Archive) bool { return a.To.UnixMilli() >= from && a.From.UnixMilli() <= to }
	archives, err := o.owned(dbPath, id, inRange)
	if err != nil {
		return err
	}
	if view == nil && len(archives) == 0 {
		return fmt.Errorf("open database %s: no such file, and no archives of it beside it", dbPath)
	}

	var sources []source
	var maxArchived int64
	for i := range archives {
		a := &archives[i]
		if !inRange(a) {
			// Cannot match: not opened. (Nor can the live rows a seal moved
			// into it meanwhile, which have its rows' times.)
			continue
		}
		if a.Err != nil {
			return a.Err
		}
		m, err := a.Meta()
		if err != nil {
			return err
		}
		maxArchived = max(maxArchived, m.MaxID)
		sources = append(sources, source{from: a.From.UnixMilli(), to: a.To.UnixMilli(), archive: a, maxID: m.MaxID})
	}
	if view != nil {
		// The live rows; with a seal under way, those it moved aside too, in
		// no archive yet (or in one listed above, and then dropped by id).
		live, minTs, maxTs := view.MaxID > 0, view.MinTs, view.MaxTs
		if view.Sealing {
			if !live {
				minTs, maxTs = view.SealingMinTs, view.SealingMaxTs
			}
			live = true
			minTs, maxTs = min(minTs, view.SealingMinTs), max(maxTs, view.SealingMaxTs)
		}
		if live && maxTs >= from && minTs <= to {
			sources = append(sources, source{from: minTs, to: maxTs})
		}
	}

	page := f
	page.Limit, page.Offset = 0, 0
	out := &pager{fn: fn, offset: f.Offset, limit: f.Limit, liveAbove: maxArchived}
	if len(sources) == 1 && sources[0].archive == nil && maxArchived == 0 {
		// Only the live database: let SQLite page.
		return view.Scan(ctx, f, fn)
	}
	groups := groupSources(sources, f.Order)
	tmp, err := privateTemp(o.TempDir)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	ready := make(chan openedGroup)
	go unpackGroups(ctx, groups, tmp, o.Limits, id, ready)
	defer func() {
		cancel()
		for g := range ready { // let the unpacker stop, and close what it opened
			g.close()
		}
	}()
	for g := range ready {
		if g.err != nil {
			return g.err
		}
		err := scanGroup(ctx, g, view, page, out)
		g.close()
		if errors.Is(err, errEnough) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// groupSources orders the sources by time and groups those whose ranges
// overlap: each group is merged record by record, groups are read one after
// another, so only overlapping archives are unpacked at the same time.
func groupSources(ss []source, order vibekit.Order) [][]source {
	desc := order == vibekit.OrderDesc
	sort.SliceStable(ss, func(i, j int) bool {
		if desc {
			return ss[i].to > ss[j].to
		}
		return ss[i].from < ss[j].from
	})
	var groups [][]source
	var edge int64
	for i, s := range ss {
		overlaps := i > 0 && ((!desc && s.from <= edge) || (desc && s.to >= edge))
		if overlaps {
			g := &groups[len(groups)-1]
			*g = append(*g, s)
		} else {
			groups = append(groups, []source{s})
		}
		switch {
		case !overlaps && !desc:
			edge = s.to
		case !overlaps:
			edge = s.from
		case !desc:
			edge = max(edge, s.to)
		default:
			edge = min(edge, s.from)
		}
	}
	return groups
}

// openedGroup is a group whose archives are unpacked and open.
type openedGroup struct {
	sources []source
	dbs     []*sqlite.DB // per source; nil for the live database
	files   []string
	err     error
}

func (g openedGroup) close() {
	for _, db := range g.dbs {
		if db != nil {
			db.Close()
		}
	}
	for _, f := range g.files {
		os.Remove(f)
	}
}

// unpackGroups unpacks and opens the archives of each group in turn and
// hands the group over; it works one group ahead of the reader.
func unpackGroups(ctx context.Context, groups [][]source, tmp string, lim Limits, id string, ready chan<- openedGroup) {
	defer close(ready)
	for _, ss := range groups {
		g := openedGroup{sources: ss, dbs: make([]*sqlite.DB, len(ss))}
		for i, s := range ss {
			if s.archive == nil {
				continue
			}
			path, m, err := Unpack(ctx, s.archive.Path, tmp, lim)
			if err != nil {
				g.err = err
				break
			}
			g.files = append(g.files, path)
			db, err := sqlite.OpenPrivate(path)
			if err != nil {
				g.err = &BadArchiveError{s.archive.Path, err}
				break
			}
			g.dbs[i] = db
			if g.err = checkUnpacked(ctx, s.archive, db, m, id); g.err != nil {
				break
			}
		}
		select {
		case ready <- g:
		case <-ctx.Done():
			g.close()
			return
		}
		if g.err != nil {
			return
		}
	}
}

// pager applies the offset and limit to the merged records, and drops live
// rows that an archive read alongside also holds (a seal between its
// archive's rename and its switch).
type pager struct {
	fn            func(*vibekit.Record) error
	offset, limit int
	n             int
	liveAbove     int64
}

func (p *pager) emit(r *vibekit.Record, live bool) error {
	if live && r.ID <= p.liveAbove {
		return nil
	}
	if p.offset > 0 {
		p.offset--
		return nil
	}
	if err := p.fn(r); err != nil {
		return err
	}
	p.n++
	if p.limit > 0 && p.n >= p.limit {
		return errEnough
	}
	return nil
}

// scanGroup reads one group: directly if it is one source, else merging its
// sources by (timestamp, id).
func scanGroup(ctx context.Context, g openedGroup, view *sqlite.View, f vibekit.Filter, out *pager) error {
	scan := func(ctx context.Context, i int, fn func(*vibekit.Record) error) error {
		if g.dbs[i] == nil {
			return view.Scan(ctx, f, fn)
		}
		err := g.dbs[i].Scan(ctx, f, fn)
		var bad *BadArchiveError
		if err != nil && !errors.As(err, &bad) && !errors.Is(err, errEnough) && ctx.Err() == nil {
			err = &BadArchiveError{g.sources[i].archive.Path, err}
		}
		return err
	}
	if len(g.sources) == 1 {
		live := g.dbs[0] == nil
		return scan(ctx, 0, func(r *vibekit.Record) error { return out.emit(r, live) })
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type stream struct {
		ch   chan []vibekit.Record
		err  chan error
		buf  []vibekit.Record
		live bool
		done bool
	}
	streams := make([]*stream, len(g.sources))
	for i := range g.sources {
		s := &stream{ch: make(chan []vibekit.Record, 2), err: make(chan error, 1), live: g.dbs[i] == nil}
		streams[i] = s
		go func() {
			var chunk []vibekit.Record
			err := scan(ctx, i, func(r *vibekit.Record) error {
				chunk = append(chunk, *r) // its strings are its own
				if len(chunk) == 256 {
					select {
					case s.ch <- chunk:
					case <-ctx.Done():
						return ctx.Err()
					}
					chunk = nil
				}
				return nil
			})
			if err == nil && len(chunk) > 0 {
				select {
				case s.ch <- chunk:
				case <-ctx.Done():
				}
			}
			close(s.ch)
			s.err <- err
		}()
	}
	next := func(s *stream) error {
		if len(s.buf) > 0 || s.done {
			return nil
		}
		c, ok := <-s.ch
		if !ok {
			s.done = true
			return <-s.err
		}
		s.buf = c
		return nil
	}
	desc := f.Order == vibekit.OrderDesc
	before := func(a, b *vibekit.Record) bool {
		if a.Timestamp != b.Timestamp {
			return (a.Timestamp < b.Timestamp) != desc
		}
		return (a.ID < b.ID) != desc
	}
	for {
		var best *stream
		for _, s := range streams {
			if err := next(s); err != nil {
				return err
			}
			if s.done {
				continue
			}
			if best == nil || before(&s.buf[0], &best.buf[0]) {
				best = s
			}
		}
		if best == nil {
			return nil
		}
		if err := out.emit(&best.buf[0], best.live); err != nil {
			return err
		}
		best.buf = best.buf[1:]
	}
}
