package telemetry_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vibekit/vibekit-pipe/redact"
	"github.com/vibekit/vibekit-pipe/telemetry"
)

// The Store is the guide's TelemetryDB: write records, then query them with
// the guide's filters, session summaries and statistics.
func ExampleStore() {
	dir, _ := os.MkdirTemp("", "telemetry-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	db, err := telemetry.Open(telemetry.Config{Path: filepath.Join(dir, "telemetry.db")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	t0 := time.Date(2024, 1, 31, 10, 0, 0, 0, time.UTC).UnixMilli()
	err = db.InsertBatch(ctx, []telemetry.Record{
		{SessionID: "session-123", EventType: telemetry.EventStart, AgentType: "claude", Mode: "code", Prompt: "Fix this bug", Timestamp: t0},
		{SessionID: "session-123", EventType: telemetry.EventStream, AgentType: "claude", StreamData: "I found the issue...", Timestamp: t0 + 1000},
		{SessionID: "session-123", EventType: telemetry.EventEnd, AgentType: "claude", Metadata: []byte(`{"status":"success","userId":"user-456"}`), Timestamp: t0 + 30000},
		{SessionID: "session-456", EventType: telemetry.EventStart, AgentType: "codex", Timestamp: t0 + 60000},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	// Get events with filters: times may be time.Time or text such as
	// "yesterday" or "1 hour ago".
	events, err := db.GetEvents(ctx, telemetry.QueryFilter{
		From:      telemetry.TimeText("2024-01-31"),
		To:        telemetry.At(time.UnixMilli(t0 + time.Hour.Milliseconds())),
		SessionID: "session-123",
		EventType: telemetry.EventStream,
		AgentType: "claude",
		Limit:     100,
		OrderBy:   "timestamp_desc",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range events {
		fmt.Printf("%s %s: %s\n", e.SessionID, e.EventType, e.StreamData)
	}

	// Get session summary.
	session, err := db.GetSession(ctx, "session-123")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("Duration: %dms\n", session.Duration)
	fmt.Printf("Events: %d\n", session.EventCount)
	fmt.Printf("Status: %s\n", session.Status)

	// Get statistics.
	stats, err := db.GetStats(ctx, telemetry.StatsOptions{GroupBy: "agentType", From: telemetry.TimeText("2024-01-01"), To: telemetry.TimeText("2024-02-01")})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("Total events: %d in %d sessions\n", stats.TotalEvents, stats.Sessions)
	for _, g := range stats.Groups {
		fmt.Printf("  %s: %d events (%.0f%%)\n", g.Value, g.Events, g.Share*100)
	}

	// Data export and deletion for a user's request.
	mine, _ := db.ExportUserData(ctx, "user-456")
	fmt.Printf("user-456 has %d event(s)\n", len(mine))
	n, _ := db.DeleteUserData(ctx, "user-456", telemetry.DeletionRequest{Reason: "User deletion request", RequestID: "REQ-123"})
	fmt.Printf("deleted %d event(s)\n", n)

	// Output:
	// session-123 stream: I found the issue...
	// Duration: 30000ms
	// Events: 3
	// Status: success
	// Total events: 4 in 2 sessions
	//   claude: 3 events (75%)
	//   codex: 1 events (25%)
	// user-456 has 1 event(s)
	// deleted 1 event(s)
}

// Records are redacted before they are written, as vibekit-pipe redacts
// them; Config.Redact chooses how (here: also a kind of one's own).
func ExampleConfig_redact() {
	dir, _ := os.MkdirTemp("", "telemetry-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	ticket, _ := redact.ParsePattern(`ticket=TICKET-[0-9]{8}`)
	db, err := telemetry.Open(telemetry.Config{
		Path:   filepath.Join(dir, "telemetry.db"),
		Redact: &redact.Options{Level: redact.Secrets, Patterns: []redact.NamedPattern{ticket}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	err = db.InsertEvent(ctx, telemetry.Record{SessionID: "s", EventType: telemetry.EventStream, AgentType: "claude",
		StreamData: "curl -H 'Authorization: Bearer Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5' for TICKET-20481234"})
	if err != nil {
		fmt.Println(err)
		return
	}
	events, _ := db.GetEvents(ctx, telemetry.QueryFilter{})
	fmt.Println(events[0].StreamData)
	// Output:
	// curl -H 'Authorization: Bearer [REDACTED:bearer]' for [REDACTED:ticket]
}
