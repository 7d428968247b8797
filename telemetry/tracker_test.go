package telemetry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// MustTrack starts a tracker in a temporary directory.
func MustTrack(tb testing.TB, cfg Config) *Tracker {
	tb.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(tb.TempDir(), "telemetry.db")
	}
	t, err := NewTracker(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { t.Close() })
	return t
}

// eventTypes lists a session's rows as "type:data" in the order they were
// written (by id; GetEvents orders by time).
func eventTypes(tb testing.TB, s *Store, session string) []string {
	tb.Helper()
	recs, err := s.GetEvents(context.Background(), QueryFilter{SessionID: session})
	if err != nil {
		tb.Fatal(err)
	}
	slices.SortFunc(recs, func(a, b Record) int { return int(a.ID - b.ID) })
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = fmt.Sprintf("%s:%s%s", r.EventType, r.StreamData, r.Prompt)
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTracker_EndAndErrorFlushTheirSessionFirst(t *testing.T) {
	ctx := context.Background()
	for _, last := range []EventType{EventEnd, EventError} {
		t.Run(string(last), func(t *testing.T) {
			tr := MustTrack(t, Config{StreamBatchSize: 50, StreamFlushInterval: time.Hour})
			tr.TrackStart(ctx, Event{SessionID: "s", AgentType: "claude", Mode: "chat", Prompt: "go"})
			for i := range 3 {
				if err := tr.TrackStream(ctx, Event{SessionID: "s", AgentType: "claude", StreamData: fmt.Sprint(i)}); err != nil {
					t.Fatal(err)
				}
			}
			if got := eventTypes(t, tr.Store(), "s"); len(got) != 1 {
				t.Fatalf("before %s: rows %v, want only the start (streams buffered)", last, got)
			}
			var err error
			if last == EventEnd {
				err = tr.TrackEnd(ctx, Event{SessionID: "s", AgentType: "claude", Metadata: map[string]any{"status": "success"}})
			} else {
				err = tr.TrackError(ctx, Event{SessionID: "s", AgentType: "claude", Error: "boom"})
			}
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"start:go", "stream:0", "stream:1", "stream:2", string(last) + ":"}
			if last == EventError {
				want[4] = "error:boom"
			}
			if got := eventTypes(t, tr.Store(), "s"); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("rows = %v, want %v", got, want)
			}
			if m := tr.PerformanceMetrics(); m.TotalBufferedEvents != 0 || m.ActiveBuffers != 0 {
				t.Errorf("after %s: %+v, want nothing buffered", last, m)
			}
		})
	}
}

func TestTracker_BuffersPerAgent(t *testing.T) {
	ctx := context.Background()
	tr := MustTrack(t, Config{StreamBatchSize: 2, StreamFlushInterval: time.Hour})
	tr.TrackStream(ctx, Event{SessionID: "s", AgentType: "claude", StreamData: "c1"})
	tr.TrackStream(ctx, Event{SessionID: "s", AgentType: "codex", StreamData: "x1"})
	if m := tr.PerformanceMetrics(); m.ActiveBuffers != 2 || m.TotalBufferedEvents != 2 {
		t.Fatalf("metrics = %+v, want 2 buffers with 2 events", m)
	}
	// The second claude event fills claude's buffer only.
	tr.TrackStream(ctx, Event{SessionID: "s", AgentType: "claude", StreamData: "c2"})
	if got, want := fmt.Sprint(eventTypes(t, tr.Store(), "s")), "[stream:c1 stream:c2]"; got != want {
		t.Errorf("rows = %s, want %s", got, want)
	}
	if m := tr.PerformanceMetrics(); m.ActiveBuffers != 1 || m.TotalBufferedEvents != 1 || m.TotalEventsWritten != 2 || m.Flushes != 1 {
		t.Errorf("metrics = %+v, want codex's one event still buffered", m)
	}
	if err := tr.FlushBuffers(ctx); err != nil {
		t.Fatal(err)
	}
	if m := tr.PerformanceMetrics(); m.TotalBufferedEvents != 0 || m.TotalEventsWritten != 3 || m.AverageFlushTime <= 0 {
		t.Errorf("after FlushBuffers: %+v", m)
	}
}

func TestTracker_FlushInterval(t *testing.T) {
	ctx := context.Background()
	tr := MustTrack(t, Config{StreamBatchSize: 50, StreamFlushInterval: 20 * time.Millisecond})
	tr.TrackStream(ctx, Event{SessionID: "s", AgentType: "claude", StreamData: "tick"})
	waitFor(t, "the buffered event to be written", func() bool { return len(eventTypes(t, tr.Store(), "s")) == 1 })
	waitFor(t, "the idle buffer to be forgotten", func() bool { return tr.PerformanceMetrics().ActiveBuffers == 0 })
}

