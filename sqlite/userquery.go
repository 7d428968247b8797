package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// QueryOptions control a user's SQL statement.
type QueryOptions struct {
	// Write lets the statement change the database (CREATE INDEX, DELETE,
	// ...). ATTACH, VACUUM INTO and extensions stay refused.
	Write bool
	// Timeout stops the statement after this long, the time its rows take
	// to be handed on included; 0 means no limit.
	Timeout time.Duration
	// MaxLength is the longest string, blob or row SQLite may make or read
	// (SQLITE_LIMIT_LENGTH); 0 means DefaultMaxLength.
	MaxLength int
	// MaxRowBytes bounds the strings and blobs of one result row together;
	// 0 means DefaultMaxRowBytes.
	MaxRowBytes int
	// HeapLimit, if positive, sets SQLite's hard heap limit: for the whole
	// process, not this statement only (PRAGMA hard_heap_limit). Temporary
	// data beyond it (big sorts) goes to temporary files.
	HeapLimit int64
}

// Limits of a user's statement unless QueryOptions says otherwise. A row the
// pipe stores holds one line of at most its --max-line-bytes (1 MiB by
// default) in a field: 16 MiB leaves room for rows stored with a larger
// limit, and keeps a result row's copies (SQLite's, Go's, the output's) well
// under the memory a command may use.
const (
	DefaultMaxLength   = 16 << 20
	DefaultMaxRowBytes = 32 << 20
)

// ErrRowTooBig is a result row over QueryOptions.MaxRowBytes.
var ErrRowTooBig = errors.New("result row too big")

// RefusedError is a user statement that was not run.
type RefusedError struct {
	Reason string
	// Writes is true when the statement would change the database: a
	// writable query (QueryOptions.Write) would run it.
	Writes bool
}

func (e *RefusedError) Error() string { return "refused: " + e.Reason }

// ErrQueryTimeout is a user statement stopped by QueryOptions.Timeout.
var ErrQueryTimeout = errors.New("statement ran longer than its timeout")

// sqliteRecursive is SQLITE_RECURSIVE, which go-sqlite3 does not export.
const sqliteRecursive = 33

// readPragmas are the pragmas a read-only statement may use; argPragmas of
// them take an argument (a table or index name) without changing anything.
var (
	readPragmas = map[string]bool{
		"application_id": true, "auto_vacuum": true, "collation_list": true, "compile_options": true,
		"data_version": true, "database_list": true, "encoding": true, "foreign_key_check": true,
		"foreign_key_list": true, "freelist_count": true, "function_list": true, "index_info": true,
		"index_list": true, "index_xinfo": true, "integrity_check": true, "journal_mode": true,
		"module_list": true, "page_count": true, "page_size": true, "pragma_list": true,
		"quick_check": true, "schema_version": true, "table_info": true, "table_list": true,
		"table_xinfo": true, "user_version": true,
	}
	argPragmas = map[string]bool{
		"foreign_key_check": true, "foreign_key_list": true, "index_info": true, "index_list": true,
		"index_xinfo": true, "integrity_check": true, "quick_check": true, "table_info": true,
		"table_list": true, "table_xinfo": true,
	}
)

// writePragmas are the pragmas a writable statement may set: they act on the
// connection or tidy the file, and none can make the store unreadable to our
// commands. Setting any other (user_version, application_id, schema_version,
// writable_schema, journal_mode, locking_mode, secure_delete, the heap
// limits, ...) is refused: a wrong value locks every command out, or breaks a
// guarantee such as crash safety or deleted rows being unreadable.
var writePragmas = map[string]bool{
	"analysis_limit": true, "busy_timeout": true, "cache_size": true, "case_sensitive_like": true,
	"defer_foreign_keys": true, "foreign_keys": true, "incremental_vacuum": true, "optimize": true,
	"recursive_triggers": true, "reverse_unordered_selects": true, "shrink_memory": true,
	"wal_checkpoint": true, "automatic_index": true, "cell_size_check": true,
}

// authorizer decides, while SQLite compiles a statement, which actions it
// may take. Read-only, it allows reading and a list of harmless pragmas
// only; writable, everything but attaching files and loading code.
type authorizer struct {
	write  bool
	stmt   string // the statement, for messages
	reason string // the first action denied
	writes bool   // that action would change the database
}

