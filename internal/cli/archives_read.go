package cli

import (
	"context"
	"flag"
	"fmt"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/rotate"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

// scanFunc calls fn with each record a filter selects: sqlite.DB.Scan over
// the live database, or rotate.Scan over it and its archives.
type scanFunc func(ctx context.Context, f vibekit.Filter, fn func(*vibekit.Record) error) error

// defaultMaxArchiveMB caps an archive's unpacked size: generous beside the
// default maxSizeMB of 100, and far from what fills a disk.
const defaultMaxArchiveMB = 16 << 10

// archiveFlags are --archives and --max-archive-mb, for the commands that
// read records: dump, stats, sessions and query.
type archiveFlags struct {
	archives     bool
	maxArchiveMB int
}

func (a *archiveFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&a.archives, "archives", false, "read the archives beside the database too, as one data set in time order")
	addMaxArchiveFlag(fs, &a.maxArchiveMB)
}

func addMaxArchiveFlag(fs *flag.FlagSet, mb *int) {
	fs.IntVar(mb, "max-archive-mb", defaultMaxArchiveMB, "refuse an archive that unpacks to more than this many `MB`")
}

func archiveLimits(mb int) rotate.Limits {
	return rotate.Limits{MaxBytes: int64(max(mb, 1)) << 20}
}

// readOptions are the options of reading archives: another database's
// archive is left out, with a warning on stderr that names it.
func (a *archiveFlags) readOptions(e *env) rotate.ReadOptions {
	return rotate.ReadOptions{Limits: archiveLimits(a.maxArchiveMB), OnForeign: func(err error) {
		fmt.Fprintf(e.stderr, "vibekit: warning: %v; its rows are left out\n", err)
	}}
}

// open is the reader of the records of the database at db: with --archives
// its archives too (scanner), else the database alone, opened read-only;
// close ends it.
func (a *archiveFlags) open(e *env, db string) (scan scanFunc, close func(), err error) {
	if a.archives {
		return a.scanner(e, db), func() {}, nil
	}
	store, err := sqlite.OpenReadOnly(db)
	if err != nil {
		return nil, nil, err
	}
	return store.Scan, func() { store.Close() }, nil
}

// scanner reads the database at db and its archives.
func (a *archiveFlags) scanner(e *env, db string) scanFunc {
	o := a.readOptions(e)
	return func(ctx context.Context, f vibekit.Filter, fn func(*vibekit.Record) error) error {
		return rotate.Scan(ctx, db, f, o, fn)
	}
}

// merged gathers the rows that f selects from the database at db and its
// archives into one database in a private temporary directory
// (rotate.Merge), and calls fn with it, open read-only, so that a command
// runs its own SQL on them; the directory is removed afterwards, whatever
// happens. A summary (stats, sessions) needs neither prompt nor streamData,
// which are left out, and reads f's time bounds as its own SQL does.
func (a *archiveFlags) merged(ctx context.Context, e *env, db string, f vibekit.Filter, summary mergeKind, fn func(*sqlite.DB) error) error {
	o := rotate.MergeOptions{ReadOptions: a.readOptions(e),
		WholeSessions: summary == sessionsSummary, NoText: summary != allColumns}
	m, err := rotate.Merge(ctx, db, f, o)
	if err != nil {
		return err
	}
	defer m.Remove()
	store, err := sqlite.OpenPrivate(m.Path)
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(store)
}

// mergeKind says what a command reads of the merged rows.
type mergeKind int

const (
	allColumns      mergeKind = iota // query: any column
	statsSummary                     // stats: rows by f, without their text
	sessionsSummary                  // sessions: whole sessions by start, without their text
)

// mergedFilter is f for a summary's own SQL on the merged database: its
// text and source conditions were applied by the merge, and the merged
// database holds neither the text nor the tables of sources.
func mergedFilter(f vibekit.Filter) vibekit.Filter {
	f.Contains, f.Sources = "", nil
	return f
}
