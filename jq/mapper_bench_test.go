package jq

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// BenchmarkMapper maps the transcripts' lines in a loop through their
// preset: one op is one input line. DecodeLine is beside it for scale (the
// work a line costs without a map).
func BenchmarkMapper(b *testing.B) {
	for _, bc := range []struct{ preset, file string }{{"claude", "claude-tools"}, {"codex", "codex-tools"}} {
		data, err := os.ReadFile(filepath.Join("..", "testdata", "agents", bc.file+".ndjson"))
		if err != nil {
			b.Fatal(err)
		}
		lines := splitLines(data)
		var size int
		for _, l := range lines {
			size += len(l) + 1
		}
		p, err := CompilePreset(bc.preset)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.preset, func(b *testing.B) {
			m := NewMapper(p, MapOptions{Session: "s"})
			defer m.Close()
			now := time.Now()
			emit := func(vibekit.Record) {}
			b.SetBytes(int64(size / len(lines)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := m.Line([]byte(lines[i%len(lines)]), false, now, emit); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.preset+"/DecodeLine", func(b *testing.B) {
			now := time.Now()
			b.SetBytes(int64(size / len(lines)))
			for i := 0; b.Loop(); i++ {
				var rec vibekit.Record
				vibekit.DecodeLine([]byte(lines[i%len(lines)]), now, &rec)
			}
		})
	}
}
