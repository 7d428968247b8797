// Package sqlite is the telemetry store: one SQLite file in WAL mode holding the
// guide's telemetry table beside our own tables for sources, rejects and runs.
// It opens, migrates, writes batches in one transaction each, and queries.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	vibekit "github.com/vibekit/vibekit-pipe"
)

//go:embed migration/*.sql
var migrationFS embed.FS

// The indexes the guide lists, plus eventType, which the original also had.
var indexes = []struct{ name, def string }{
	{"idx_timestamp", "telemetry(timestamp)"},
	{"idx_session", "telemetry(sessionId)"},
	{"idx_agent_type", "telemetry(agentType)"},
	{"idx_event_type", "telemetry(eventType)"},
}

// BusyTimeout is how long one statement waits for another process's lock
// before SQLite reports SQLITE_BUSY; writers retry beyond it.
const BusyTimeout = 5 * time.Second

// Options are the settings of a writable store.
type Options struct {
	// EnableIndexes creates the query indexes; false drops them, for
	// write-heavy use (the guide's enableIndexes).
	EnableIndexes bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// BusyTimeout is how long a statement waits for another writer's lock
	// before failing with SQLITE_BUSY; zero means BusyTimeout.
	BusyTimeout time.Duration
}

// DB is an open telemetry database.
type DB struct {
	Path     string
	db       *sql.DB
	readOnly bool
	now      func() time.Time

	insert     driver.Stmt // prepared on insertConn
	insertConn *sqlite3.SQLiteConn
	sourceIDs  map[string]int64 // committed vk_sources ids by key
	ckpt       *checkpointer
	runID      int64        // this process's vk_runs row, once committed
	held       *heldFile    // the file's descriptor, held while the DB is open (see holdFile)
	claimer    claimOwner   // this process in vk_claims
	claimedAny atomic.Bool  // a claim was made: Close lets go of them
	lastBeat   atomic.Int64 // Unix ms of the last renewal of the claims
}