func (a *authorizer) check(op int, arg1, arg2, _ string) int {
	deny := func(reason string, writes bool) int {
		if a.reason == "" {
			a.reason, a.writes = reason, writes
		}
		return sqlite3.SQLITE_DENY
	}
	switch op {
	case sqlite3.SQLITE_ATTACH:
		return deny(fmt.Sprintf("ATTACH (or VACUUM INTO) %q is not allowed", arg1), false)
	case sqlite3.SQLITE_DETACH:
		return deny("DETACH is not allowed", false)
	case sqlite3.SQLITE_FUNCTION:
		switch strings.ToLower(arg2) {
		case "load_extension", "fts3_tokenizer":
			return deny(arg2+"() is not allowed", false)
		}
		return sqlite3.SQLITE_OK
	}
	if a.write {
		if op == sqlite3.SQLITE_PRAGMA && arg2 != "" && !writePragmas[strings.ToLower(arg1)] && !argPragmas[strings.ToLower(arg1)] {
			return deny(fmt.Sprintf("PRAGMA %s = %s is not allowed, even with --write: it could lock every command out of the store or break its guarantees", arg1, arg2), false)
		}
		return sqlite3.SQLITE_OK
	}
	switch op {
	case sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqliteRecursive:
		return sqlite3.SQLITE_OK
	case sqlite3.SQLITE_PRAGMA:
		name := strings.ToLower(arg1)
		if readPragmas[name] && (arg2 == "" || argPragmas[name]) {
			return sqlite3.SQLITE_OK
		}
		if arg2 != "" {
			return deny(fmt.Sprintf("PRAGMA %s = %s changes the database", arg1, arg2), true)
		}
		return deny(fmt.Sprintf("PRAGMA %s is not on the read-only list", arg1), true)
	}
	if strings.HasPrefix(arg1, "sqlite_") && strings.HasSuffix(arg1, "master") {
		// CREATE and DROP write the schema table before SQLite asks about
		// the object itself, and the first denial stops compiling: name
		// the statement instead.
		return deny(schemaVerb(a.stmt)+" changes the database schema", true)
	}
	what := actionNames[op]
	if what == "" {
		what = fmt.Sprintf("action %d", op)
	}
	if arg1 != "" {
		what += " " + arg1
	}
	return deny(what+" changes the database", true)
}

var actionNames = map[int]string{
	sqlite3.SQLITE_CREATE_INDEX: "CREATE INDEX", sqlite3.SQLITE_CREATE_TABLE: "CREATE TABLE",
	sqlite3.SQLITE_CREATE_TEMP_INDEX: "CREATE TEMP INDEX", sqlite3.SQLITE_CREATE_TEMP_TABLE: "CREATE TEMP TABLE",
	sqlite3.SQLITE_CREATE_TEMP_TRIGGER: "CREATE TEMP TRIGGER", sqlite3.SQLITE_CREATE_TEMP_VIEW: "CREATE TEMP VIEW",
	sqlite3.SQLITE_CREATE_TRIGGER: "CREATE TRIGGER", sqlite3.SQLITE_CREATE_VIEW: "CREATE VIEW",
	sqlite3.SQLITE_CREATE_VTABLE: "CREATE VIRTUAL TABLE", sqlite3.SQLITE_DELETE: "DELETE FROM",
	sqlite3.SQLITE_DROP_INDEX: "DROP INDEX", sqlite3.SQLITE_DROP_TABLE: "DROP TABLE",
	sqlite3.SQLITE_DROP_TEMP_INDEX: "DROP TEMP INDEX", sqlite3.SQLITE_DROP_TEMP_TABLE: "DROP TEMP TABLE",
	sqlite3.SQLITE_DROP_TEMP_TRIGGER: "DROP TEMP TRIGGER", sqlite3.SQLITE_DROP_TEMP_VIEW: "DROP TEMP VIEW",
	sqlite3.SQLITE_DROP_TRIGGER: "DROP TRIGGER", sqlite3.SQLITE_DROP_VIEW: "DROP VIEW",
	sqlite3.SQLITE_DROP_VTABLE: "DROP VIRTUAL TABLE", sqlite3.SQLITE_INSERT: "INSERT INTO",
	sqlite3.SQLITE_TRANSACTION: "transaction control (BEGIN, COMMIT)", sqlite3.SQLITE_UPDATE: "UPDATE",
	sqlite3.SQLITE_ALTER_TABLE: "ALTER TABLE", sqlite3.SQLITE_REINDEX: "REINDEX",
	sqlite3.SQLITE_ANALYZE: "ANALYZE", sqlite3.SQLITE_SAVEPOINT: "SAVEPOINT",
}

