package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// originalDDL is the guide's telemetry table with mode and prompt NOT NULL,
// as the original VibeKit created it.
const originalDDL = `CREATE TABLE telemetry (
  id INTEGER PRIMARY KEY AUTOINCREMENT, sessionId TEXT, eventType TEXT, agentType TEXT,
  mode TEXT NOT NULL, prompt TEXT NOT NULL, streamData TEXT, sandboxId TEXT, repoUrl TEXT,
  metadata TEXT, timestamp INTEGER)`

// openWith creates a database whose schema starts with ddl, opens it, and
// runs then.
func openWith(t *testing.T, ddl, then string) *DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.db")
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = raw.Exec(ddl)
	raw.Close()
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{EnableIndexes: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.SQL().Exec(then); err != nil {
		t.Fatal(err)
	}
	return db
}

// refusalBatch is five stream rows of source f, one of them "bad", and a
// reject, with f's checkpoint.
func refusalBatch() *vibekit.Batch {
	b := &vibekit.Batch{Checkpoints: []vibekit.Checkpoint{{Source: "f", Kind: "file", Offset: 600, Line: 6}}, Lines: 6}
	for i, s := range []string{"a", "b", "bad", "c", "d"} {
		b.Records = append(b.Records, vibekit.Record{SessionID: "s", EventType: vibekit.EventStream, AgentType: "x", StreamData: s, Timestamp: int64(i)})
		b.RecordSources = append(b.RecordSources, "f")
		b.RecordLines = append(b.RecordLines, vibekit.LinePos{Line: int64(i + 1), Offset: int64(100 * i), Length: 99})
	}
	b.Rejects = []vibekit.Reject{{Source: "f", Line: 6, Offset: 500, Reason: "not JSON", Raw: "{", Time: 1}}
	return b
}

