package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/vibekit/vibekit-pipe/sqlite"
)

// DefaultQueryTimeout bounds a user's statement unless --timeout says.
const DefaultQueryTimeout = 30 * time.Second

// queryHeapLimit is SQLite's hard heap limit while a user's statement runs:
// with the Go heap's soft limit it keeps query under 256 MiB.
const queryHeapLimit = 64 << 20

// errorGroupColumns are the columns --errors --group-by takes.
var errorGroupColumns = []string{"prompt", "agentType", "sessionId", "mode", "sandboxId", "repoUrl"}

func newQueryCommand(e *env) *ffcli.Command {
	fs := flag.NewFlagSet("vibekit telemetry query", flag.ContinueOnError)
	var (
		wf                        writerFlags
		write                     bool
		timeout                   time.Duration
		format                    string
		longest, errs, withErrors bool
		groupBy                   string
		limit                     int
		ar                        archiveFlags
		from, to                  string
	)
	wf.register(fs)
	ar.register(fs)
	fs.StringVar(&from, "from", "", "with --archives: merge the rows from this `time` on only; earlier archives are not opened (forms as in dump)")
	fs.StringVar(&to, "to", "", "with --archives: merge the rows up to this `time` only")
	fs.BoolVar(&write, "write", false, "allow the statement to change the database (CREATE INDEX, DELETE, ...)")
	fs.DurationVar(&timeout, "timeout", DefaultQueryTimeout, "stop the statement after this `duration` (0: no limit)")
	fs.StringVar(&format, "format", "ndjson", "output `format`: ndjson, json, csv or table")
	fs.BoolVar(&longest, "longest-sessions", false, "preset: the longest sessions, first to last event")
	fs.BoolVar(&errs, "errors", false, "preset: error events (with --group-by, how often each occurs)")
	fs.StringVar(&groupBy, "group-by", "", "with --errors: count errors by this `column`: "+strings.Join(errorGroupColumns, ", "))
	fs.BoolVar(&withErrors, "sessions-with-errors", false, "preset: sessions that had an error event")
	fs.IntVar(&limit, "limit", 0, "with a preset: at most `n` rows (--longest-sessions: 10 unless given)")
	addConfigFlag(fs)
	return &ffcli.Command{
		Name:       "query",
		ShortUsage: `vibekit telemetry query [flags] "SQL" | --longest-sessions | --errors [--group-by prompt] | --sessions-with-errors`,
		ShortHelp:  "run one SQL statement on the store, read-only by default",
		LongHelp: `Runs one SQL statement, or a preset, and prints its rows in dump's formats
(NDJSON objects keyed by column name unless --format says otherwise). A
column named metadata that holds JSON is printed as JSON, as dump does.

The statement is read-only unless --write is given: the database is opened
read-only, and an authorizer lets the statement read and nothing else, so
INSERT, UPDATE, DELETE, DROP, CREATE and writing pragmas are refused before
they run. ATTACH, VACUUM INTO and load_extension() are refused even with
--write. Input with more than one statement is refused whole: in
"SELECT 1; DELETE FROM telemetry" nothing runs. --timeout interrupts a
statement that runs too long.

The tables: telemetry (the guide's schema), vk_rejects (rejected input
lines), vk_runs (ingest counters per vibekit-pipe run), vk_sources.

--archives runs the statement on the live database and its sealed archives
as one data set: their telemetry rows are gathered into one telemetry table
(the same columns and ids, without the query indexes) in a private
temporary database, removed afterwards. Only the telemetry table is merged.
--from and --to then choose the rows to merge; archives outside them are
not opened.

Examples:
  vibekit telemetry query "SELECT agentType, COUNT(*) FROM telemetry GROUP BY agentType"
  vibekit telemetry query --format table "SELECT * FROM telemetry ORDER BY id DESC LIMIT 5"
  vibekit telemetry query --longest-sessions
  vibekit telemetry query --errors --group-by prompt
  vibekit telemetry query --sessions-with-errors --format json
  vibekit telemetry query --write "CREATE INDEX idx_custom ON telemetry(agentType, timestamp)"
  vibekit telemetry query --archives --from "last month" "SELECT COUNT(*) FROM telemetry"`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			args, err := positional(fs, args)
			if err != nil {
				return err
			}
			if err := applySettings(fs, "db", "enable-indexes", "timeout", "max-archive-mb"); err != nil {
				return err
			}
			if err := checkRowFormat(format); err != nil {
				return err
			}
			presets := 0
			for _, on := range []bool{longest, errs, withErrors} {
				if on {
					presets++
				}
			}
			if groupBy != "" && !errs {
				return usageErrorf("--group-by goes with --errors")
			}
			if limit < 0 || timeout < 0 {
				return usageErrorf("--limit and --timeout must not be negative")
			}
			var q string
			switch {
			case presets > 1 || presets == 1 && len(args) > 0:
				return usageErrorf("query: give one SQL statement or one preset")
			case presets == 1:
				if write {
					return usageErrorf("--write does not go with a preset")
				}
				if q, err = presetSQL(longest, errs, withErrors, groupBy, limit); err != nil {
					return err
				}
			case len(args) == 1:
				if limit != 0 {
					return usageErrorf("--limit goes with a preset: write LIMIT in the SQL")
				}
				q = args[0]
			case len(args) == 0:
				return usageErrorf("query: no SQL statement or preset (see --help)")
			default:
				return usageErrorf("query: want one SQL statement in quotes, got %d arguments", len(args))
			}
			if write && ar.archives {
				return usageErrorf("--write does not go with --archives: archives are read-only")
			}
			if (from != "" || to != "") && !ar.archives {
				return usageErrorf("--from and --to go with --archives: in SQL, write a WHERE on timestamp")
			}
			span := filterFlags{from: from, to: to}
			filter, err := span.filter(e.now())
			if err != nil {
				return err
			}
			run := func(store *sqlite.DB) error {
				w := newRowWriter(format, e.stdout, e.tableWidth(), e.color())
				err := store.UserQuery(ctx, q, sqlite.QueryOptions{Write: write, Timeout: timeout, HeapLimit: queryHeapLimit},
					func(names []string) error {
						cols := make([]column, len(names))
						for i, n := range names {
							cols[i] = column{n, queryColumnKind(n)}
						}
						return w.header(cols)
					}, w.row)
				if cerr := w.close(); err == nil {
					err = cerr
				}
				return err
			}
			switch {
			case ar.archives:
				err = ar.merged(ctx, e, wf.db, filter, allColumns, run)
				if err != nil && strings.Contains(err.Error(), "no such table") {
					err = fmt.Errorf("%w (with --archives, only the telemetry table is merged)", err)
				}
			default:
				var store *sqlite.DB
				if write {
					store, err = wf.open(ctx, e.stderr)
				} else {
					store, err = sqlite.OpenReadOnly(wf.db)
				}
				if err != nil {
					return err
				}
				defer store.Close()
				if err = run(store); err == nil {
					err = store.Close()
				}
			}
			var re *sqlite.RefusedError
			switch {
			case errors.As(err, &re) && re.Writes && !write:
				return fmt.Errorf("query %w (read-only: --write allows changes)", err)
			case errors.As(err, &re):
				return fmt.Errorf("query %w", err)
			case errors.Is(err, sqlite.ErrQueryTimeout):
				return fmt.Errorf("%w: --timeout allows longer", err)
			}
			return err
		},
	}
}

