package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// telemetryTable is the guide's table, the statement migration/0001_init.sql
// creates it with, so the merged copy cannot drift from the live schema.
func telemetryTable() string {
	body, err := migrationFS.ReadFile("migration/0001_init.sql")
	if err != nil {
		panic(err) // embedded at build time: cannot fail
	}
	s := string(body)
	start := strings.Index(s, "CREATE TABLE IF NOT EXISTS telemetry")
	end := strings.Index(s[start:], ";")
	return s[start : start+end]
}

// Merged is a scratch database that gathers the telemetry rows of several
// databases (a live one and its unpacked archives) into one telemetry
// table, so that stats, sessions and user queries run over them as over one
// database. It holds that table only, without the query indexes, and is
// written without a journal or fsync: it lives in a private temporary
// directory for one command and is thrown away after.
type Merged struct {
	Path string
	db   *sql.DB
	conn *sql.Conn // attachments and temp tables live on one connection
}

// CreateMerged creates the scratch database at path, which must not exist.
func CreateMerged(ctx context.Context, path string) (*Merged, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create merged database: %w", err)
	}
	f.Close()
	sqldb := sql.OpenDB(connector(dsn(path, BusyTimeout, "_journal_mode=OFF&_synchronous=OFF"), `PRAGMA cache_size = -32768`))
	m := &Merged{Path: path, db: sqldb}
	if m.conn, err = sqldb.Conn(ctx); err == nil {
		_, err = m.conn.ExecContext(ctx, telemetryTable())
	}
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("create merged database: %w", err)
	}
	return m, nil
}

// CopyOptions say how Copy reads a database.
type CopyOptions struct {
	// Immutable says that nothing writes the file while it is read (an
	// unpacked archive): SQLite then takes no locks on it.
	Immutable bool
	// Wanted copies only the rows of the sessions that Want marked.
	Wanted bool
	// NoText copies prompt and streamData, most of a row's bytes, as NULL:
	// for summaries (stats, sessions), which read neither. A filter on them
	// (Contains) applies to the rows read all the same.
	NoText bool
}

// Copy adds to the merged table the telemetry rows that f selects (its
// paging and order aside) from the database at src, opened read-only. No
// row is skipped: a row whose id is there already is an error, not a row
// hidden (the caller drops the live rows that a seal moved meanwhile, see
// DropUpTo). It returns the rows added.
// ErrRepeatedIDs means rows of two files of one store share ids: a report
// over them cannot tell the copies apart.
var ErrRepeatedIDs = errors.New("rows with the same ids in two files")