func streamRows(t *testing.T, db *DB) string {
	t.Helper()
	var s sql.NullString
	if err := db.SQL().QueryRow(`SELECT group_concat(streamData, ',') FROM (SELECT streamData FROM telemetry ORDER BY id)`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s.String
}

func TestWrite_OriginalSchema(t *testing.T) {
	db := openWith(t, originalDDL, "")
	b := refusalBatch()
	b.Records[0].EventType, b.Records[0].Prompt = vibekit.EventStart, "fix it" // mode empty
	w, err := db.Write(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if w.Rows != 5 || w.Refused != 0 {
		t.Fatalf("stored %d rows, refused %d; want all 5 stored", w.Rows, w.Refused)
	}
	var nulls int
	db.SQL().QueryRow(`SELECT count(*) FROM telemetry WHERE mode IS NULL OR prompt IS NULL`).Scan(&nulls)
	if nulls != 0 {
		t.Errorf("%d rows with a NULL mode or prompt", nulls)
	}
	// Readers show the '' as the empty field it stands for.
	got, err := db.GetEvents(context.Background(), vibekit.Filter{})
	if err != nil || len(got) != 5 || got[1].Mode != "" || got[1].Prompt != "" {
		t.Fatalf("GetEvents = %+v, %v", got, err)
	}
}

func TestWrite_Refused(t *testing.T) {
	for _, tc := range []struct {
		name, ddl, then, reason string
		all                     bool // the statement fails to compile: every row is refused
	}{
		{"check", `CREATE TABLE telemetry (id INTEGER PRIMARY KEY AUTOINCREMENT, sessionId TEXT, eventType TEXT, agentType TEXT,
			mode TEXT, prompt TEXT, streamData TEXT CHECK (streamData <> 'bad'), sandboxId TEXT, repoUrl TEXT, metadata TEXT, timestamp INTEGER)`,
			"", "CHECK constraint failed", false},
		{"trigger abort", `CREATE TABLE telemetry (id INTEGER PRIMARY KEY AUTOINCREMENT, sessionId TEXT, eventType TEXT, agentType TEXT,
			mode TEXT, prompt TEXT, streamData TEXT, sandboxId TEXT, repoUrl TEXT, metadata TEXT, timestamp INTEGER);
			CREATE TRIGGER t BEFORE INSERT ON telemetry WHEN NEW.streamData = 'bad' BEGIN SELECT RAISE(ABORT, 'no bad rows here'); END`,
			"", "no bad rows here", false},
		// RAISE(ROLLBACK) ends the whole transaction, not the statement.
		{"trigger rollback", `CREATE TABLE telemetry (id INTEGER PRIMARY KEY AUTOINCREMENT, sessionId TEXT, eventType TEXT, agentType TEXT,
			mode TEXT, prompt TEXT, streamData TEXT, sandboxId TEXT, repoUrl TEXT, metadata TEXT, timestamp INTEGER);
			CREATE TRIGGER t BEFORE INSERT ON telemetry WHEN NEW.streamData = 'bad' BEGIN SELECT RAISE(ROLLBACK, 'rolled back'); END`,
			"", "rolled back", false},
		// RAISE(IGNORE) keeps the row out without an error: no row may be
		// counted stored that is not.
		{"trigger ignore", `CREATE TABLE telemetry (id INTEGER PRIMARY KEY AUTOINCREMENT, sessionId TEXT, eventType TEXT, agentType TEXT,
			mode TEXT, prompt TEXT, streamData TEXT, sandboxId TEXT, repoUrl TEXT, metadata TEXT, timestamp INTEGER);
			CREATE TRIGGER t BEFORE INSERT ON telemetry WHEN NEW.streamData = 'bad' BEGIN SELECT RAISE(IGNORE); END`,
			"", "kept the row out (RAISE(IGNORE))", false},
		// A trigger whose table is gone, added to our own database: the
		// statements it runs fail as an FTS index's do in a driver without
		// the module (testdata/script/pipe_refused.txtar has that one).
		{"trigger on a missing table", "", `CREATE TABLE idx (x TEXT);
			CREATE TRIGGER t AFTER INSERT ON telemetry WHEN NEW.streamData = 'bad' BEGIN INSERT INTO idx VALUES (NEW.streamData); END;
			DROP TABLE idx`,
			"no such table: main.idx", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openWith(t, tc.ddl, tc.then)
			w, err := db.Write(context.Background(), refusalBatch())
			if err != nil {
				t.Fatal(err)
			}
			rows, refused, want := int64(4), int64(1), "a,b,c,d"
			if tc.all {
				rows, refused, want = 0, 5, ""
			}
			if w.Rows != rows || w.Refused != refused || w.Rejects != refused+1 || w.Lost != 0 {
				t.Fatalf("Written = %+v; want %d rows, %d refused, %d rejects", w, rows, refused, refused+1)
			}
			if !strings.Contains(w.Refusal, tc.reason) {
				t.Errorf("refusal %q, want the database's %q", w.Refusal, tc.reason)
			}
			if got := streamRows(t, db); got != want {
				t.Errorf("rows %q, want %q", got, want)
			}
			var (
				reason, raw  string
				line, offset int64
				source       sql.NullString
			)
			err = db.SQL().QueryRow(`SELECT reason, raw, source, line, offset FROM vk_rejects WHERE raw LIKE '%"bad"%'`).Scan(&reason, &raw, &source, &line, &offset)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(reason, tc.reason) || !strings.Contains(raw, `"streamData":"bad"`) || source.String != "f" || line != 3 || offset != 200 {
				t.Errorf("reject = %q %q %q line %d offset %d", reason, raw, source.String, line, offset)
			}
			// The offsets commit with the rows.
			var off int64
			db.SQL().QueryRow(`SELECT offset FROM vk_sources WHERE name = 'f'`).Scan(&off)
			if off != 600 {
				t.Errorf("checkpoint at %d, want 600", off)
			}
			// The spans skip the refused row: dump --source finds the four.
			var spanned int
			db.SQL().QueryRow(`SELECT count(*) FROM telemetry t JOIN vk_spans s ON t.id BETWEEN s.first_id AND s.last_id`).Scan(&spanned)
			if int64(spanned) != rows {
				t.Errorf("%d rows in spans, want %d", spanned, rows)
			}
			var counted int64
			db.SQL().QueryRow(`SELECT refused FROM vk_runs`).Scan(&counted)
			if counted != refused {
				t.Errorf("vk_runs.refused = %d, want %d", counted, refused)
			}
		})
	}
}

// TestWrite_RejectsRefusedToo: when the rejects table refuses the reject
// of a refused row as well, the row is counted lost, and the rest commits.
func TestWrite_RejectsRefusedToo(t *testing.T) {
	db := openWith(t, `CREATE TABLE telemetry (id INTEGER PRIMARY KEY AUTOINCREMENT, sessionId TEXT, eventType TEXT, agentType TEXT,
			mode TEXT, prompt TEXT, streamData TEXT CHECK (streamData <> 'bad'), sandboxId TEXT, repoUrl TEXT, metadata TEXT, timestamp INTEGER)`,
		`CREATE TRIGGER t BEFORE INSERT ON vk_rejects WHEN NEW.reason LIKE 'the database%' BEGIN SELECT RAISE(ABORT, 'no'); END`)
	w, err := db.Write(context.Background(), refusalBatch())
	if err != nil {
		t.Fatal(err)
	}
	if w.Rows != 4 || w.Refused != 1 || w.Rejects != 1 || w.Lost != 1 {
		t.Fatalf("Written = %+v; want 4 rows, 1 refused and lost, 1 reject", w)
	}
	var lost int64
	db.SQL().QueryRow(`SELECT not_stored FROM vk_runs`).Scan(&lost)
	if lost != 1 {
		t.Errorf("vk_runs.not_stored = %d, want 1", lost)
	}
}