// queryColumnKind gives the guide's columns their form: times and
// durations for people in a table, metadata as an object in JSON.
func queryColumnKind(name string) colKind {
	switch name {
	case "timestamp", "startTime", "endTime", "firstSeen", "lastSeen":
		return kindTime
	case "duration":
		return kindDuration
	case "metadata":
		return kindJSON
	}
	return kindPlain
}

// presetSQL is the statement of a query preset.
func presetSQL(longest, errs, withErrors bool, groupBy string, limit int) (string, error) {
	var q string
	switch {
	case longest:
		if limit == 0 {
			limit = 10
		}
		q = `SELECT sessionId, agentType, MIN(timestamp) AS startTime, MAX(timestamp) AS endTime,
  MAX(timestamp) - MIN(timestamp) AS duration, COUNT(*) AS eventCount
FROM telemetry GROUP BY sessionId ORDER BY duration DESC, sessionId`
	case errs && groupBy != "":
		if !slices.Contains(errorGroupColumns, groupBy) {
			return "", usageErrorf("--group-by %q: use one of %s", groupBy, strings.Join(errorGroupColumns, ", "))
		}
		q = `SELECT ` + groupBy + `, COUNT(*) AS errors, COUNT(DISTINCT sessionId) AS sessions,
  MIN(timestamp) AS firstSeen, MAX(timestamp) AS lastSeen
FROM telemetry WHERE eventType = 'error' GROUP BY ` + groupBy + ` ORDER BY errors DESC, ` + groupBy
	case errs:
		q = `SELECT id, sessionId, agentType, prompt AS error, metadata, timestamp
FROM telemetry WHERE eventType = 'error' ORDER BY timestamp, id`
	case withErrors:
		q = `SELECT sessionId, agentType, COUNT(*) AS eventCount, SUM(eventType = 'error') AS errorCount,
  MIN(timestamp) AS startTime, MAX(timestamp) AS endTime
FROM telemetry GROUP BY sessionId HAVING errorCount > 0 ORDER BY startTime, sessionId`
	}
	if limit > 0 {
		q += " LIMIT " + strconv.Itoa(limit)
	}
	return q, nil
}