func (m *Merged) Copy(ctx context.Context, src string, f vibekit.Filter, o CopyOptions) (int64, error) {
	f.Limit, f.Offset = 0, 0
	params := "mode=ro"
	if o.Immutable {
		params += "&immutable=1"
	}
	if _, err := m.conn.ExecContext(ctx, `ATTACH DATABASE ? AS src`, fileURI(src, params)); err != nil {
		return 0, fmt.Errorf("merge %s: %w", src, err)
	}
	defer m.conn.ExecContext(context.Background(), `DETACH DATABASE src`)
	var v int
	if err := m.conn.QueryRowContext(ctx, `PRAGMA src.user_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("merge %s: %w", src, err)
	}
	if v > latestVersion() {
		return 0, fmt.Errorf("merge %s: %w (version %d; this program knows up to %d)", src, vibekit.ErrSchemaTooNew, v, latestVersion())
	}
	w, args := where(&f)
	if o.Wanted {
		cond := `coalesce(sessionId, '') IN (SELECT sid FROM temp.vk_wanted)`
		if w == "" {
			w = ` WHERE ` + cond
		} else {
			w += ` AND ` + cond
		}
	}
	// The alias keeps the filter's "telemetry.id" on the attached table;
	// the tables of its source filter are found in src, as main has none.
	cols := recordColumns
	if o.NoText {
		cols = strings.NewReplacer("prompt,", "NULL,", "streamData,", "NULL,").Replace(cols)
	}
	copyFrom := func(table string) (int64, error) {
		res, err := m.conn.ExecContext(ctx, `INSERT INTO main.telemetry (`+recordColumns+`)
			SELECT `+cols+` FROM src.`+table+` AS telemetry`+w, args...)
		if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed: telemetry.id") {
			// Two files of one store hold rows with the same id: one was put
			// back from a copy (a backup of the database, an archive
			// restored over it) beside archives sealed after that copy.
			return 0, fmt.Errorf("%w: its row ids are also in another file of this store; was the database (or an archive) put back from a copy older than the archives beside it? dump --archives shows both copies; move the copy, or the archives sealed after it, away", ErrRepeatedIDs)
		}
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	if o.Immutable {
		added, err := copyFrom("telemetry")
		if err != nil {
			return 0, fmt.Errorf("merge %s: %w", src, err)
		}
		return added, nil
	}
	// A live database: read in one transaction, so that both tables are
	// read in one snapshot of it. In the middle of a seal, the rows its
	// switch moved aside are in no archive yet: they are read too. (A seal
	// that finishes after the snapshot has put its archive in place before,
	// and the caller lists archives after.)
	if _, err := m.conn.ExecContext(ctx, `BEGIN`); err != nil {
		return 0, fmt.Errorf("merge %s: %w", src, err)
	}
	added, err := func() (int64, error) {
		added, err := copyFrom("telemetry")
		if err != nil {
			return 0, err
		}
		var n int
		if err := m.conn.QueryRowContext(ctx, `SELECT count(*) FROM src.sqlite_master WHERE type = 'table' AND name = '`+SealingTable+`'`).Scan(&n); err != nil {
			return 0, err
		}
		if n > 0 {
			more, err := copyFrom(SealingTable)
			if err != nil {
				return 0, err
			}
			added += more
		}
		return added, nil
	}()
	if err != nil {
		m.conn.ExecContext(context.Background(), `ROLLBACK`)
		return 0, fmt.Errorf("merge %s: %w", src, err)
	}
	if _, err := m.conn.ExecContext(ctx, `COMMIT`); err != nil {
		return 0, fmt.Errorf("merge %s: %w", src, err)
	}
	return added, nil
}

// DropUpTo deletes the merged rows with ids up to maxID, and returns how
// many: the live rows that a seal moved into an archive after the live
// database was copied, and before the archives were listed.
func (m *Merged) DropUpTo(ctx context.Context, maxID int64) (int64, error) {
	res, err := m.conn.ExecContext(ctx, `DELETE FROM main.telemetry WHERE id <= ?`, maxID)
	if err != nil {
		return 0, fmt.Errorf("merge: %w", err)
	}
	return res.RowsAffected()
}

// Want marks the sessions that have a row from from to to (inclusive) in the
// merged table, for Copy's Wanted, and returns how many there are.
func (m *Merged) Want(ctx context.Context, from, to time.Time) (int64, error) {
	f := vibekit.Filter{From: from, To: to}
	w, args := where(&f)
	_, err := m.conn.ExecContext(ctx, `DROP TABLE IF EXISTS temp.vk_wanted`)
	if err == nil {
		_, err = m.conn.ExecContext(ctx, `CREATE TEMP TABLE vk_wanted (sid TEXT PRIMARY KEY) WITHOUT ROWID`)
	}
	var n int64
	if err == nil {
		var res sql.Result
		res, err = m.conn.ExecContext(ctx, `INSERT OR IGNORE INTO temp.vk_wanted SELECT coalesce(sessionId, '') FROM main.telemetry`+w, args...)
		if err == nil {
			n, _ = res.RowsAffected()
		}
	}
	if err != nil {
		return 0, fmt.Errorf("merge: find sessions: %w", err)
	}
	return n, nil
}

// Close closes the scratch database; its file stays for readers.
func (m *Merged) Close() error {
	var err error
	if m.conn != nil {
		err = m.conn.Close()
	}
	return errors.Join(err, m.db.Close())
}
