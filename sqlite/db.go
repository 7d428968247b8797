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
	"syscall"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	vibekit "github.com/vibekit/vibekit-pipe"
)

//go:embed migration/*.sql
var migrationFS embed.FS

// The indexes the guide lists, plus eventType, which the original also had.
var indexes = []struct{ name, def string }{
	{"idx_timestamp", "telemetry(timestamp)"},
	// The rows that carry usage, with what a usage report reads of them, so
	// that a report reads this index and not the rows' text.
	{"idx_usage", "telemetry(timestamp, id, sessionId, agentType, " + metadataKeyExpr(vibekit.UsageKey) + ") WHERE " + metadataKeyCond(vibekit.UsageKey)},
	{"idx_session", "telemetry(sessionId)"},
	{"idx_agent_type", "telemetry(agentType)"},
	{"idx_event_type", "telemetry(eventType)"},
}

// BusyTimeout is how long one statement waits for another process's lock
// before SQLite reports SQLITE_BUSY; writers retry beyond it.
const BusyTimeout = 5 * time.Second

// ApplicationID marks a database as ours (PRAGMA application_id): "VKTP",
// for VibeKit telemetry pipe. Open refuses to write to a file carrying any
// other, and readers refuse one too.
const ApplicationID = 0x564b5450

// LockNotice is how long Open waits for another process's lock before it
// tells Options.Waiting.
const LockNotice = 3 * time.Second

// openTry is how long one attempt of Open waits for a lock inside SQLite
// before Open itself waits and tries again: short, so that Open notices a
// cancelled context and tells Waiting on time.
const openTry = time.Second

// ErrForeignDatabase is the error of opening for writing a database that is
// neither ours, nor empty, nor the guide's bare telemetry file: writing our
// tables into another program's file would damage it.
var ErrForeignDatabase = errors.New("not a vibekit telemetry database")

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
	// Waiting, if set, is called once, from Open's goroutine, when Open has
	// waited WaitNotice for another process's lock on the database, so that
	// the program can say so; Open goes on waiting.
	Waiting func()
	// WaitNotice is when Waiting is called; zero means LockNotice.
	WaitNotice time.Duration
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
	runID      int64 // this process's vk_runs row, once committed
	// pendingLost counts rows given up on since the last commit, which
	// adds them to the run's not_stored counter.
	pendingLost int64
	busy        time.Duration // the connections' busy timeout
	commitWait  time.Duration // a commit's, if shorter (SetCommitWait)
	held        *heldFile     // the file's descriptor, held while the DB is open (see holdFile)
	claimer     claimOwner    // this process in vk_claims
	claimedAny  atomic.Bool   // a claim was made: Close lets go of them
	lastBeat    atomic.Int64  // Unix ms of the last renewal of the claims
}

// Open opens the database at path for writing, as OpenContext does, with a
// context that is never cancelled: it waits for another process's lock for
// as long as that process holds it.
func Open(path string, opts Options) (*DB, error) {
	return OpenContext(context.Background(), path, opts)
}

// OpenContext opens the database at path for writing, creating it (0600)
// and its directory (0700) if needed, and brings its schema up to date in
// one transaction. It refuses files another user could have planted
// (ErrUntrusted) and other programs' databases (ErrForeignDatabase), and
// changes neither. While another process holds the database's write lock it
// waits, as commits do, until the lock frees or ctx is done.
func OpenContext(ctx context.Context, path string, opts Options) (*DB, error) {
	if path == "" {
		return nil, errors.New("open database: empty path")
	}
	dir := filepath.Dir(path)
	// The directories created here are ours and private; checkPath then
	// vets the one the database lives in, created now or not.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	// Create the file ourselves so it is private from the first byte; SQLite
	// gives the WAL and shared-memory files the same mode. The descriptor is
	// held until Close.
	h, err := hold(path, dir, true)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = BusyTimeout
	}
	// No journal mode in the DSN: WAL mode is set by prepare, only once the
	// file is known to be ours, and it persists in the file.
	writerDSN := dsn(path, busy, "_txlock=immediate&_synchronous=NORMAL")
	// Checkpoints run in the background (see checkpointer); the writer's own
	// automatic checkpoint is a backstop that bounds the WAL at 64 MiB.
	// secure_delete FAST: a page that is written anyway is written without
	// the bytes of rows deleted from it, and a page put to a new use starts
	// blank, at no extra I/O; so no stale copy of a row lingers in the
	// unused space of a live page, nor in the archive a seal makes of it
	// (whose free pages the seal clears).
	sqldb := sql.OpenDB(connector(writerDSN, `PRAGMA wal_autocheckpoint = 16384; PRAGMA journal_size_limit = 67108864; PRAGMA secure_delete = FAST`))
	// One connection: a process writes through one, and SQLite serialises
	// writers anyway. It keeps per-connection pragmas in force.
	sqldb.SetMaxOpenConns(1)
	db := &DB{Path: path, db: sqldb, now: opts.Now, sourceIDs: map[string]int64{}, held: h, busy: busy, claimer: newClaimOwner()}
	if db.now == nil {
		db.now = time.Now
	}
	err = db.prepare(ctx, busy, opts)
	if err == nil {
		// SQLite has created the WAL and shared-memory files by now: in a
		// directory others may add to (/tmp), check they are the ones it made.
		err = checkSidecars(path)
	}
	if err != nil {
		sqldb.Close()
		h.release()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db.ckpt = startCheckpointer(sql.OpenDB(connector(writerDSN, "")))
	return db, nil
}

