package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

func TestDB_Stats(t *testing.T) {
	t.Setenv("TZ", "UTC")
	time.Local = time.UTC
	db := MustOpen(t)
	MustCommit(t, db, fixture())
	ctx := context.Background()

	t.Run("all", func(t *testing.T) {
		s, err := db.Stats(ctx, vibekit.Filter{}, StatsOptions{GroupBy: "mode", By: "day"})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := s.TotalEvents, int64(7); got != want {
			t.Errorf("TotalEvents = %d, want %d", got, want)
		}
		if got, want := s.Sessions, int64(3); got != want {
			t.Errorf("Sessions = %d, want %d", got, want)
		}
		if got, want := s.Errors, int64(1); got != want {
			t.Errorf("Errors = %d, want %d", got, want)
		}
		wantTypes := map[vibekit.EventType]int64{"start": 3, "stream": 2, "end": 1, "error": 1}
		if !reflect.DeepEqual(s.EventTypes, wantTypes) {
			t.Errorf("EventTypes = %v, want %v", s.EventTypes, wantTypes)
		}
		wantAgents := []vibekit.Share{{Value: "claude", Events: 5, Sessions: 2, Share: 5.0 / 7}, {Value: "codex", Events: 2, Sessions: 1, Share: 2.0 / 7}}
		if !reflect.DeepEqual(s.Agents, wantAgents) {
			t.Errorf("Agents = %+v, want %+v", s.Agents, wantAgents)
		}
		day := int64(24 * time.Hour / time.Millisecond)
		if got, want := s.DateRange, (vibekit.TimeRange{From: t0.UnixMilli(), To: t0.UnixMilli() + 2*day + 500}); got != want {
			t.Errorf("DateRange = %+v, want %+v", got, want)
		}
		// (3000 + 1000 + 500) / 3 sessions
		if got, want := s.AverageSessionDuration, int64(1500); got != want {
			t.Errorf("AverageSessionDuration = %d, want %d", got, want)
		}
		if s.DatabaseSize <= 0 {
			t.Errorf("DatabaseSize = %d, want > 0", s.DatabaseSize)
		}
		wantTimeline := []vibekit.Bucket{
			{Start: time.Date(2024, 11, 27, 0, 0, 0, 0, time.UTC).UnixMilli(), Label: "2024-11-27", Events: 5},
			{Start: time.Date(2024, 11, 28, 0, 0, 0, 0, time.UTC).UnixMilli(), Label: "2024-11-28"},
			{Start: time.Date(2024, 11, 29, 0, 0, 0, 0, time.UTC).UnixMilli(), Label: "2024-11-29", Events: 2},
		}
		if !reflect.DeepEqual(s.Timeline, wantTimeline) {
			t.Errorf("Timeline = %+v, want %+v", s.Timeline, wantTimeline)
		}
	})
	t.Run("group by mode", func(t *testing.T) {
		s, err := db.Stats(ctx, vibekit.Filter{}, StatsOptions{GroupBy: "mode"})
		if err != nil {
			t.Fatal(err)
		}
		want := []vibekit.Share{{Value: "", Events: 4, Sessions: 3, Share: 4.0 / 7}, {Value: "chat", Events: 2, Sessions: 2, Share: 2.0 / 7}, {Value: "code", Events: 1, Sessions: 1, Share: 1.0 / 7}}
		if !reflect.DeepEqual(s.Groups, want) {
			t.Errorf("Groups = %+v, want %+v", s.Groups, want)
		}
	})
	t.Run("agent and time filter", func(t *testing.T) {
		s, err := db.Stats(ctx, vibekit.Filter{AgentTypes: []string{"claude"}, To: t0.Add(time.Hour)}, StatsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := s.TotalEvents, int64(3); got != want {
			t.Errorf("TotalEvents = %d, want %d", got, want)
		}
		if got, want := s.Sessions, int64(1); got != want {
			t.Errorf("Sessions = %d, want %d", got, want)
		}
	})
	t.Run("empty", func(t *testing.T) {
		s, err := db.Stats(ctx, vibekit.Filter{AgentTypes: []string{"nobody"}}, StatsOptions{By: "hour"})
		if err != nil {
			t.Fatal(err)
		}
		if s.TotalEvents != 0 || s.Sessions != 0 || s.DateRange != (vibekit.TimeRange{}) || len(s.Agents) != 0 || len(s.Timeline) != 0 {
			t.Errorf("stats of nothing = %+v", s)
		}
	})
	t.Run("pruned", func(t *testing.T) {
		s, err := db.Stats(ctx, vibekit.Filter{}, StatsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s.Pruned != (vibekit.PruneTotals{}) {
			t.Errorf("Pruned before any prune = %+v, want zero", s.Pruned)
		}
		day := 24 * time.Hour
		passes := []PruneResult{
			{Time: t0.Add(-day), Before: t0.Add(-8 * day), Rows: 10, Rejects: 1, Archives: []string{"a", "b"}, ArchiveRows: 200},
			{Time: t0, Before: t0.Add(-7 * day), Rows: 5},
			{Time: t0.Add(time.Hour)}, // deleted nothing: not logged
		}
		for _, p := range passes {
			if err := db.RecordPrune(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		// Whatever the filters: it describes the store.
		s, err = db.Stats(ctx, vibekit.Filter{AgentTypes: []string{"nobody"}}, StatsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := vibekit.PruneTotals{Passes: 2, Rows: 15, Rejects: 1, Archives: 2, ArchiveRows: 200,
			Last: t0.UnixMilli(), LastBefore: t0.Add(-7 * day).UnixMilli()}
		if s.Pruned != want {
			t.Errorf("Pruned = %+v, want %+v", s.Pruned, want)
		}
	})
	t.Run("bad options", func(t *testing.T) {
		if _, err := db.Stats(ctx, vibekit.Filter{}, StatsOptions{GroupBy: "prompt; DROP TABLE telemetry"}); err == nil {
			t.Error("group by an unknown column: no error")
		}
		if _, err := db.Stats(ctx, vibekit.Filter{}, StatsOptions{By: "week"}); err == nil {
			t.Error("timeline by week: no error")
		}
	})
}

func TestDB_AgentStats(t *testing.T) {
	db := MustOpen(t)
	MustCommit(t, db, fixture())
	got, err := db.AgentStats(context.Background(), vibekit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	day := int64(24 * time.Hour / time.Millisecond)
	want := []vibekit.AgentStats{
		{AgentType: "claude", Events: 5, Sessions: 2, AverageSessionDuration: 1750, FirstEvent: t0.UnixMilli(), LastEvent: t0.UnixMilli() + 2*day + 500},
		{AgentType: "codex", Events: 2, Sessions: 1, Errors: 1, AverageSessionDuration: 1000, FirstEvent: t0.UnixMilli() + 10000, LastEvent: t0.UnixMilli() + 11000},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("AgentStats =\n%+v\nwant\n%+v", got, want)
	}
}

func TestDB_Sessions(t *testing.T) {
	db := MustOpen(t)
	MustCommit(t, db, fixture())
	ctx := context.Background()
	day := int64(24 * time.Hour / time.Millisecond)
	s1 := vibekit.SessionSummary{SessionID: "s1", AgentType: "claude", Mode: "chat", StartTime: t0.UnixMilli(), EndTime: t0.UnixMilli() + 3000,
		Duration: 3000, EventCount: 3, Status: "success"}
	s2 := vibekit.SessionSummary{SessionID: "s2", AgentType: "codex", Mode: "code", StartTime: t0.UnixMilli() + 10000, EndTime: t0.UnixMilli() + 11000,
		Duration: 1000, EventCount: 2, ErrorCount: 1, Status: vibekit.StatusError}
	s3 := vibekit.SessionSummary{SessionID: "s3", AgentType: "claude", Mode: "chat", StartTime: t0.UnixMilli() + 2*day, EndTime: t0.UnixMilli() + 2*day + 500,
		Duration: 500, EventCount: 2, Status: vibekit.StatusActive}
	tests := []struct {
		name string
		f    vibekit.Filter
		want []vibekit.SessionSummary
	}{
		{"all, by start", vibekit.Filter{}, []vibekit.SessionSummary{s1, s2, s3}},
		{"newest first", vibekit.Filter{Order: vibekit.OrderDesc}, []vibekit.SessionSummary{s3, s2, s1}},
		{"paged", vibekit.Filter{Limit: 1, Offset: 1}, []vibekit.SessionSummary{s2}},
		{"by agent", vibekit.Filter{AgentTypes: []string{"claude"}}, []vibekit.SessionSummary{s1, s3}},
		// A session that started in range is summarised whole.
		{"started in range", vibekit.Filter{From: t0, To: t0.Add(time.Second)}, []vibekit.SessionSummary{s1}},
		{"none", vibekit.Filter{SessionIDs: []string{"nope"}}, []vibekit.SessionSummary{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.Sessions(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Sessions =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
	t.Run("one", func(t *testing.T) {
		got, err := db.Session(ctx, "s2")
		if err != nil {
			t.Fatal(err)
		}
		if *got != s2 {
			t.Errorf("Session(s2) = %+v, want %+v", *got, s2)
		}
		if _, err := db.Session(ctx, "nope"); !errors.Is(err, vibekit.ErrNotFound) {
			t.Errorf("Session(nope) error = %v, want ErrNotFound", err)
		}
	})
}

func TestDB_IngestStats(t *testing.T) {
	db := MustOpen(t)
	ctx := context.Background()
	s, err := db.IngestStats(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Runs != 0 || s.Flushes != 0 {
		t.Errorf("IngestStats of a new database = %+v", s)
	}
	recs := fixture()
	MustCommit(t, db, recs[:4], vibekit.Reject{Reason: "bad", Time: t0.UnixMilli()})
	MustCommit(t, db, recs[4:])
	s, err = db.IngestStats(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := *s, (vibekit.IngestStats{Runs: 1, LinesRead: 8, TotalEventsWritten: 7, Rejects: 1, Flushes: 2}); got.Runs != want.Runs ||
		got.LinesRead != want.LinesRead || got.TotalEventsWritten != want.TotalEventsWritten || got.Rejects != want.Rejects || got.Flushes != want.Flushes {
		t.Errorf("IngestStats = %+v, want counts of %+v", got, want)
	}
	if got, want := s.EventsPerFlush, 3.5; got != want {
		t.Errorf("EventsPerFlush = %v, want %v", got, want)
	}
	if got, want := s.BufferEfficiency, 1-2.0/7; got != want {
		t.Errorf("BufferEfficiency = %v, want %v", got, want)
	}
	if s.AverageFlushTime <= 0 || s.LastFlushTime <= 0 {
		t.Errorf("flush times = %v, %v; want > 0", s.AverageFlushTime, s.LastFlushTime)
	}
	s, err = db.IngestStats(ctx, time.Now().Add(time.Hour), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Runs != 0 {
		t.Errorf("runs after an hour from now = %d, want 0", s.Runs)
	}
}

// TestDB_Stats_ForeignFile: a database with the guide's table and none of
// ours (written by the original tools) has stats, and nothing pruned.
func TestDB_Stats_ForeignFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guide.db")
	w := sql.OpenDB(connector(dsn(path, time.Second, ""), ""))
	_, err := w.Exec(`CREATE TABLE telemetry (id INTEGER PRIMARY KEY AUTOINCREMENT, sessionId TEXT, eventType TEXT, agentType TEXT,
		mode TEXT, prompt TEXT, streamData TEXT, sandboxId TEXT, repoUrl TEXT, metadata TEXT, timestamp INTEGER);
		INSERT INTO telemetry (sessionId, eventType, agentType, timestamp) VALUES ('s', 'start', 'claude', 1)`)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	// SQLite made it 0644, which the store refuses as readable by others.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := db.Stats(context.Background(), vibekit.Filter{}, StatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.TotalEvents != 1 || s.Pruned != (vibekit.PruneTotals{}) {
		t.Errorf("stats = %d events, pruned %+v; want 1 and nothing", s.TotalEvents, s.Pruned)
	}
}
