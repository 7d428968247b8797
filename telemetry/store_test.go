package telemetry

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vibekit/vibekit-pipe/redact"
	"github.com/vibekit/vibekit-pipe/rotate"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

// now is the tests' clock: 2024-11-27T12:00:00Z.
var now = time.Date(2024, 11, 27, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

// MustOpen opens a store in a temporary directory with the tests' clock.
func MustOpen(tb testing.TB, cfg Config) *Store {
	tb.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(tb.TempDir(), "telemetry.db")
	}
	if cfg.Now == nil {
		cfg.Now = clock
	}
	s, err := Open(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// seed inserts ten events: sessions a (claude, chat), b (codex, code) and
// c (claude, code), at one-hour steps ending an hour before now.
func seed(tb testing.TB, s *Store) []Record {
	tb.Helper()
	at := func(h int) int64 { return now.Add(-time.Duration(h) * time.Hour).UnixMilli() }
	recs := []Record{
		{SessionID: "a", EventType: EventStart, AgentType: "claude", Mode: "chat", Prompt: "fix the bug", Metadata: json.RawMessage(`{"userId":"u1"}`), Timestamp: at(48)},
		{SessionID: "a", EventType: EventStream, AgentType: "claude", Mode: "chat", StreamData: "found the bug", Metadata: json.RawMessage(`{"userId":"u1","chunk":1}`), Timestamp: at(47)},
		{SessionID: "a", EventType: EventStream, AgentType: "claude", Mode: "chat", StreamData: "fixed it", Metadata: json.RawMessage(`{"userId":"u1","chunk":2}`), Timestamp: at(46)},
		{SessionID: "a", EventType: EventEnd, AgentType: "claude", Mode: "chat", Metadata: json.RawMessage(`{"status":"success","user":{"id":7},"ok":true}`), Timestamp: at(45)},
		{SessionID: "b", EventType: EventStart, AgentType: "codex", Mode: "code", Prompt: "write tests", Timestamp: at(10)},
		{SessionID: "b", EventType: EventStream, AgentType: "codex", Mode: "code", StreamData: "a bug in the tests", Timestamp: at(9)},
		{SessionID: "b", EventType: EventError, AgentType: "codex", Mode: "code", Prompt: "API rate limit exceeded", Metadata: json.RawMessage(`{"retryAfter":60000}`), Timestamp: at(8)},
		{SessionID: "c", EventType: EventStart, AgentType: "claude", Mode: "code", Timestamp: at(3)},
		{SessionID: "c", EventType: EventStream, AgentType: "claude", Mode: "code", StreamData: "working", Timestamp: at(2)},
		{SessionID: "c", EventType: EventStream, AgentType: "claude", Mode: "code", StreamData: "still working", Timestamp: at(1)},
	}
	if err := s.InsertBatch(context.Background(), recs); err != nil {
		tb.Fatal(err)
	}
	got, err := s.GetEvents(context.Background(), QueryFilter{})
	if err != nil {
		tb.Fatal(err)
	}
	return got
}

func ids(recs []Record) []int64 {
	out := []int64{}
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}

func TestStore_LazyCreation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "deep", "er")
	path := filepath.Join(dir, "telemetry.db")
	s := MustOpen(t, Config{Path: path})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Open created %s (stat: %v); want it made on first use", dir, err)
	}
	if err := s.InsertEvent(context.Background(), Record{SessionID: "s", EventType: EventStart, AgentType: "claude"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("database mode = %v, want %v", got, want)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := di.Mode().Perm(), os.FileMode(0o700); got != want {
		t.Errorf("directory mode = %v, want %v", got, want)
	}
}

func TestStore_InsertEvent(t *testing.T) {
	s := MustOpen(t, Config{})
	ctx := context.Background()
	t.Run("timestamp defaults to now", func(t *testing.T) {
		if err := s.InsertEvent(ctx, Record{SessionID: "s", EventType: EventStart, AgentType: "claude"}); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetEvents(ctx, QueryFilter{SessionID: "s"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Timestamp != now.UnixMilli() {
			t.Errorf("GetEvents = %+v, want one row at now", got)
		}
	})
	for _, tt := range []struct {
		name string
		r    Record
	}{
		{"no session", Record{EventType: EventStart}},
		{"bad event type", Record{SessionID: "s", EventType: "begin"}},
		{"metadata not an object", Record{SessionID: "s", EventType: EventStart, Metadata: json.RawMessage(`[1]`)}},
		{"metadata not JSON", Record{SessionID: "s", EventType: EventStart, Metadata: json.RawMessage(`{oops`)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.InsertEvent(ctx, tt.r); err == nil {
				t.Error("no error")
			}
		})
	}
	t.Run("a bad record keeps the batch out", func(t *testing.T) {
		err := s.InsertBatch(ctx, []Record{{SessionID: "x", EventType: EventStart}, {SessionID: "x", EventType: "nope"}})
		if err == nil {
			t.Fatal("no error")
		}
		got, _ := s.GetEvents(ctx, QueryFilter{SessionID: "x"})
		if len(got) != 0 {
			t.Errorf("%d rows of a failed batch were kept", len(got))
		}
	})
}

func TestStore_GetEvents(t *testing.T) {
	s := MustOpen(t, Config{})
	all := seed(t, s)
	ctx := context.Background()
	tests := []struct {
		name string
		f    QueryFilter
		want []int64
	}{
		{"all, oldest first", QueryFilter{}, ids(all)},
		{"newest first", QueryFilter{OrderBy: "timestamp_desc", Limit: 3}, []int64{10, 9, 8}},
		{"from as a time", QueryFilter{From: At(now.Add(-3 * time.Hour))}, []int64{8, 9, 10}},
		{"from as text", QueryFilter{From: TimeText("3 hours ago")}, []int64{8, 9, 10}},
		{"from yesterday", QueryFilter{From: TimeText("yesterday")}, []int64{5, 6, 7, 8, 9, 10}},
		{"to as text", QueryFilter{To: TimeText("2024-11-26")}, []int64{1, 2, 3, 4}},
		{"from and to", QueryFilter{From: At(now.Add(-10 * time.Hour)), To: At(now.Add(-9 * time.Hour))}, []int64{5, 6}},
		{"one session", QueryFilter{SessionID: "b"}, []int64{5, 6, 7}},
		{"several sessions", QueryFilter{SessionIDs: []string{"a", "c"}, EventType: EventStart}, []int64{1, 8}},
		{"event type", QueryFilter{EventType: EventError}, []int64{7}},
		{"agent types", QueryFilter{AgentTypes: []string{"codex"}}, []int64{5, 6, 7}},
		{"agent type and mode", QueryFilter{AgentType: "claude", Mode: "code"}, []int64{8, 9, 10}},
		{"contains in stream data", QueryFilter{Contains: "working"}, []int64{9, 10}},
		{"contains in prompt or stream data", QueryFilter{Contains: "bug"}, []int64{1, 2, 6}},
		{"metadata string", QueryFilter{Metadata: map[string]any{"userId": "u1"}}, []int64{1, 2, 3}},
		{"metadata number", QueryFilter{Metadata: map[string]any{"userId": "u1", "chunk": 2}}, []int64{3}},
		{"metadata nested", QueryFilter{Metadata: map[string]any{"user.id": 7.0}}, []int64{4}},
		{"metadata boolean", QueryFilter{Metadata: map[string]any{"ok": true}}, []int64{4}},
		{"nothing", QueryFilter{SessionID: "none"}, []int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.GetEvents(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ids(got), tt.want) {
				t.Errorf("ids = %v, want %v", ids(got), tt.want)
			}
		})
	}
	t.Run("paging without overlap", func(t *testing.T) {
		for _, order := range []string{"timestamp_asc", "timestamp_desc"} {
			seen := map[int64]bool{}
			var pages [][]int64
			for offset := 0; ; offset += 3 {
				page, err := s.GetEvents(ctx, QueryFilter{Limit: 3, Offset: offset, OrderBy: order})
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				pages = append(pages, ids(page))
				for _, r := range page {
					if seen[r.ID] {
						t.Errorf("%s: id %d on two pages: %v", order, r.ID, pages)
					}
					seen[r.ID] = true
				}
			}
			if got, want := len(seen), len(all); got != want || len(pages) != 4 {
				t.Errorf("%s: pages %v cover %d rows, want %d", order, pages, got, want)
			}
		}
	})
	t.Run("the full record", func(t *testing.T) {
		got, err := s.GetEvents(ctx, QueryFilter{EventType: EventError})
		if err != nil {
			t.Fatal(err)
		}
		want := Record{ID: 7, SessionID: "b", EventType: EventError, AgentType: "codex", Mode: "code", Prompt: "API rate limit exceeded",
			Metadata: json.RawMessage(`{"retryAfter":60000}`), Timestamp: now.Add(-8 * time.Hour).UnixMilli()}
		if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
			t.Errorf("GetEvents = %+v, want %+v", got, want)
		}
	})
	for _, f := range []QueryFilter{
		{OrderBy: "sideways"}, {From: TimeText("someday")}, {EventType: "begin"}, {Limit: -1},
		{Metadata: map[string]any{"x": []int{1}}},
	} {
		if _, err := s.GetEvents(ctx, f); err == nil {
			t.Errorf("GetEvents(%+v): no error", f)
		}
	}
}

func TestStore_Sessions(t *testing.T) {
	s := MustOpen(t, Config{})
	seed(t, s)
	ctx := context.Background()
	got, err := s.GetSession(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	want := SessionSummary{SessionID: "a", AgentType: "claude", Mode: "chat", StartTime: now.Add(-48 * time.Hour).UnixMilli(),
		EndTime: now.Add(-45 * time.Hour).UnixMilli(), Duration: 3 * 3600 * 1000, EventCount: 4, Status: "success"}
	if got != want {
		t.Errorf("GetSession(a) = %+v, want %+v", got, want)
	}
	if _, err := s.GetSession(ctx, "zzz"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetSession(zzz) error = %v, want ErrNotFound", err)
	}
	list, err := s.GetSessions(ctx, SessionFilter{From: TimeText("yesterday"), OrderBy: "timestamp_desc"})
	if err != nil {
		t.Fatal(err)
	}
	var names, statuses []string
	for _, ss := range list {
		names, statuses = append(names, ss.SessionID), append(statuses, ss.Status)
	}
	if !reflect.DeepEqual(names, []string{"c", "b"}) || !reflect.DeepEqual(statuses, []string{"active", "error"}) {
		t.Errorf("GetSessions = %v %v, want [c b] [active error]", names, statuses)
	}
}

func TestStore_GetStats(t *testing.T) {
	s := MustOpen(t, Config{})
	seed(t, s)
	ctx := context.Background()
	st, err := s.GetStats(ctx, StatsOptions{GroupBy: "agentType"})
	if err != nil {
		t.Fatal(err)
	}
	if st.TotalEvents != 10 || st.Sessions != 3 || st.Errors != 1 {
		t.Errorf("counts = %d events, %d sessions, %d errors; want 10, 3, 1", st.TotalEvents, st.Sessions, st.Errors)
	}
	if got, want := fmt.Sprintf("%s %.1f, %s %.1f", st.Agents[0].Value, st.Agents[0].Share, st.Agents[1].Value, st.Agents[1].Share), "claude 0.7, codex 0.3"; got != want {
		t.Errorf("agents = %s, want %s", got, want)
	}
	if got, want := st.DateRange.From, now.Add(-48*time.Hour).UnixMilli(); got != want {
		t.Errorf("date range from %d, want %d", got, want)
	}
	if got, want := st.AverageSessionDuration, int64((3+2+2)*3600*1000/3); got != want {
		t.Errorf("average session duration = %d, want %d", got, want)
	}
	if st.DatabaseSize <= 0 || len(st.Groups) != 2 {
		t.Errorf("size %d, groups %v", st.DatabaseSize, st.Groups)
	}
	st, err = s.GetStats(ctx, StatsOptions{From: TimeText("2024-11-27"), To: At(now), AgentTypes: []string{"codex"}})
	if err != nil {
		t.Fatal(err)
	}
	if st.TotalEvents != 3 || st.Sessions != 1 {
		t.Errorf("codex today: %d events, %d sessions; want 3, 1", st.TotalEvents, st.Sessions)
	}
	agents, err := s.GetAgentStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(agents) != 2 || agents[0].AgentType != "claude" || agents[0].Sessions != 2 || agents[1].Errors != 1 {
		t.Errorf("GetAgentStats = %+v", agents)
	}
}

func TestStore_ClearAndPrune(t *testing.T) {
	ctx := context.Background()
	t.Run("clear by session", func(t *testing.T) {
		s := MustOpen(t, Config{})
		seed(t, s)
		n, err := s.Clear(ctx, ClearFilter{SessionIDs: []string{"a"}})
		if err != nil || n != 4 {
			t.Errorf("Clear = %d, %v; want 4", n, err)
		}
	})
	t.Run("clear by agent and age", func(t *testing.T) {
		s := MustOpen(t, Config{})
		seed(t, s)
		n, err := s.Clear(ctx, ClearFilter{AgentTypes: []string{"claude"}, Before: TimeText("2h")})
		if err != nil || n != 5 {
			t.Errorf("Clear = %d, %v; want 5", n, err)
		}
	})
	t.Run("prune", func(t *testing.T) {
		s := MustOpen(t, Config{})
		seed(t, s)
		n, err := s.PruneOldRecords(ctx, 1)
		if err != nil || n != 4 {
			t.Errorf("PruneOldRecords(1) = %d, %v; want 4", n, err)
		}
		st, err := s.GetStats(ctx, StatsOptions{})
		if err != nil || st.Pruned.Passes != 1 || st.Pruned.Rows != 4 {
			t.Errorf("GetStats after the prune: %+v, %v; want 1 pass of 4 rows", st.Pruned, err)
		}
		if _, err := s.PruneOldRecords(ctx, 0); err == nil {
			t.Error("PruneOldRecords(0): no error")
		}
		if err := s.Vacuum(ctx); err != nil {
			t.Error(err)
		}
	})
	t.Run("prune on open", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "t.db")
		seed(t, MustOpen(t, Config{Path: path}))
		s := MustOpen(t, Config{Path: path, PruneDays: 1})
		got, err := s.GetEvents(ctx, QueryFilter{})
		if err != nil || len(got) != 6 {
			t.Errorf("after pruning on open: %d rows, %v; want 6", len(got), err)
		}
		st, err := s.GetStats(ctx, StatsOptions{})
		if err != nil || st.Pruned.Rows != 4 {
			t.Errorf("GetStats after pruning on open: %+v, %v; want 4 rows", st.Pruned, err)
		}
	})
	t.Run("clear everything", func(t *testing.T) {
		s := MustOpen(t, Config{})
		seed(t, s)
		n, err := s.Clear(ctx, ClearFilter{})
		if err != nil || n != 10 {
			t.Errorf("Clear = %d, %v; want 10", n, err)
		}
	})
}

