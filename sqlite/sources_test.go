package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

func text(s string) vibekit.Record {
	return vibekit.Record{SessionID: "s", EventType: vibekit.EventStream, AgentType: "a", StreamData: s, Timestamp: 1}
}

func TestDB_SourcesByKey(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	// A rotated file and its successor: one name, two keys, each with its
	// own checkpoint; both are found by name.
	b := &vibekit.Batch{
		Records:       []vibekit.Record{text("old-1"), text("new-1"), text("stdin-1")},
		RecordSources: []string{"/l/app.log#1", "/l/app.log#2", "stdin"},
		Checkpoints: []vibekit.Checkpoint{
			{Source: "/l/app.log", Key: "/l/app.log#1", Kind: "file", Dev: 1, Ino: 10, Fingerprint: []byte("old-1\n"), Offset: 6, Line: 1, Size: 6},
			{Source: "/l/app.log", Key: "/l/app.log#2", Kind: "file", Dev: 1, Ino: 11, Fingerprint: []byte("new-1\n"), Offset: 6, Line: 1, Size: 9},
			{Source: "stdin", Kind: "stdin", Offset: 8, Line: 1},
		},
		Lines: 3,
	}
	if _, err := db.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	b.Checkpoints = b.Checkpoints[:1]
	b.Checkpoints[0].Offset, b.Checkpoints[0].Line = 12, 2
	b.Records, b.RecordSources = []vibekit.Record{text("old-2")}, []string{"/l/app.log#1"}
	if _, err := db.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err := db.Sources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d sources, want 3: %+v", len(got), got)
	}
	if s := got[0]; s.Key != "/l/app.log#1" || s.Source != "/l/app.log" || s.Offset != 12 || s.Line != 2 || s.Ino != 10 || string(s.Fingerprint) != "old-1\n" || s.Updated == 0 {
		t.Errorf("first source = %+v", s)
	}
	if s := got[1]; s.Key != "/l/app.log#2" || s.Offset != 6 || s.Size != 9 {
		t.Errorf("second source = %+v", s)
	}
	if s := got[2]; s.Key != "stdin" || s.Source != "stdin" || s.Kind != "stdin" {
		t.Errorf("third source = %+v", s)
	}
	recs, err := db.GetEvents(ctx, vibekit.Filter{Sources: []string{"/l/app.log"}})
	if err != nil {
		t.Fatal(err)
	}
	var data []string
	for _, r := range recs {
		data = append(data, r.StreamData)
	}
	if len(data) != 3 || data[0] != "old-1" || data[1] != "new-1" || data[2] != "old-2" {
		t.Errorf("rows of /l/app.log = %q", data)
	}
}

func TestDB_MigrateSourcesKeepsSpans(t *testing.T) {
	// A version 1 file: sources keyed by name, with spans pointing at them.
	path := filepath.Join(t.TempDir(), "v1.db")
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := migrationFS.ReadFile("migration/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{string(v1), `PRAGMA user_version = 1`,
		`INSERT INTO telemetry (sessionId, eventType, agentType, streamData, timestamp) VALUES ('s', 'stream', 'a', 'x', 1)`,
		`INSERT INTO vk_sources (id, name, kind, offset, line) VALUES (7, 'stdin', 'stdin', 2, 1)`,
		`INSERT INTO vk_spans (source_id, first_id, last_id) VALUES (7, 1, 1)`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	if err := os.Chmod(path, 0o600); err != nil { // SQLite made it 0644
		t.Fatal(err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.Sources(context.Background())
	if err != nil || len(got) != 1 || got[0].Key != "stdin" || got[0].Offset != 2 {
		t.Fatalf("sources after migration = %+v, %v", got, err)
	}
	recs, err := db.GetEvents(context.Background(), vibekit.Filter{Sources: []string{"stdin"}})
	if err != nil || len(recs) != 1 {
		t.Fatalf("rows of stdin after migration = %d, %v", len(recs), err)
	}
	// Commits go on under the old row.
	b := &vibekit.Batch{Records: []vibekit.Record{text("y")}, RecordSources: []string{"stdin"},
		Checkpoints: []vibekit.Checkpoint{{Source: "stdin", Kind: "stdin", Offset: 4, Line: 2}}}
	if _, err := db.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Sources(context.Background()); len(got) != 1 || got[0].Offset != 4 {
		t.Fatalf("sources after a commit = %+v", got)
	}
}

// A file of version 5 (before birth times and reports), opened read-only as
// readers do, without migrating: sources, warnings and ingest stats read it.
func TestDB_ReadOnlyVersion5(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v5.db")
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations() {
		if m.version > 5 {
			continue
		}
		body, err := migrationFS.ReadFile("migration/" + m.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(string(body)); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{`PRAGMA user_version = 5`,
		`INSERT INTO vk_sources (key, name, kind, dev, ino, offset, line) VALUES ('k', '/a.log', 'file', 1, 2, 10, 3)`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	db, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if got, err := db.Sources(ctx); err != nil || len(got) != 1 || got[0].Offset != 10 || got[0].Birth != 0 {
		t.Errorf("sources = %+v, %v", got, err)
	}
	if got, err := db.Warnings(ctx); err != nil || len(got) != 0 {
		t.Errorf("warnings = %+v, %v", got, err)
	}
	if _, err := db.IngestStats(ctx, time.Time{}, time.Time{}); err != nil {
		t.Errorf("ingest stats: %v", err)
	}
}
