package cli

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// hostile are stored values that a terminal would act on: OSC 52 (writes
// the clipboard), a CSI that clears the screen, BEL, a C1 CSI (U+009B),
// DEL, a bidirectional override and a fake line. (A byte that is not UTF-8
// is stored as U+FFFD: see TestTermText for its escape.)
var hostile = []string{
	"\x1b]52;c;ZWNobyBwd25lZA==\x07",
	"\x1b[2J\x1b[H",
	"ring\x07",
	"c1\u009b31m",
	"del\x7f",
	"rtl\u202eevil",
	"fake\nErrors: 0",
}

// rawControl reports the first raw control a terminal would act on in b:
// C0 but newline, DEL, C1 (as UTF-8), a bidi override, a non-UTF-8 byte.
func rawControl(b []byte) (string, bool) {
	s := string(b)
	for i, r := range s {
		switch {
		case r == '\n':
		case r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f || r == 0x202e:
			return s[max(0, i-20):min(len(s), i+20)], true
		case r == 0xfffd && strings.HasPrefix(s[i:], "\xff"):
			return s[max(0, i-20):min(len(s), i+20)], true
		}
	}
	return "", false
}

func TestTermText(t *testing.T) {
	for in, want := range map[string]string{
		"plain text":                     "plain text",
		"\x1b]52;c;ZWNobw==\x07":         `\x1b]52;c;ZWNobw==\x07`,
		"\x1b[31mred\x1b[0m":             `\x1b[31mred\x1b[0m`,
		"c1 \u009b31m":                   `c1 \u009b31m`,
		"del\x7f nul\x00":                `del\x7f nul\x00`,
		"a\nb\tc\r":                      `a\nb\tc\r`,
		"rtl\u202eevil \u2066iso\u2069":  `rtl\u202eevil \u2066iso\u2069`,
		"bad\xffbyte":                    `bad\xffbyte`,
		"café 日本 😀 \u00a0nbsp \\x1b lit": "café 日本 😀 \u00a0nbsp \\x1b lit",
	} {
		if got := termText(in); got != want {
			t.Errorf("termText(%q) = %q, want %q", in, got, want)
		}
	}
	if got, want := termLines("one\x1b[2J\ntwo"), "one\\x1b[2J\ntwo"; got != want {
		t.Errorf("termLines = %q, want %q", got, want)
	}
}

// TestOutputs_EscapeControls stores hostile values (and one of 1 MB) in
// every field that reports show, then checks that no raw control reaches
// stdout or stderr of the outputs for people: stats and session text,
// sessions, dump and query tables, and an error that quotes a value. The
// NDJSON of dump carries the C0 controls escaped by JSON.
func TestOutputs_EscapeControls(t *testing.T) {
	pipeBin, vk := programs(t)
	db := filepath.Join(t.TempDir(), "t.db")
	big := strings.Repeat("\x1b]52;c;QUFB\x07", (1<<20)/12)
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for i, h := range append(hostile, big) {
		id := "s" + h
		if len(h) > 1000 {
			id = "big"
		}
		enc.Encode(map[string]any{"sessionId": id, "eventType": "start", "agentType": "agent" + h, "mode": "mode" + h, "prompt": h, "timestamp": 1732704000000 + i})
		enc.Encode(map[string]any{"sessionId": id, "eventType": "stream", "agentType": "agent" + h, "streamData": h, "metadata": map[string]any{"k" + h: h}, "timestamp": 1732704000001 + i})
		enc.Encode(map[string]any{"sessionId": id, "eventType": "end", "agentType": "agent" + h, "metadata": map[string]any{"status": "st" + h}, "timestamp": 1732704000002 + i})
	}
	cmd := exec.Command(pipeBin, "--db", db, "--quiet", "--redact", "none", "--max-line-bytes", "16777216")
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	run := func(wantFail bool, args ...string) (stdout, stderr []byte) {
		t.Helper()
		cmd := exec.Command(vk, append([]string{"telemetry"}, args...)...)
		cmd.Args[0] = "vibekit"
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		if (err != nil) != wantFail {
			t.Fatalf("vibekit %s: %v\n%.2000s", strings.Join(args, " "), err, e.String())
		}
		return o.Bytes(), e.Bytes()
	}
	check := func(name string, b []byte, want ...string) {
		t.Helper()
		if ctx, bad := rawControl(b); bad {
			t.Errorf("%s: a raw control reaches the terminal: %q", name, ctx)
		}
		for _, w := range want {
			if !bytes.Contains(b, []byte(w)) {
				t.Errorf("%s: %q missing in %.500q", name, w, b)
			}
		}
	}
	osc := `\x1b]52;c;ZWNobyBwd25lZA==\x07`
	out, _ := run(false, "stats", "--db", db, "--format", "text")
	check("stats", out, "agent"+osc, `agentc1\u009b31m`, `agentfake\nErrors: 0`)
	for _, h := range hostile {
		out, _ = run(false, "session", "s"+h, "--db", db, "--format", "text")
		check("session "+termText(h), out, "Session: s"+termText(h), "Agent: agent"+termText(h), "Mode: mode"+termText(h))
	}
	out, _ = run(false, "session", "big", "--db", db, "--format", "text")
	check("session big", out, `Agent: agent\x1b]52;c;QUFB\x07\x1b]52`)
	out, _ = run(false, "sessions", "--db", db, "--format", "table")
	check("sessions table", out, "s"+osc, `s\x1b[2J\x1b[H`)
	out, _ = run(false, "dump", "--db", db, "--format", "table")
	check("dump table", out, "s"+osc, `ring\x07`, `rtl\u202eevil`)
	out, _ = run(false, "query", "--db", db, "--format", "table", `SELECT streamData AS "col`+"\x1b[2J"+`" FROM telemetry WHERE eventType = 'stream'`)
	check("query table", out, "col\\x1b[2J", osc)
	_, errOut := run(true, "dump", "--db", db, "--jq", `select(.eventType == "stream") | .streamData | error`)
	check("error", errOut, `\x1b]52;c;`)
	// NDJSON: JSON escapes C0 controls itself, and it stays byte for byte
	// what it was.
	out, _ = run(false, "dump", "--db", db, "--session", "s"+hostile[0])
	if !bytes.Contains(out, []byte(`\u001b]52;c;ZWNobyBwd25lZA==\u0007`)) || bytes.ContainsAny(out, "\x1b\x07") {
		t.Errorf("ndjson: %q", out)
	}
}