// hold checks the database file at path, its sidecars and its directory,
// and returns the file's held descriptor, itself checked too (the name may
// have changed between the look and the open).
func hold(path, dir string, create bool) (*heldFile, error) {
	if err := checkPath(path, dir); err != nil {
		return nil, err
	}
	h, err := holdFile(path, create)
	if errors.Is(err, syscall.ELOOP) {
		return nil, symlinkError(path)
	}
	if err != nil {
		return nil, err
	}
	fi, err := h.f.Stat()
	if err == nil {
		err = checkFile(path, fi)
	}
	if err != nil {
		h.release()
		return nil, err
	}
	return h, nil
}

// prepare migrates the database and sets WAL mode on the writer's
// connection, trying again while another process holds a lock, with the
// backoff of a commit (internal/cli's writer), until ctx is done.
func (db *DB) prepare(ctx context.Context, busy time.Duration, opts Options) error {
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	notice := opts.WaitNotice
	if notice <= 0 {
		notice = LockNotice
	}
	began, told := time.Now(), false
	for backoff := 10 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		err = db.prepareOnce(ctx, conn, opts.EnableIndexes)
		if err == nil || !IsBusy(err) {
			break
		}
		if !told && opts.Waiting != nil && time.Since(began) >= notice {
			opts.Waiting()
			told = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for another process's lock: %w (%v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
	}
	if err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, busy.Milliseconds()))
	return err
}

// prepareOnce is one attempt of prepare.
func (db *DB) prepareOnce(ctx context.Context, conn *sql.Conn, enableIndexes bool) error {
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, openTry.Milliseconds())); err != nil {
		return err
	}
	if err := migrate(ctx, conn, enableIndexes); err != nil {
		return err
	}
	// After the migration's commit, never before: a file refused, or a
	// migration that failed, keeps its journal mode. Setting WAL mode fails
	// at once, without the busy timeout, while another connection reads a
	// new file in rollback mode: prepare tries again.
	var mode string
	if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode); err != nil {
		return fmt.Errorf("set WAL mode: %w", err)
	}
	if mode != "wal" {
		return fmt.Errorf("set WAL mode: the database stays in %s mode", mode)
	}
	return nil
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
// change the file (DESIGN invariant 5). It refuses the files Open refuses
// (ErrUntrusted), and a database with another program's application id.
func OpenReadOnly(path string) (*DB, error) {
	if _, err := os.Lstat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open database %s: no such file (vibekit-pipe creates it; --db names another)", path)
		}
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	h, err := hold(path, filepath.Dir(path), false)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	sqldb := sql.OpenDB(connector(dsn(path, BusyTimeout, "mode=ro&_query_only=1"), ""))
	db, err := checkReadable(&DB{Path: path, db: sqldb, readOnly: true, now: time.Now, held: h})
	if err == nil {
		// A reader that is the first to open a WAL database creates its
		// shared-memory file: check it as Open does.
		if err = checkSidecars(path); err != nil {
			db.Close()
			return nil, fmt.Errorf("open database %s: %w", path, err)
		}
	}
	return db, err
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

// checkReadable refuses a database from a newer version or of another
// program, and closes it.
func checkReadable(db *DB) (*DB, error) {
	var appID int64
	v, err := db.userVersion()
	if err == nil {
		err = db.db.QueryRow(`PRAGMA application_id`).Scan(&appID)
	}
	switch {
	case err != nil:
	case appID != 0 && appID != ApplicationID:
		err = fileState{kind: kindForeign, appID: appID}.foreignError()
	case v > latestVersion():
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

// migrate brings the database's schema up to date in one transaction: the
// pending migrations, user_version, the application id and the query
// indexes all commit together, or nothing does. The transaction is
// immediate, so the file is looked at under the write lock it is changed
// under: a file that another process is creating at the same moment is
// seen before or after, never half-made.
func migrate(ctx context.Context, conn *sql.Conn, enableIndexes bool) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := readState(ctx, tx)
	if err != nil {
		return err
	}
	if err := st.writable(); err != nil {
		return err
	}
	for _, m := range migrations() {
		if m.version <= st.version {
			continue
		}
		body, err := migrationFS.ReadFile("migration/" + m.name)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	if st.version != latestVersion() {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, latestVersion())); err != nil {
			return err
		}
	}
	if st.appID != ApplicationID {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA application_id = %d`, ApplicationID)); err != nil {
			return err
		}
	}
	if err := setIndexes(ctx, tx, enableIndexes); err != nil {
		return err
	}
	return tx.Commit()
}

func setIndexes(ctx context.Context, tx *sql.Tx, enable bool) error {
	for _, ix := range indexes {
		q := `DROP INDEX IF EXISTS ` + ix.name
		if enable {
			q = `CREATE INDEX IF NOT EXISTS ` + ix.name + ` ON ` + ix.def
		}
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("index %s: %w", ix.name, err)
		}
	}
	return nil
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

// IsBusy reports whether err is SQLite's "database is locked" (or busy):
// another connection holds the lock, and trying again later may succeed.
func IsBusy(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked
	}
	return false
}

// IsPermanent reports whether err is an error that trying the same write
// again cannot cure: the database refuses what is written (a NOT NULL or
// CHECK constraint of its schema, a trigger that fails or calls a module
// this program lacks, a value too big or of the wrong type). Locks, a full
// disk and I/O errors are transient.
func IsPermanent(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case sqlite3.ErrError, sqlite3.ErrConstraint, sqlite3.ErrMismatch, sqlite3.ErrTooBig, sqlite3.ErrRange, sqlite3.ErrAuth:
		return true
	}
	return false
}

// sqliteMessage is the database's own message in err.
func sqliteMessage(err error) string {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Error()
	}
	return err.Error()
}