func TestStore_CloseAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	s := MustOpen(t, Config{Path: path})
	seed(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetEvents(context.Background(), QueryFilter{}); !errors.Is(err, ErrClosed) {
		t.Errorf("GetEvents after Close: %v, want ErrClosed", err)
	}
	s = MustOpen(t, Config{Path: path})
	got, err := s.GetEvents(context.Background(), QueryFilter{})
	if err != nil || len(got) != 10 {
		t.Errorf("after reopening: %d rows, %v; want 10", len(got), err)
	}
	ro := MustOpen(t, Config{Path: path, ReadOnly: true})
	if got, err := ro.GetEvents(context.Background(), QueryFilter{}); err != nil || len(got) != 10 {
		t.Errorf("read-only: %d rows, %v; want 10", len(got), err)
	}
	if err := ro.InsertEvent(context.Background(), Record{SessionID: "s", EventType: EventStart}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("insert into a read-only store: %v, want ErrReadOnly", err)
	}
}

func TestStore_HealthCheck(t *testing.T) {
	ctx := context.Background()
	s := MustOpen(t, Config{})
	h := s.HealthCheck(ctx)
	if !h.Database || !h.Buffer || h.DiskSpace <= 0 || h.Error != "" {
		t.Errorf("HealthCheck = %+v, want healthy with disk space", h)
	}
	// A database below a regular file cannot be created.
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	bad := MustOpen(t, Config{Path: filepath.Join(file, "sub", "t.db")})
	h = bad.HealthCheck(ctx)
	if h.Database || h.Error == "" {
		t.Errorf("HealthCheck of an impossible path = %+v, want Database false with an error", h)
	}
	if h.DiskSpace <= 0 {
		t.Errorf("DiskSpace = %d, want the space of the nearest directory", h.DiskSpace)
	}
}

