package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// guideColumns are the columns of the guide's telemetry table.
var guideColumns = []string{"id", "sessionId", "eventType", "agentType", "mode", "prompt", "streamData", "sandboxId", "repoUrl", "metadata", "timestamp"}

// fileKind is what a database file is, as far as writing to it goes.
type fileKind int

const (
	kindEmpty   fileKind = iota // no schema at all: a new file
	kindOurs                    // our application id, or our tables from before it
	kindGuide                   // only the guide's telemetry table: the original VibeKit's file
	kindForeign                 // anything else
)

// fileState is what readState found in a database.
type fileState struct {
	kind    fileKind
	appID   int64
	version int
	tables  []string // user tables, for the error about a foreign file
}

// readState classifies the database q reads.
func readState(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) (fileState, error) {
	var st fileState
	if err := q.QueryRowContext(ctx, `PRAGMA application_id`).Scan(&st.appID); err != nil {
		return st, fmt.Errorf("read application id: %w", err)
	}
	if err := q.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&st.version); err != nil {
		return st, fmt.Errorf("read user_version: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite!_%' ESCAPE '!'`)
	if err != nil {
		return st, fmt.Errorf("read schema: %w", err)
	}
	defer rows.Close()
	var objects, onlyGuide = 0, true
	has := map[string]bool{}
	for rows.Next() {
		var typ, name, table string
		if err := rows.Scan(&typ, &name, &table); err != nil {
			return st, fmt.Errorf("read schema: %w", err)
		}
		objects++
		switch {
		case typ == "table":
			has[name] = true
			st.tables = append(st.tables, name)
			// A full-text index that sqlite-utils enable-fts adds (telemetry_fts
			// and its shadow tables) is the user's own addition to the guide's file.
			onlyGuide = onlyGuide && (name == "telemetry" || strings.HasPrefix(name, "telemetry_fts"))
		case (typ == "index" || typ == "trigger") && table == "telemetry":
			// The guide lists indexes on its table; a user's triggers on it
			// (enable-fts makes some) keep it the guide's file.
		case typ == "trigger" && strings.HasPrefix(table, "telemetry_fts"):
		default:
			onlyGuide = false // a view, a trigger, an index elsewhere
		}
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("read schema: %w", err)
	}
	rows.Close()
	sort.Strings(st.tables)
	switch {
	case st.appID == ApplicationID:
		st.kind = kindOurs
	case st.appID != 0:
		st.kind = kindForeign
	case objects == 0 && st.version == 0:
		st.kind = kindEmpty
	case st.version > 0 && has["telemetry"] && has["vk_sources"]:
		// Ours, made before databases carried the application id.
		st.kind = kindOurs
	case st.version > latestVersion() && (objects == 0 || has["telemetry"]):
		// Not ours as far as we can tell, but what a newer version of
		// ours may look like: writable refuses it as too new.
		st.kind = kindOurs
	case st.version == 0 && onlyGuide && has["telemetry"]:
		ok, err := hasGuideColumns(ctx, q)
		if err != nil {
			return st, err
		}
		st.kind = kindForeign
		if ok {
			st.kind = kindGuide
		}
	default:
		st.kind = kindForeign
	}
	return st, nil
}

// hasGuideColumns reports whether the telemetry table has exactly the
// guide's columns (in any order, as SQLite compares names: without case).
func hasGuideColumns(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) (bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT name FROM pragma_table_info('telemetry')`)
	if err != nil {
		return false, fmt.Errorf("read the telemetry table's columns: %w", err)
	}
	defer rows.Close()
	want := map[string]bool{}
	for _, c := range guideColumns {
		want[strings.ToLower(c)] = true
	}
	n := 0
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return false, err
		}
		if !want[strings.ToLower(name)] {
			return false, rows.Close()
		}
		n++
	}
	return n == len(guideColumns), rows.Err()
}

// writable refuses a file that is not ours to write to, or too new.
func (st fileState) writable() error {
	switch st.kind {
	case kindForeign:
		return st.foreignError()
	case kindOurs:
		if st.version > latestVersion() {
			return fmt.Errorf("%w (version %d; this program knows up to %d)", vibekit.ErrSchemaTooNew, st.version, latestVersion())
		}
	}
	return nil
}

func (st fileState) foreignError() error {
	var what string
	switch {
	case st.appID != 0:
		what = fmt.Sprintf("its application id is %#08x, another program's", st.appID)
	case len(st.tables) == 0:
		what = fmt.Sprintf("it has no tables but user_version %d", st.version)
	default:
		names := st.tables
		if len(names) > 5 {
			names = append(names[:5:5], "...")
		}
		what = "it has tables " + strings.Join(names, ", ") + ", not only the guide's telemetry table"
	}
	return fmt.Errorf("%w: %s; it was left as it is: give vibekit a database of its own (a new path), or the guide's telemetry file", ErrForeignDatabase, what)
}
