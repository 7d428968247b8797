package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchEvents writes n telemetry records of about 500 bytes to a file.
func benchEvents(b *testing.B, n int) (path string, size int64) {
	b.Helper()
	path = filepath.Join(b.TempDir(), "events.ndjson")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	pad := strings.Repeat("lorem ipsum dolor sit amet ", 14)
	var sb strings.Builder
	for i := range n {
		sess := fmt.Sprintf("sess-%d", i/100)
		event := "stream"
		switch i % 100 {
		case 0:
			event = "start"
		case 99:
			event = "end"
		}
		fmt.Fprintf(&sb, `{"sessionId":"%s","eventType":"%s","agentType":"claude","mode":"code","streamData":"%d %s","metadata":{"seq":%d},"timestamp":%d}`+"\n",
			sess, event, i, pad, i, 1764000000000+int64(i))
		if sb.Len() > 1<<20 {
			f.WriteString(sb.String())
			sb.Reset()
		}
	}
	f.WriteString(sb.String())
	fi, _ := f.Stat()
	return path, fi.Size()
}

// BenchmarkIngest compares ingest from stdin with catching up on a file
// with --follow: the same events, the same store.
func BenchmarkIngest(b *testing.B) {
	const n = 200_000
	events, size := benchEvents(b, n)
	empty := filepath.Join(filepath.Dir(events), "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, follow bool) {
		b.SetBytes(size)
		for i := range b.N {
			db := filepath.Join(b.TempDir(), fmt.Sprintf("t%d.db", i))
			args := []string{"--db", db, "--quiet"}
			input := events
			if follow {
				// stdin at its end: read the file to its end, then stop.
				args, input = append(args, "--follow", events), empty
			}
			stdin, err := os.Open(input)
			if err != nil {
				b.Fatal(err)
			}
			if code := RunPipe(context.Background(), args, stdin, io.Discard, os.Stderr); code != 0 {
				b.Fatalf("exit %d", code)
			}
			stdin.Close()
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	}
	b.Run("stdin", func(b *testing.B) { run(b, false) })
	b.Run("follow", func(b *testing.B) { run(b, true) })
}