func TestStore_UserData(t *testing.T) {
	ctx := context.Background()
	s := MustOpen(t, Config{})
	seed(t, s)
	got, err := s.ExportUserData(ctx, "u1")
	if err != nil || !reflect.DeepEqual(ids(got), []int64{1, 2, 3}) {
		t.Errorf("ExportUserData(u1) = %v, %v; want [1 2 3]", ids(got), err)
	}
	n, err := s.DeleteUserData(ctx, "u1", DeletionRequest{Reason: "User deletion request", RequestID: "REQ-123", Time: now})
	if err != nil || n != 3 {
		t.Errorf("DeleteUserData(u1) = %d, %v; want 3", n, err)
	}
	if got, _ := s.ExportUserData(ctx, "u1"); len(got) != 0 {
		t.Errorf("after deletion, ExportUserData(u1) = %v", ids(got))
	}
	nested := MustOpen(t, Config{UserIDField: "user.id"})
	seed(t, nested)
	if got, err := nested.ExportUserData(ctx, "7"); err != nil || !reflect.DeepEqual(ids(got), []int64{4}) {
		t.Errorf("ExportUserData by user.id = %v, %v; want [4]", ids(got), err)
	}
}

// TestStore_UserDataInArchives: events that vibekit-pipe sealed into
// archives beside the database are exported and deleted too, and the
// rewritten archive keeps no copy of them.
func TestStore_UserDataInArchives(t *testing.T) {
	ctx := context.Background()
	s := MustOpen(t, Config{})
	seed(t, s)
	other, err := sqlite.Open(s.Path(), sqlite.Options{EnableIndexes: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&rotate.Sealer{DB: other}).Seal(ctx, 0); err != nil {
		t.Fatal(err)
	}
	other.Close()
	if err := s.InsertBatch(ctx, []Record{{SessionID: "d", EventType: EventStart, Prompt: "again", Metadata: json.RawMessage(`{"userId":"u1"}`), Timestamp: now.UnixMilli()}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ExportUserData(ctx, "u1")
	if err != nil || !reflect.DeepEqual(ids(got), []int64{1, 2, 3, 11}) || string(got[1].Metadata) != `{"userId":"u1","chunk":1}` {
		t.Fatalf("ExportUserData(u1) = %v, %v; want [1 2 3 11] from the archive and the database", ids(got), err)
	}
	n, err := s.DeleteUserData(ctx, "u1", DeletionRequest{Reason: "User deletion request"})
	if err != nil || n != 4 {
		t.Errorf("DeleteUserData(u1) = %d, %v; want 4", n, err)
	}
	if got, _ := s.ExportUserData(ctx, "u1"); len(got) != 0 {
		t.Errorf("after deletion, ExportUserData(u1) = %v", ids(got))
	}
	as, err := rotate.List(s.Path())
	if err != nil || len(as) != 1 {
		t.Fatalf("archives %v, %v", as, err)
	}
	out, _, err := rotate.Unpack(ctx, as[0].Path, t.TempDir(), rotate.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); bytes.Contains(b, []byte("found the bug")) || !bytes.Contains(b, []byte("a bug in the tests")) {
		t.Error("the archive still holds the user's events, or lost the others")
	}
}

// TestStore_OpenWaitsForLock: a store whose database another process is
// writing (its write lock held) waits for the lock, tells Config.Waiting,
// and stores the event once the lock frees.
func TestStore_OpenWaitsForLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	db, err := sqlite.Open(path, sqlite.Options{EnableIndexes: true})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	other, err := sql.Open("sqlite3", "file:"+path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	waiting := make(chan struct{})
	s, err := Open(Config{Path: path, Now: func() time.Time { return now }, Waiting: func() { close(waiting) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	done := make(chan error, 1)
	go func() {
		done <- s.InsertEvent(context.Background(), Record{SessionID: "s", EventType: EventStart, AgentType: "claude"})
	}()
	select {
	case <-waiting:
	case err := <-done:
		t.Fatalf("InsertEvent returned while the lock was held: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the store did not say it was waiting for the lock")
	}
	lock.Rollback()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("InsertEvent after the lock was released: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("InsertEvent did not finish after the lock was released")
	}
	var n int
	if err := other.QueryRow(`SELECT count(*) FROM telemetry WHERE sessionId = 's'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("rows = %d, %v; want 1", n, err)
	}
}

// TestStore_Redacts checks that the library redacts what it writes as
// vibekit-pipe does, by default: a key in every field and in metadata, a
// private key whose lines are several events of a session (through
// InsertBatch and through the Tracker), and that Redact turns it off or
// changes it.
func TestStore_Redacts(t *testing.T) {
	ctx := context.Background()
	key := "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
	pemLines := []string{"-----BEGIN RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo", "-----END RSA PRIVATE KEY-----"}
	stored := func(t *testing.T, s *Store) string {
		t.Helper()
		got, err := s.GetEvents(ctx, QueryFilter{})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(got)
		return string(b)
	}
	t.Run("InsertBatch", func(t *testing.T) {
		s := MustOpen(t, Config{})
		recs := []Record{{SessionID: "s", EventType: EventStart, AgentType: "claude", Prompt: "use " + key, RepoURL: "https://u:hunter2@git.example.com/r",
			Metadata: json.RawMessage(`{"env":{"OPENAI_API_KEY":"` + key + `"}}`)}}
		for _, l := range pemLines {
			recs = append(recs, Record{SessionID: "s", EventType: EventStream, AgentType: "claude", StreamData: l})
		}
		if err := s.InsertBatch(ctx, recs); err != nil {
			t.Fatal(err)
		}
		out := stored(t, s)
		for _, gone := range []string{"Ab3dEf6hIj9", "hunter2", "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo"} {
			if strings.Contains(out, gone) {
				t.Errorf("%q stored: %s", gone, out)
			}
		}
		if !strings.Contains(out, "use [REDACTED:openai]") {
			t.Errorf("no marker: %s", out)
		}
	})
	t.Run("Tracker", func(t *testing.T) {
		tr, err := NewTracker(Config{Path: filepath.Join(t.TempDir(), "t.db"), Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		if err := tr.TrackStart(ctx, Event{SessionID: "s", AgentType: "codex", Prompt: key}); err != nil {
			t.Fatal(err)
		}
		for _, l := range pemLines {
			if err := tr.TrackStream(ctx, Event{SessionID: "s", AgentType: "codex", StreamData: l}); err != nil {
				t.Fatal(err)
			}
		}
		if err := tr.TrackError(ctx, Event{SessionID: "s", AgentType: "codex", Error: "401 for " + key, Metadata: map[string]any{"token": key}}); err != nil {
			t.Fatal(err)
		}
		out := stored(t, tr.Store())
		for _, gone := range []string{"Ab3dEf6hIj9", "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo"} {
			if strings.Contains(out, gone) {
				t.Errorf("%q stored: %s", gone, out)
			}
		}
		if strings.Count(out, "[REDACTED:pem]") != 3 || strings.Count(out, "[REDACTED:openai]") != 3 {
			t.Errorf("markers: %s", out)
		}
	})
	t.Run("off", func(t *testing.T) {
		s := MustOpen(t, Config{Redact: &redact.Options{Level: redact.None}})
		if err := s.InsertEvent(ctx, Record{SessionID: "s", EventType: EventStart, AgentType: "claude", Prompt: key}); err != nil {
			t.Fatal(err)
		}
		if out := stored(t, s); !strings.Contains(out, key) {
			t.Errorf("redacted with redaction off: %s", out)
		}
	})
	t.Run("hash without a key", func(t *testing.T) {
		if _, err := Open(Config{Redact: &redact.Options{HashFields: []string{"sessionId"}}}); !errors.Is(err, redact.ErrNoHashKey) {
			t.Errorf("err = %v, want ErrNoHashKey", err)
		}
	})
}