// UserQuery runs one SQL statement that a user wrote and calls header with
// its column names, then row with each result row (the slice is reused: copy
// what you keep). Values are nil, int64, float64, string, []byte or
// time.Time.
//
// The statement is checked before anything runs: input with more than one
// statement is refused whole, so "SELECT 1; DELETE FROM telemetry" runs
// nothing. Unless opts.Write is set, an authorizer lets it only read, and
// SQLite must report it read-only; the DB itself may also be open read-only
// (mode=ro), as the CLI opens it. ATTACH, VACUUM INTO and load_extension are
// refused either way. A refusal is a *RefusedError.
func (db *DB) UserQuery(ctx context.Context, q string, opts QueryOptions, header func([]string) error, row func([]any) error) error {
	switch statementCount(q) {
	case 0:
		return errors.New("query: no SQL statement")
	case 1:
	default:
		return &RefusedError{Reason: "more than one statement: run them one at a time"}
	}
	if opts.Write && db.readOnly {
		return errors.New("query: the database is open read-only")
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, opts.Timeout, ErrQueryTimeout)
		defer cancel()
	}
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	defer conn.Close()
	auth := &authorizer{write: opts.Write, stmt: q}
	err = conn.Raw(func(dc any) error {
		c := dc.(*sqlite3.SQLiteConn)
		// The limits bound what one statement can make; the connection goes
		// back to the pool with its own.
		maxLen := opts.MaxLength
		if maxLen <= 0 {
			maxLen = DefaultMaxLength
		}
		prevLen := c.SetLimit(sqlite3.SQLITE_LIMIT_LENGTH, maxLen)
		defer c.SetLimit(sqlite3.SQLITE_LIMIT_LENGTH, prevLen)
		if opts.HeapLimit > 0 {
			if _, err := c.ExecContext(ctx, fmt.Sprintf(`PRAGMA hard_heap_limit = %d`, opts.HeapLimit), nil); err != nil {
				return fmt.Errorf("set the heap limit: %w", err)
			}
		}
		c.RegisterAuthorizer(auth.check)
		defer c.RegisterAuthorizer(nil)
		// Prepare compiles the first statement only; the count above made
		// sure there is no other.
		st, err := c.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		defer st.Close()
		s := st.(*sqlite3.SQLiteStmt)
		if !opts.Write && !s.Readonly() {
			return &RefusedError{Reason: "the statement changes the database", Writes: true}
		}
		if n := s.NumInput(); n > 0 {
			return fmt.Errorf("the statement has %d parameters, and a query takes none", n)
		}
		rows, err := s.QueryContext(ctx, nil)
		if err != nil {
			return err
		}
		defer rows.Close()
		cols := rows.Columns()
		if err := header(cols); err != nil {
			return err
		}
		maxRow := opts.MaxRowBytes
		if maxRow <= 0 {
			maxRow = DefaultMaxRowBytes
		}
		dest := make([]driver.Value, len(cols))
		vals := make([]any, len(cols))
		for {
			// Writing rows out counts against the timeout too.
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := rows.Next(dest); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
			size := 0
			for i, v := range dest {
				vals[i] = v
				switch v := v.(type) {
				case string:
					size += len(v)
				case []byte:
					size += len(v)
				}
			}
			if size > maxRow {
				return fmt.Errorf("%w: %d bytes, over the limit of %d", ErrRowTooBig, size, maxRow)
			}
			if err := row(vals); err != nil {
				return err
			}
		}
	})
	if err != nil {
		var re *RefusedError
		if errors.As(err, &re) {
			return err
		}
		if auth.reason != "" {
			// Denied while running: VACUUM INTO attaches its file then.
			return &RefusedError{Reason: auth.reason, Writes: auth.writes}
		}
		if errors.Is(context.Cause(ctx), ErrQueryTimeout) {
			return fmt.Errorf("query: %w (%v)", ErrQueryTimeout, opts.Timeout)
		}
		if se, ok := errors.AsType[sqlite3.Error](err); ok {
			switch se.Code {
			case sqlite3.ErrTooBig:
				return fmt.Errorf("query: %w (a string, blob or row may be at most %d bytes)", err, maxLength(opts))
			case sqlite3.ErrNomem:
				if opts.HeapLimit <= 0 {
					break
				}
				return fmt.Errorf("query: %w (SQLite's memory is limited to %d MiB)", err, opts.HeapLimit>>20)
			}
		}
		return fmt.Errorf("query: %w", err)
	}
	return nil
}

// schemaVerb returns the leading keywords of a statement that changes the
// schema, such as "CREATE INDEX" or "DROP TABLE".
func schemaVerb(q string) string {
	var words []string
words:
	for _, w := range strings.FieldsFunc(q, func(r rune) bool { return r > 0x7f || !isIdentChar(byte(r)) }) {
		w = strings.ToUpper(w)
		switch w {
		case "CREATE", "DROP", "ALTER", "TABLE", "INDEX", "VIEW", "TRIGGER", "TEMP", "TEMPORARY", "UNIQUE", "VIRTUAL":
			words = append(words, w)
			continue
		}
		break words
	}
	if len(words) == 0 {
		return "the statement"
	}
	return strings.Join(words, " ")
}

func maxLength(o QueryOptions) int {
	if o.MaxLength > 0 {
		return o.MaxLength
	}
	return DefaultMaxLength
}
