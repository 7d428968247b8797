package sqlite

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestStatementCount(t *testing.T) {
	tests := []struct {
		q    string
		want int
	}{
		{"", 0},
		{" ;; -- nothing\n/* at all */", 0},
		{"SELECT 1", 1},
		{"SELECT 1;", 1},
		{"SELECT 1; ", 1},
		{"SELECT 1; -- trailing comment", 1},
		{"SELECT 1; DELETE FROM telemetry", 2},
		{"SELECT 1;DELETE FROM telemetry;", 2},
		{"SELECT ';' AS semi", 1},
		{"SELECT 'it''s; fine'", 1},
		{`SELECT "a;b" FROM t`, 1},
		{"SELECT `a;b` FROM t", 1},
		{"SELECT [a;b] FROM t", 1},
		{"SELECT 1 -- ; DELETE\n", 1},
		{"SELECT 1 /* ; DELETE */", 1},
		{"SELECT 1 /* unterminated ; DELETE", 1},
		{"SELECT 'unterminated ; DELETE", 1},
		{"SELECT x'00'; SELECT 2", 2},
		{"SELECT 'é;'; SELECT 2", 2},
		{"CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a = 1; SELECT CASE WHEN 1 THEN 2 END; END", 1},
		{"CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM t; END; SELECT 1", 2},
		{"SELECT end FROM t; SELECT 2", 2},
	}
	for _, tt := range tests {
		if got := statementCount(tt.q); got != tt.want {
			t.Errorf("statementCount(%q) = %d, want %d", tt.q, got, tt.want)
		}
	}
}