// TestTracker_ConcurrentSessions runs many sessions on one tracker from
// many goroutines: each session's rows must be its own, complete and in
// order, whatever the interleaving.
func TestTracker_ConcurrentSessions(t *testing.T) {
	ctx := context.Background()
	tr := MustTrack(t, Config{StreamBatchSize: 7, StreamFlushInterval: 5 * time.Millisecond})
	const sessions, streams = 16, 40
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, agent := fmt.Sprintf("s%02d", i), []string{"claude", "codex"}[i%2]
			if err := tr.TrackStart(ctx, Event{SessionID: id, AgentType: agent, Prompt: id}); err != nil {
				t.Error(err)
			}
			for j := range streams {
				if err := tr.TrackStream(ctx, Event{SessionID: id, AgentType: agent, StreamData: fmt.Sprintf("%s-%02d", id, j)}); err != nil {
					t.Error(err)
				}
			}
			if err := tr.TrackEnd(ctx, Event{SessionID: id, AgentType: agent}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	s := MustOpen(t, Config{Path: tr.Store().Path()})
	for i := range sessions {
		id, agent := fmt.Sprintf("s%02d", i), []string{"claude", "codex"}[i%2]
		want := []string{"start:" + id}
		for j := range streams {
			want = append(want, fmt.Sprintf("stream:%s-%02d", id, j))
		}
		want = append(want, "end:")
		if got := eventTypes(t, s, id); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("session %s rows =\n%v\nwant\n%v", id, got, want)
		}
		recs, _ := s.GetEvents(ctx, QueryFilter{SessionID: id})
		for _, r := range recs {
			if r.AgentType != agent {
				t.Errorf("session %s has a row of agent %s", id, r.AgentType)
			}
		}
	}
}

func TestTracker_FailingPath(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tr := MustTrack(t, Config{Path: filepath.Join(file, "telemetry.db")})
	e := Event{SessionID: "s", AgentType: "claude", StreamData: "x"}
	for name, call := range map[string]func() error{
		"TrackStart":  func() error { return tr.TrackStart(ctx, e) },
		"TrackStream": func() error { return tr.TrackStream(ctx, e) },
		"TrackEnd":    func() error { return tr.TrackEnd(ctx, e) },
		"TrackError":  func() error { return tr.TrackError(ctx, e) },
	} {
		if err := call(); err == nil {
			t.Errorf("%s on an impossible path: no error", name)
		}
	}
	m := tr.PerformanceMetrics()
	if m.Errors != 4 || m.LastError == "" {
		t.Errorf("metrics = %+v, want 4 errors counted", m)
	}
	if h := tr.HealthCheck(ctx); h.Database {
		t.Errorf("HealthCheck = %+v, want Database false", h)
	}
	if err := tr.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestTracker_BadEvents(t *testing.T) {
	ctx := context.Background()
	tr := MustTrack(t, Config{})
	for name, e := range map[string]Event{
		"metadata with a function": {SessionID: "s", AgentType: "claude", Metadata: map[string]any{"f": func() {}}},
		"metadata with a channel":  {SessionID: "s", AgentType: "claude", Metadata: map[string]any{"c": make(chan int)}},
		"metadata with NaN":        {SessionID: "s", AgentType: "claude", Metadata: map[string]any{"n": math.NaN()}},
		"no session":               {AgentType: "claude"},
		"no agent":                 {SessionID: "s"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := tr.TrackStart(ctx, e); err == nil {
				t.Error("TrackStart: no error")
			}
			if err := tr.TrackStream(ctx, e); err == nil {
				t.Error("TrackStream: no error")
			}
		})
	}
	if got := eventTypes(t, tr.Store(), "s"); len(got) != 0 {
		t.Errorf("rows %v were written", got)
	}
	if m := tr.PerformanceMetrics(); m.Errors != 10 {
		t.Errorf("Errors = %d, want 10", m.Errors)
	}
	// The tracker still works.
	if err := tr.TrackStart(ctx, Event{SessionID: "ok", AgentType: "claude", Metadata: map[string]any{"n": 1}}); err != nil {
		t.Error(err)
	}
}

func TestTracker_CloseFlushesAndReopenKeepsRows(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	tr := MustTrack(t, Config{Path: path, StreamFlushInterval: time.Hour})
	tr.TrackStart(ctx, Event{SessionID: "s", AgentType: "claude"})
	tr.TrackStream(ctx, Event{SessionID: "s", AgentType: "claude", StreamData: "buffered"})
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.TrackStream(ctx, Event{SessionID: "s", AgentType: "claude"}); !errors.Is(err, ErrClosed) {
		t.Errorf("TrackStream after Close: %v, want ErrClosed", err)
	}
	tr2 := MustTrack(t, Config{Path: path})
	if got, want := fmt.Sprint(eventTypes(t, tr2.Store(), "s")), "[start: stream:buffered]"; got != want {
		t.Errorf("after reopening: %s, want %s", got, want)
	}
	h := tr2.HealthCheck(ctx)
	if !h.Database || !h.Buffer || h.DiskSpace <= 0 {
		t.Errorf("HealthCheck = %+v", h)
	}
}
