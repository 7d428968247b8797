package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

func TestOpen_PrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "t.db")
	db, err := Open(path, Options{EnableIndexes: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Commit(context.Background(), &vibekit.Batch{Records: []vibekit.Record{{SessionID: "s", EventType: vibekit.EventStart}}}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, path: 0o600, path + "-wal": 0o600, path + "-shm": 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != want {
			t.Errorf("%s: mode %v, want %v", filepath.Base(p), got, want)
		}
	}
}

func TestOpen_Schema(t *testing.T) {
	db := MustOpen(t)
	var names []string
	rows, err := db.SQL().Query(`SELECT name FROM pragma_table_info('telemetry') ORDER BY cid`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	rows.Close()
	want := []string{"id", "sessionId", "eventType", "agentType", "mode", "prompt", "streamData", "sandboxId", "repoUrl", "metadata", "timestamp"}
	if len(names) != len(want) {
		t.Fatalf("columns = %v, want the guide's %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("columns = %v, want the guide's %v", names, want)
		}
	}
	var mode string
	db.SQL().QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	if mode != "wal" {
		t.Errorf("journal_mode = %s, want wal", mode)
	}
	for _, ix := range indexes {
		var n int
		db.SQL().QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?`, ix.name).Scan(&n)
		if n != 1 {
			t.Errorf("index %s missing", ix.name)
		}
	}
	// enableIndexes false drops them.
	db.Close()
	db2, err := Open(db.Path, Options{EnableIndexes: false})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	var n int
	db2.SQL().QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'idx_%'`).Scan(&n)
	if n != 0 {
		t.Errorf("%d idx_ indexes left with EnableIndexes false", n)
	}
}

func TestOpen_NewerSchemaRefused(t *testing.T) {
	db := MustOpen(t)
	if _, err := db.SQL().Exec(`PRAGMA user_version = 999`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(db.Path, Options{}); !errors.Is(err, vibekit.ErrSchemaTooNew) {
		t.Errorf("Open: err = %v, want ErrSchemaTooNew", err)
	}
	if _, err := OpenReadOnly(db.Path); !errors.Is(err, vibekit.ErrSchemaTooNew) {
		t.Errorf("OpenReadOnly: err = %v, want ErrSchemaTooNew", err)
	}
}

func TestOpenReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.db")
	if _, err := OpenReadOnly(path); err == nil {
		t.Fatal("OpenReadOnly of a missing file succeeded")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenReadOnly created %s", path)
	}
	db := MustOpen(t)
	db.Close()
	ro, err := OpenReadOnly(db.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.SQL().Exec(`DELETE FROM telemetry`); err == nil {
		t.Error("a read-only database accepted a DELETE")
	}
	if _, err := ro.Commit(context.Background(), &vibekit.Batch{}); err == nil {
		t.Error("a read-only database accepted a commit")
	}
}

func TestCommit_AllOrNothing(t *testing.T) {
	db := MustOpen(t)
	ctx := context.Background()
	// A trigger makes the checkpoint fail after the rows were inserted: a
	// refused row would be kept as a reject, but a refused checkpoint
	// fails the whole batch.
	if _, err := db.SQL().Exec(`CREATE TRIGGER fail BEFORE UPDATE ON vk_sources
		BEGIN SELECT RAISE(ABORT, 'boom'); END`); err != nil {
		t.Fatal(err)
	}
	b := &vibekit.Batch{
		Records:       []vibekit.Record{{SessionID: "ok", EventType: vibekit.EventStream}, {SessionID: "boom", EventType: vibekit.EventStream}},
		RecordSources: []string{"f", "f"},
		Rejects:       []vibekit.Reject{{Source: "f", Line: 3, Reason: "bad"}},
		Checkpoints:   []vibekit.Checkpoint{{Source: "f", Kind: "file", Offset: 300, Line: 3}},
		Lines:         3,
	}
	if _, err := db.Commit(ctx, b); err == nil {
		t.Fatal("commit succeeded despite the failing row")
	}
	for _, table := range []string{"telemetry", "vk_rejects", "vk_spans", "vk_runs"} {
		var n int
		db.SQL().QueryRow(`SELECT count(*) FROM ` + table).Scan(&n)
		if n != 0 {
			t.Errorf("%s has %d rows after a failed commit", table, n)
		}
	}
	var off sql.NullInt64
	db.SQL().QueryRow(`SELECT offset FROM vk_sources WHERE name = 'f'`).Scan(&off)
	if off.Int64 != 0 {
		t.Errorf("checkpoint advanced to %d after a failed commit", off.Int64)
	}
	// The same batch commits once the cause is gone, with rows, spans and
	// checkpoint together.
	db.SQL().Exec(`DROP TRIGGER fail`)
	if _, err := db.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetEvents(ctx, vibekit.Filter{Sources: []string{"f"}})
	if err != nil || len(got) != 2 {
		t.Fatalf("rows from source f = %d, %v; want 2", len(got), err)
	}
	db.SQL().QueryRow(`SELECT offset FROM vk_sources WHERE name = 'f'`).Scan(&off)
	if off.Int64 != 300 {
		t.Errorf("checkpoint = %d, want 300", off.Int64)
	}
}

func TestScan_FilterAndOrder(t *testing.T) {
	db := MustOpen(t)
	ctx := context.Background()
	t0 := time.UnixMilli(1_732_704_000_000)
	var recs []vibekit.Record
	for i, s := range []struct {
		session, agent string
		typ            vibekit.EventType
	}{{"a", "claude", vibekit.EventStart}, {"a", "claude", vibekit.EventStream}, {"b", "codex", vibekit.EventStart}, {"a", "claude", vibekit.EventEnd}, {"b", "codex", vibekit.EventError}} {
		recs = append(recs, vibekit.Record{SessionID: s.session, AgentType: s.agent, EventType: s.typ, StreamData: "text " + s.session,
			Metadata: []byte(`{"user":{"id":"u-` + s.session + `"}}`), Timestamp: t0.Add(time.Duration(i) * time.Minute).UnixMilli()})
	}
	if _, err := db.Commit(ctx, &vibekit.Batch{Records: recs}); err != nil {
		t.Fatal(err)
	}
	ids := func(t *testing.T, f vibekit.Filter) []int64 {
		t.Helper()
		got, err := db.GetEvents(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, r := range got {
			out = append(out, r.ID)
		}
		return out
	}
	tests := []struct {
		name   string
		filter vibekit.Filter
		want   []int64
	}{
		{"all oldest first", vibekit.Filter{}, []int64{1, 2, 3, 4, 5}},
		{"desc", vibekit.Filter{Order: vibekit.OrderDesc}, []int64{5, 4, 3, 2, 1}},
		{"session", vibekit.Filter{SessionIDs: []string{"b"}}, []int64{3, 5}},
		{"agents", vibekit.Filter{AgentTypes: []string{"codex", "claude"}}, []int64{1, 2, 3, 4, 5}},
		{"type", vibekit.Filter{EventTypes: []vibekit.EventType{vibekit.EventStart}}, []int64{1, 3}},
		{"from to", vibekit.Filter{From: t0.Add(time.Minute), To: t0.Add(3 * time.Minute)}, []int64{2, 3, 4}},
		{"page 1", vibekit.Filter{Limit: 2}, []int64{1, 2}},
		{"page 2", vibekit.Filter{Limit: 2, Offset: 2}, []int64{3, 4}},
		{"page 3", vibekit.Filter{Limit: 2, Offset: 4}, []int64{5}},
		{"contains", vibekit.Filter{Contains: "text b"}, []int64{3, 5}},
		{"metadata", vibekit.Filter{Metadata: map[string]string{"user.id": "u-a"}}, []int64{1, 2, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ids(t, tt.filter)
			if len(got) != len(tt.want) {
				t.Fatalf("ids = %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("ids = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func BenchmarkCommit(b *testing.B) {
	db := MustOpen(b)
	data := make([]byte, 800)
	for i := range data {
		data[i] = 'a' + byte(i%26)
	}
	batch := &vibekit.Batch{}
	for i := range 500 {
		batch.Records = append(batch.Records, vibekit.Record{SessionID: "s" + string(rune('a'+i%20)), EventType: vibekit.EventStream,
			AgentType: "claude", StreamData: string(data), Metadata: []byte(`{"chunk":1}`), Timestamp: int64(1_732_704_000_000 + i)})
		batch.RecordSources = append(batch.RecordSources, "stdin")
	}
	b.SetBytes(int64(len(batch.Records) * 850))
	b.ResetTimer()
	for b.Loop() {
		if _, err := db.Commit(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch.Records))/b.Elapsed().Seconds(), "rows/s")
}
