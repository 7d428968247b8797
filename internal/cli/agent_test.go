package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/batch"
	"github.com/vibekit/vibekit-pipe/reader"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

// newMapPipe is a pipe with the claude preset, redacting secrets.
func newMapPipe(t *testing.T, db *sqlite.DB) *pipe {
	t.Helper()
	o := &pipeOptions{session: "s", agent: "unknown", maxLine: reader.DefaultMaxLine}
	o.preset, o.redact = "claude", "secrets"
	ag, err := newAgent(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ag.close)
	return &pipe{o: o, db: db, b: batch.New(10, time.Hour), stderr: os.Stderr, now: time.Now, ag: ag}
}

// TestPipe_MapCounts: with a map program the counters still reconcile
// (lines read = rows + rejects + skipped), and the records written are the
// rows plus the session rows (a line may become several records, the
// Mapper adds start and end rows).
func TestPipe_MapCounts(t *testing.T) {
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "t.db"), sqlite.Options{EnableIndexes: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	transcript, err := os.ReadFile("../../testdata/agents/claude-tools.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	input := "plain text before the run\n\n" + string(transcript) +
		`{"type":"stream_event","event":{}}` + "\n" + // dropped by the preset: a skip
		`{"type":"user","session_id":{"not":"a string"},"message":{"content":"x"}}` + "\n" // an invalid record: a reject
	in := filepath.Join(t.TempDir(), "in.ndjson")
	os.WriteFile(in, []byte(input), 0o600)
	f, _ := os.Open(in)
	defer f.Close()

	p := newMapPipe(t, db)
	if err := p.run(context.Background(), p.ag.source(&reader.Stream{File: f, Name: "stdin"}, p.now)); err != nil {
		t.Fatal(err)
	}
	m := p.m
	if m.lines != int64(strings.Count(input, "\n")) || m.lines != m.rows+m.rejects+m.skipped {
		t.Fatalf("lines %d = rows %d + rejects %d + skipped %d?", m.lines, m.rows, m.rejects, m.skipped)
	}
	if m.rejects != 1 || m.skipped != 2 {
		t.Errorf("rejects %d, skipped %d; want 1 and 2 (a blank line, a dropped one)", m.rejects, m.skipped)
	}
	// The text line's session: start, the line, end; the run: 16 records.
	if want := int64(3 + 16); m.written != want || m.written != m.rows+m.generated {
		t.Errorf("written %d = rows %d + session rows %d, want %d", m.written, m.rows, m.generated, want)
	}
}

// TestPipe_CheckpointHeld: while the Mapper holds a start row back (in no
// batch yet), the input's position is not recorded past the line it came
// from, so a followed file would resume there.
func TestPipe_CheckpointHeld(t *testing.T) {
	p := newMapPipe(t, nil)
	now := time.Now()
	line := func(n int64, data string) *reader.Line {
		return &reader.Line{Source: "f", Num: n, End: n * 100, Data: []byte(data), Length: int64(len(data))}
	}
	checkpoints := func() []vibekit.Checkpoint {
		b := p.b.Take()
		defer p.b.Recycle(b)
		return append([]vibekit.Checkpoint(nil), b.Checkpoints...)
	}
	p.handle(line(1, `{"type":"system","subtype":"init","session_id":"c1","model":"m"}`), now)
	if cps := checkpoints(); len(cps) != 0 {
		t.Fatalf("checkpoint %+v while the start row is held", cps)
	}
	p.handle(line(2, ""), now) // a skip: still held
	if cps := checkpoints(); len(cps) != 0 {
		t.Fatalf("checkpoint %+v while the start row is held", cps)
	}
	// Another input's position is recorded meanwhile.
	other := line(1, "")
	other.Source = "g"
	p.handle(other, now)
	if cps := checkpoints(); len(cps) != 1 || cps[0].Source != "g" {
		t.Fatalf("checkpoints %+v, want g's", cps)
	}
	p.handle(line(3, `{"type":"user","session_id":"c1","message":{"content":"fix it"}}`), now)
	cps := checkpoints()
	if len(cps) != 1 || cps[0].Line != 3 || cps[0].Offset != 300 {
		t.Fatalf("checkpoints %+v, want line 3 once the start row is out", cps)
	}
}
