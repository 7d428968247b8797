package telemetry_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vibekit/vibekit-pipe/telemetry"
)

// The Tracker is the guide's TelemetryService: track sessions as they run.
// Stream events are buffered per session and agent and written in batches;
// an end or error event writes its session's buffered events first.
func ExampleTracker() {
	dir, _ := os.MkdirTemp("", "telemetry-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	tracker, err := telemetry.NewTracker(telemetry.Config{
		Path:            filepath.Join(dir, "telemetry.db"),
		StreamBatchSize: 50, // the guide's defaults
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	// Telemetry errors are returned (and counted), never thrown: log them
	// and carry on.
	if err := tracker.TrackStart(ctx, telemetry.Event{
		SessionID: "my-session", AgentType: "claude", Mode: "chat", Prompt: "Help me debug this code",
	}); err != nil {
		fmt.Println("telemetry failed:", err)
	}
	for i := range 3 {
		tracker.TrackStream(ctx, telemetry.Event{
			SessionID: "my-session", AgentType: "claude", StreamData: fmt.Sprintf("Chunk %d", i),
		})
	}
	m := tracker.PerformanceMetrics()
	fmt.Printf("Active buffers: %d, buffered events: %d\n", m.ActiveBuffers, m.TotalBufferedEvents)

	tracker.TrackEnd(ctx, telemetry.Event{
		SessionID: "my-session", AgentType: "claude", Metadata: map[string]any{"status": "success"},
	})
	m = tracker.PerformanceMetrics()
	fmt.Printf("Total events written: %d\n", m.TotalEventsWritten)

	health := tracker.HealthCheck(ctx)
	fmt.Printf("Database: %v, Buffer: %v\n", health.Database, health.Buffer)

	session, _ := tracker.Store().GetSession(ctx, "my-session")
	fmt.Printf("Events: %d, Status: %s\n", session.EventCount, session.Status)

	// Close writes what is still buffered.
	if err := tracker.Close(); err != nil {
		fmt.Println(err)
	}

	// Output:
	// Active buffers: 1, buffered events: 3
	// Total events written: 5
	// Database: true, Buffer: true
	// Events: 5, Status: success
}