// Open opens the database at path for writing, creating it (0600) and its
// directory (0700) if needed, and brings its schema up to date.
func Open(path string, opts Options) (*DB, error) {
	if path == "" {
		return nil, errors.New("open database: empty path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	// Create the file ourselves so it is private from the first byte; SQLite
	// gives the WAL and shared-memory files the same mode. The descriptor is
	// held until Close.
	h, err := holdFile(path, true)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// Checkpoints run in the background (see checkpointer); the writer's own
	// automatic checkpoint is a backstop that bounds the WAL at 64 MiB.
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = BusyTimeout
	}
	writerDSN := dsn(path, busy, "_txlock=immediate&_journal_mode=WAL&_synchronous=NORMAL")
	// secure_delete FAST: a page that is written anyway is written without
	// the bytes of rows deleted from it, and a page put to a new use starts
	// blank, at no extra I/O; so no stale copy of a row lingers in the
	// unused space of a live page, nor in the archive a seal makes of it
	// (whose free pages the seal clears).
	sqldb := sql.OpenDB(connector(writerDSN, `PRAGMA wal_autocheckpoint = 16384; PRAGMA journal_size_limit = 67108864; PRAGMA secure_delete = FAST`))
	// One connection: a process writes through one, and SQLite serialises
	// writers anyway. It keeps per-connection pragmas in force.
	sqldb.SetMaxOpenConns(1)
	db := &DB{Path: path, db: sqldb, now: opts.Now, sourceIDs: map[string]int64{}, held: h, claimer: newClaimOwner()}
	if db.now == nil {
		db.now = time.Now
	}
	// Connecting sets WAL mode, which fails at once, without waiting for the
	// busy timeout, while another process is creating the same file: retry.
	err = retryBusy(busy, sqldb.Ping)
	if err == nil {
		err = retryBusy(busy, func() error { return db.migrate(opts.EnableIndexes) })
	}
	if err != nil {
		sqldb.Close()
		h.release()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db.ckpt = startCheckpointer(sql.OpenDB(connector(writerDSN, "")))
	return db, nil
}

// connector opens go-sqlite3 connections to dsn and runs pragmas on each.
func connector(dsn, pragmas string) driver.Connector {
	drv := &sqlite3.SQLiteDriver{}
	if pragmas != "" {
		drv.ConnectHook = func(c *sqlite3.SQLiteConn) error {
			_, err := c.Exec(pragmas, nil)
			return err
		}
	}
	return &sqliteConnector{dsn: dsn, drv: drv}
}

type sqliteConnector struct {
	dsn string
	drv *sqlite3.SQLiteDriver
}

func (c *sqliteConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c *sqliteConnector) Driver() driver.Driver                        { return c.drv }

// OpenReadOnly opens an existing database for reading. Nothing it does can
// change the file (DESIGN invariant 5).
func OpenReadOnly(path string) (*DB, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open database %s: no such file (vibekit-pipe creates it; --db names another)", path)
		}
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	h, err := holdFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	sqldb := sql.OpenDB(connector(dsn(path, BusyTimeout, "mode=ro&_query_only=1"), ""))
	return checkReadable(&DB{Path: path, db: sqldb, readOnly: true, now: time.Now, held: h})
}

// OpenPrivate opens for reading a database file that nothing writes while
// it is open: an unpacked archive or a merged database, each in a private
// directory. SQLite then takes no locks on it
// and never looks for a journal (immutable). A file others may write is
// opened with OpenReadOnly. (Mapping it into memory instead of reading it
// was no faster, and counted its pages in the process's RSS.)
func OpenPrivate(path string) (*DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	sqldb := sql.OpenDB(connector(dsn(path, BusyTimeout, "mode=ro&immutable=1&_query_only=1"), ""))
	return checkReadable(&DB{Path: path, db: sqldb, readOnly: true, now: time.Now})
}

// checkReadable refuses a database from a newer version, and closes it.
func checkReadable(db *DB) (*DB, error) {
	v, err := db.userVersion()
	if err == nil && v > latestVersion() {
		err = fmt.Errorf("%w (version %d; this program knows up to %d)", vibekit.ErrSchemaTooNew, v, latestVersion())
	}
	if err != nil {
		db.db.Close()
		db.held.release()
		return nil, fmt.Errorf("open database %s: %w", db.Path, err)
	}
	return db, nil
}

// dsn builds a go-sqlite3 URI for path. SQLite URIs give '?', '#' and '%' a
// meaning, so those are escaped in the path.
func dsn(path string, busy time.Duration, params string) string {
	return fileURI(path, "_busy_timeout="+strconv.Itoa(int(busy/time.Millisecond))+"&"+params)
}

// fileURI is the SQLite URI of path with the query params.
func fileURI(path, params string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return "file:" + r.Replace(path) + "?" + params
}

// Close closes the database. With WAL, the last connection to close
// checkpoints and removes the WAL file.
func (db *DB) Close() error {
	var cerr error
	if db.claimedAny.Load() {
		// Whatever this process still claims is let go, after its last commit.
		cerr = db.ReleaseClaims(context.Background())
	}
	if db.ckpt != nil {
		db.ckpt.close()
		db.ckpt = nil
	}
	if db.insert != nil {
		// Finalize the statement before its connection closes.
		db.insert.Close()
		db.insert = nil
	}
	err := db.db.Close()
	if rerr := db.held.release(); err == nil {
		err = rerr
	}
	if err == nil {
		err = cerr
	}
	db.held = nil
	return err
}

// SQL returns the underlying handle, for maintenance and user queries.
func (db *DB) SQL() *sql.DB { return db.db }

func (db *DB) userVersion() (int, error) {
	var v int
	err := db.db.QueryRow(`PRAGMA user_version`).Scan(&v)
	return v, err
}

type migration struct {
	version int
	name    string
}

func migrations() []migration {
	entries, err := migrationFS.ReadDir("migration")
	if err != nil {
		panic(err) // embedded at build time: cannot fail
	}
	var ms []migration
	for _, e := range entries {
		n, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
		if err != nil {
			panic(fmt.Sprintf("migration %s: name must start with its version", e.Name()))
		}
		ms = append(ms, migration{n, e.Name()})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms
}

func latestVersion() int {
	ms := migrations()
	return ms[len(ms)-1].version
}

// migrate applies the migrations newer than the file's user_version, each in
// its own transaction, and then creates or drops the query indexes.
func (db *DB) migrate(enableIndexes bool) error {
	v, err := db.userVersion()
	if err != nil {
		return err
	}
	if v > latestVersion() {
		return fmt.Errorf("%w (version %d; this program knows up to %d)", vibekit.ErrSchemaTooNew, v, latestVersion())
	}
	for _, m := range migrations() {
		if m.version <= v {
			continue
		}
		body, err := migrationFS.ReadFile("migration/" + m.name)
		if err != nil {
			return err
		}
		if err := db.inTx(context.Background(), func(tx *sql.Tx) error {
			// Another process may have applied it since user_version was
			// read: ALTER TABLE cannot run twice.
			var now int
			if err := tx.QueryRow(`PRAGMA user_version`).Scan(&now); err != nil || now >= m.version {
				return err
			}
			if _, err := tx.Exec(string(body)); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			_, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, m.version))
			return err
		}); err != nil {
			return err
		}
	}
	return db.setIndexes(enableIndexes)
}

func (db *DB) setIndexes(enable bool) error {
	return db.inTx(context.Background(), func(tx *sql.Tx) error {
		for _, ix := range indexes {
			q := `DROP INDEX IF EXISTS ` + ix.name
			if enable {
				q = `CREATE INDEX IF NOT EXISTS ` + ix.name + ` ON ` + ix.def
			}
			if _, err := tx.Exec(q); err != nil {
				return fmt.Errorf("index %s: %w", ix.name, err)
			}
		}
		return nil
	})
}

// inTx runs fn in a transaction and commits it, or rolls it back on error.
func (db *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// retryBusy calls fn until it succeeds, fails with an error other than
// SQLITE_BUSY, or timeout has passed, waiting longer after each try.
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

// IsBusy reports whether err is SQLite's "database is locked" (or busy):
// another connection holds the lock, and trying again later may succeed.
func IsBusy(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked
	}
	return false
}
