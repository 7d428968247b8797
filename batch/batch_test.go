package batch

import (
	"testing"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

var t0 = time.UnixMilli(1_764_000_000_000)

func stream(session string) vibekit.Record {
	return vibekit.Record{SessionID: session, EventType: vibekit.EventStream}
}

func TestBatcher_Size(t *testing.T) {
	b := New(3, time.Second)
	for i := range 2 {
		b.AddRecord(stream("s"), "", t0)
		if b.Ready(t0) {
			t.Fatalf("ready after %d rows of 3", i+1)
		}
	}
	b.AddReject(vibekit.Reject{Reason: "bad"}, t0)
	if !b.Ready(t0) {
		t.Fatal("not ready at 3 rows (2 records and a reject)")
	}
	got := b.Take()
	if len(got.Records) != 2 || len(got.Rejects) != 1 {
		t.Fatalf("took %d records and %d rejects", len(got.Records), len(got.Rejects))
	}
	if !b.Empty() || b.Ready(t0.Add(time.Hour)) {
		t.Fatal("batcher not empty after Take")
	}
}

func TestBatcher_IntervalFromOldest(t *testing.T) {
	b := New(50, time.Second)
	b.AddRecord(stream("s"), "", t0)
	// A steady stream must not push the deadline back.
	for i := 1; i < 10; i++ {
		b.AddRecord(stream("s"), "", t0.Add(time.Duration(i)*100*time.Millisecond))
	}
	if d, ok := b.Deadline(); !ok || !d.Equal(t0.Add(time.Second)) {
		t.Fatalf("deadline = %v, %v; want the oldest row's time plus 1s", d, ok)
	}
	if b.Ready(t0.Add(999 * time.Millisecond)) {
		t.Fatal("ready before the interval")
	}
	if !b.Ready(t0.Add(time.Second)) {
		t.Fatal("not ready once the oldest row waited the interval")
	}
}

func TestBatcher_LifecycleAtOnceAfterBuffered(t *testing.T) {
	b := New(50, time.Hour)
	b.AddRecord(stream("a"), "src", t0)
	b.AddRecord(stream("b"), "src", t0)
	if got := b.ActiveBuffers(); got != 2 {
		t.Fatalf("ActiveBuffers = %d, want 2", got)
	}
	b.AddRecord(vibekit.Record{SessionID: "a", EventType: vibekit.EventEnd}, "src", t0)
	if !b.Ready(t0) {
		t.Fatal("an end row did not make the batch due at once")
	}
	got := b.Take()
	if n := len(got.Records); n != 3 || got.Records[2].EventType != vibekit.EventEnd {
		t.Fatalf("batch = %+v; want the stream rows, then the end row", got.Records)
	}
}

func TestBatcher_CheckpointsAndCounts(t *testing.T) {
	b := New(50, time.Second)
	b.CountLine(10, true, t0)
	if b.Empty() {
		t.Fatal("a skipped line left the batcher empty: its count would never commit")
	}
	b.Checkpoint(vibekit.Checkpoint{Source: "f", Offset: 10}, t0)
	b.Checkpoint(vibekit.Checkpoint{Source: "g", Offset: 5}, t0)
	b.Checkpoint(vibekit.Checkpoint{Source: "f", Offset: 25}, t0)
	got := b.Take()
	if len(got.Checkpoints) != 2 || got.Checkpoints[0].Offset != 25 || got.Checkpoints[1].Offset != 5 {
		t.Fatalf("checkpoints = %+v; want the latest per source", got.Checkpoints)
	}
	if got.Lines != 1 || got.Skipped != 1 || got.Bytes != 10 {
		t.Fatalf("counts = lines %d skipped %d bytes %d", got.Lines, got.Skipped, got.Bytes)
	}
	b.Recycle(got)
	b.Checkpoint(vibekit.Checkpoint{Source: "f", Offset: 30}, t0)
	if next := b.Take(); len(next.Checkpoints) != 1 || next.Lines != 0 {
		t.Fatalf("recycled batch kept old contents: %+v", next)
	}
}

func TestBatcher_CheckpointsByKey(t *testing.T) {
	// A rotated file and its successor share a name but not a key: each keeps
	// its own checkpoint in the batch.
	b := New(50, time.Second)
	b.Checkpoint(vibekit.Checkpoint{Source: "app.log", Key: "old", Offset: 100}, t0)
	b.Checkpoint(vibekit.Checkpoint{Source: "app.log", Key: "new", Offset: 7}, t0)
	b.Checkpoint(vibekit.Checkpoint{Source: "app.log", Key: "old", Offset: 120}, t0)
	got := b.Take()
	if len(got.Checkpoints) != 2 || got.Checkpoints[0].Offset != 120 || got.Checkpoints[1].Offset != 7 {
		t.Fatalf("checkpoints = %+v; want the latest per key", got.Checkpoints)
	}
}