// fileHash hashes the database and its WAL (a missing WAL hashes as empty).
func fileHash(tb testing.TB, path string) [32]byte {
	tb.Helper()
	h := sha256.New()
	for _, p := range []string{path, path + "-wal"} {
		data, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			tb.Fatal(err)
		}
		h.Write(data)
		h.Write([]byte{0})
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// runQuery collects a user query's columns and rows.
func runQuery(db *DB, q string, opts QueryOptions) ([]string, [][]any, error) {
	var cols []string
	var rows [][]any
	err := db.UserQuery(context.Background(), q, opts,
		func(c []string) error { cols = c; return nil },
		func(v []any) error { rows = append(rows, append([]any(nil), v...)); return nil })
	return cols, rows, err
}

func TestDB_UserQuery(t *testing.T) {
	w := MustOpen(t)
	MustCommit(t, w, fixture())
	path := w.Path
	w.Close()
	db, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	before := fileHash(t, path)

	t.Run("read", func(t *testing.T) {
		cols, rows, err := runQuery(db, "SELECT agentType, COUNT(*) AS n, 1.5, NULL, x'00ff' FROM telemetry GROUP BY agentType ORDER BY 1", QueryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := cols, []string{"agentType", "n", "1.5", "NULL", "x'00ff'"}; !reflect.DeepEqual(got, want) {
			t.Errorf("columns = %q, want %q", got, want)
		}
		want := [][]any{{"claude", int64(5), 1.5, nil, []byte{0, 0xff}}, {"codex", int64(2), 1.5, nil, []byte{0, 0xff}}}
		if !reflect.DeepEqual(rows, want) {
			t.Errorf("rows = %#v, want %#v", rows, want)
		}
	})
	t.Run("read-only pragmas and recursion", func(t *testing.T) {
		for _, q := range []string{
			"PRAGMA table_info(telemetry)",
			"SELECT name FROM pragma_table_info('telemetry')",
			"PRAGMA user_version",
			"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3) SELECT x FROM c",
			"SELECT json_extract(metadata, '$.status') FROM telemetry",
		} {
			if _, _, err := runQuery(db, q, QueryOptions{}); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	})
	refused := []struct {
		q      string
		reason string // substring of the refusal
		writes bool
	}{
		{"DELETE FROM telemetry", "DELETE FROM telemetry", true},
		{"UPDATE telemetry SET agentType = 'x'", "UPDATE telemetry", true},
		{"INSERT INTO telemetry (sessionId) VALUES ('x')", "INSERT INTO telemetry", true},
		{"DROP TABLE telemetry", "DROP TABLE changes the database schema", true},
		{"CREATE INDEX idx_custom ON telemetry(agentType, timestamp)", "CREATE INDEX", true},
		{"CREATE TEMP TABLE x(a)", "CREATE TEMP TABLE", true},
		{"PRAGMA user_version = 99", "PRAGMA user_version = 99", true},
		{"PRAGMA wal_checkpoint", "PRAGMA wal_checkpoint", true},
		{"BEGIN", "transaction", true},
		{"ANALYZE", "changes", true},
		{"ATTACH DATABASE '" + path + ".other' AS other", "ATTACH", false},
		{"VACUUM INTO '" + path + ".copy'", "changes the database", true},
		{"SELECT load_extension('/tmp/evil.so')", "load_extension", false},
		{"SELECT 1; DELETE FROM telemetry", "more than one statement", false},
		{"SELECT 1; ATTACH '" + path + ".x' AS x", "more than one statement", false},
	}
	for _, tt := range refused {
		t.Run("refuse "+tt.q, func(t *testing.T) {
			rowsSeen := 0
			err := db.UserQuery(context.Background(), tt.q, QueryOptions{}, func([]string) error { return nil },
				func([]any) error { rowsSeen++; return nil })
			var re *RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("error = %v, want a refusal", err)
			}
			if !strings.Contains(re.Reason, tt.reason) || re.Writes != tt.writes {
				t.Errorf("refusal = %q (writes %v), want %q (writes %v)", re.Reason, re.Writes, tt.reason, tt.writes)
			}
			if rowsSeen != 0 {
				t.Errorf("a refused query gave %d rows", rowsSeen)
			}
		})
	}
	if after := fileHash(t, path); after != before {
		t.Error("the database's bytes changed")
	}
	for _, p := range []string{path + ".other", path + ".copy", path + ".x"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was created", p)
		}
	}

	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		_, _, err := runQuery(db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c", QueryOptions{Timeout: 100 * time.Millisecond})
		if !errors.Is(err, ErrQueryTimeout) {
			t.Fatalf("error = %v, want ErrQueryTimeout", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("stopped after %v", d)
		}
	})
	t.Run("write on a read-only database", func(t *testing.T) {
		if _, _, err := runQuery(db, "CREATE INDEX i ON telemetry(mode)", QueryOptions{Write: true}); err == nil {
			t.Error("no error")
		}
	})
	t.Run("empty", func(t *testing.T) {
		if _, _, err := runQuery(db, " -- nothing", QueryOptions{}); err == nil {
			t.Error("no error")
		}
	})
}

func TestDB_UserQuery_Write(t *testing.T) {
	db := MustOpen(t)
	MustCommit(t, db, fixture())
	if _, _, err := runQuery(db, "CREATE INDEX idx_custom ON telemetry(agentType, timestamp)", QueryOptions{Write: true}); err != nil {
		t.Fatal(err)
	}
	_, rows, err := runQuery(db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'idx_custom'", QueryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rows[0][0]; got != int64(1) {
		t.Errorf("index count = %v, want 1", got)
	}
	// Writable still refuses attaching files and loading code.
	for _, q := range []string{"ATTACH '" + db.Path + ".other' AS other", "SELECT load_extension('x')", "VACUUM INTO '" + db.Path + ".copy'"} {
		var re *RefusedError
		if _, _, err := runQuery(db, q, QueryOptions{Write: true}); !errors.As(err, &re) {
			t.Errorf("%s: error = %v, want a refusal", q, err)
		}
	}
	for _, p := range []string{db.Path + ".other", db.Path + ".copy"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was created", p)
		}
	}
}
