package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestBenchCommands checks the table that people edit: comparisons name a
// reference, dumps read a database an earlier ingest wrote, and only known
// placeholders are used.
func TestBenchCommands(t *testing.T) {
	known := map[string]bool{"{bin}": true, "{work}": true, "{events}": true, "{db}": true, "{rotdb}": true, "{refdb}": true, "{followdb}": true, "{empty}": true,
		"{claude}": true, "{nonedb}": true, "{claudedb}": true, "{presetdb}": true, "{presetnonedb}": true}
	placeholder := regexp.MustCompile(`\{[a-z]+\}`)
	names := map[string]command{}
	written := map[string]bool{}
	for _, c := range benchCommands() {
		if _, dup := names[c.name]; dup {
			t.Errorf("%s: name used twice", c.name)
		}
		names[c.name] = c
		if (len(c.argv) == 0) == (c.shell == "") {
			t.Errorf("%s: want exactly one of argv and shell", c.name)
		}
		texts := append([]string{c.shell, c.stdin, c.db}, c.argv...)
		for _, s := range texts {
			for _, p := range placeholder.FindAllString(s, -1) {
				if !known[p] {
					t.Errorf("%s: unknown placeholder %s in %q", c.name, p, s)
				}
			}
		}
		switch c.unit {
		case unitEvents:
			written[c.db] = true
		case unitRows:
			if !written[c.db] {
				t.Errorf("%s: reads %s before any ingest writes it", c.name, c.db)
			}
		default:
			t.Errorf("%s: unit %q", c.name, c.unit)
		}
	}
	for _, c := range names {
		for _, b := range c.bases {
			if base, ok := names[b]; !ok || base.reference || base.unit != c.unit {
				t.Errorf("%s: base %q is not a command of ours with unit %s", c.name, b, c.unit)
			}
		}
		if c.vs == "" {
			continue
		}
		ref, ok := names[c.vs]
		if !ok || !ref.reference || ref.unit != c.unit {
			t.Errorf("%s: vs %q is not a reference command with unit %s", c.name, c.vs, c.unit)
		}
	}
}

func TestDisplay(t *testing.T) {
	tests := []struct {
		cmd  command
		want string
	}{
		{command{argv: []string{"{bin}/vibekit-pipe", "--db", "{db}"}, stdin: "{events}"}, "vibekit-pipe --db ingest.db < events.ndjson"},
		{command{argv: []string{"sqlite3", "-json", "{db}", "select * from telemetry"}}, "sqlite3 -json ingest.db 'select * from telemetry'"},
		{command{argv: []string{"x", "it's"}}, `x 'it'\''s'`},
		{command{shell: "sqlite3 {db} | jq ."}, "sqlite3 ingest.db | jq ."},
		{command{argv: []string{"{bin}/vibekit-pipe"}, env: []string{"VIBEKIT_A=1", "VIBEKIT_B=x y"}}, "VIBEKIT_A=1 'VIBEKIT_B=x y' vibekit-pipe"},
	}
	for _, tt := range tests {
		if got := display(tt.cmd); got != tt.want {
			t.Errorf("display(%+v) = %q, want %q", tt.cmd, got, tt.want)
		}
	}
}

func TestBench_Expand(t *testing.T) {
	b := bench{paths: map[string]string{"{db}": "/tmp/a b/ingest.db", "{refdb}": "/tmp/ref.db"}}
	if got, want := b.expand("sqlite3 {db} {refdb}", true), `sqlite3 '/tmp/a b/ingest.db' /tmp/ref.db`; got != want {
		t.Errorf("quoted: got %q, want %q", got, want)
	}
	if got, want := b.expand("{db}", false), "/tmp/a b/ingest.db"; got != want {
		t.Errorf("unquoted: got %q, want %q", got, want)
	}
}

func TestGroup(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1000000: "1,000,000", -12345: "-12,345"} {
		if got := group(n); got != want {
			t.Errorf("group(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestTailBuffer(t *testing.T) {
	var tb tailBuffer
	chunk := make([]byte, 10000)
	for i := range 100 {
		chunk[0] = byte(i)
		tb.Write(chunk)
	}
	if got, want := tb.Len(), tailMax; got != want {
		t.Fatalf("Len = %d, want %d", got, want)
	}
	if got := tb.Bytes()[tailMax-10000]; got != 99 {
		t.Errorf("last chunk starts with %d, want 99", got)
	}
}

// TestStatsLines: the seal figures are read from the line vibekit-pipe's
// --stats prints, and their absence is said.
func TestStatsLines(t *testing.T) {
	line := "vibekit-pipe: seals 8, last ingest-20261102T031107.394Z-20261102T070147.723Z-000008.db.zst (111014 rows, 147.3 MB -> 10.9 MB): " +
		"switch 12.3 ms, compress 534 ms, verify 70 ms, finish 29.5 ms; longest stall 29.5 ms, all stalls 212 ms\n"
	got := statsLines([]byte("vibekit-pipe: lines read 10\n"+line), "ingest")
	want := "ingest: 8 seals; ingest waited for them only in their switches and finishes, two short transactions each: 212 ms in all, the longest 29.5 ms"
	if len(got) != 1 || got[0] != want {
		t.Errorf("statsLines = %q, want %q", got, want)
	}
	if got := statsLines([]byte("vibekit-pipe: lines read 10\n"), "ingest"); len(got) != 1 || !strings.Contains(got[0], "no seal reported") {
		t.Errorf("statsLines without seals = %q", got)
	}
}
