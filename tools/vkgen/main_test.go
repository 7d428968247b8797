package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"testing"
	"unicode/utf8"
)

// MustGenerate returns the output of generate for cfg.
func MustGenerate(tb testing.TB, cfg config) []byte {
	tb.Helper()
	var buf bytes.Buffer
	st, err := generate(&buf, cfg)
	if err != nil {
		tb.Fatalf("generate(%+v): %v", cfg, err)
	}
	if got, want := st.bytes, int64(buf.Len()); got != want {
		tb.Fatalf("stats.bytes = %d, wrote %d", got, want)
	}
	if got, want := st.events, int64(cfg.events); got != want {
		tb.Fatalf("stats.events = %d, want %d", got, want)
	}
	return buf.Bytes()
}

func TestGenerate_Deterministic(t *testing.T) {
	cfg := config{events: 20000, seed: 7, concurrent: 8}
	a, b := MustGenerate(t, cfg), MustGenerate(t, cfg)
	if !bytes.Equal(a, b) {
		t.Fatal("same seed gave different output")
	}
	cfg.seed = 8
	if c := MustGenerate(t, cfg); bytes.Equal(a, c) {
		t.Fatal("seeds 7 and 8 gave the same output")
	}
}

// event is the part of a line the checks read.
type event struct {
	SessionID  *string         `json:"sessionId"`
	EventType  string          `json:"eventType"`
	AgentType  string          `json:"agentType"`
	Mode       string          `json:"mode"`
	Prompt     *string         `json:"prompt"`
	StreamData *string         `json:"streamData"`
	Metadata   json.RawMessage `json:"metadata"`
	Timestamp  int64           `json:"timestamp"`
}

func TestGenerate_Sessions(t *testing.T) {
	tests := []struct {
		name string
		cfg  config
	}{
		{"many", config{events: 30000, seed: 1, concurrent: 8}},
		{"one at a time", config{events: 5000, seed: 2, concurrent: 1}},
		{"two events", config{events: 2, seed: 3, concurrent: 8}},
		{"three events", config{events: 3, seed: 4, concurrent: 8}},
		{"odd count", config{events: 1001, seed: 5, concurrent: 64}},
		{"none", config{events: 0, seed: 6, concurrent: 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkSessions(t, MustGenerate(t, tt.cfg), tt.cfg.events)
		})
	}
}

// checkSessions checks that out holds want valid events, and that every
// session is a start row, stream rows, then an end or error row, with
// increasing timestamps.
func checkSessions(t *testing.T, out []byte, want int) {
	t.Helper()
	type state struct {
		closed bool
		last   int64
	}
	sessions := map[string]*state{}
	lines := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines++
		line := sc.Bytes()
		if !json.Valid(line) {
			t.Fatalf("line %d is not valid JSON: %s", lines, line)
		}
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("line %d: %v", lines, err)
		}
		if e.SessionID == nil || *e.SessionID == "" {
			t.Fatalf("line %d: no sessionId", lines)
		}
		if e.AgentType == "" || e.Mode == "" {
			t.Fatalf("line %d: no agentType or mode: %s", lines, line)
		}
		if len(e.Metadata) == 0 || e.Metadata[0] != '{' {
			t.Fatalf("line %d: metadata is not an object: %s", lines, line)
		}
		if e.Timestamp < baseTime {
			t.Fatalf("line %d: timestamp %d before %d", lines, e.Timestamp, int64(baseTime))
		}
		s := sessions[*e.SessionID]
		switch e.EventType {
		case "start":
			if s != nil {
				t.Fatalf("line %d: second start of session %s", lines, *e.SessionID)
			}
			if e.Prompt == nil || *e.Prompt == "" {
				t.Fatalf("line %d: start without prompt", lines)
			}
			sessions[*e.SessionID] = &state{last: e.Timestamp}
			continue
		case "stream":
			if e.StreamData == nil {
				t.Fatalf("line %d: stream without streamData", lines)
			}
			if n := utf8.RuneCountInString(*e.StreamData); n < 20 || n > 2000 {
				t.Fatalf("line %d: streamData has %d characters, want 20-2000", lines, n)
			}
		case "end":
		case "error":
			if e.Prompt == nil || *e.Prompt == "" {
				t.Fatalf("line %d: error without message in prompt", lines)
			}
		default:
			t.Fatalf("line %d: eventType %q", lines, e.EventType)
		}
		if s == nil {
			t.Fatalf("line %d: %s row before the start of session %s", lines, e.EventType, *e.SessionID)
		}
		if s.closed {
			t.Fatalf("line %d: %s row after the end of session %s", lines, e.EventType, *e.SessionID)
		}
		if e.Timestamp <= s.last {
			t.Fatalf("line %d: timestamp %d not after %d in session %s", lines, e.Timestamp, s.last, *e.SessionID)
		}
		s.last = e.Timestamp
		s.closed = e.EventType == "end" || e.EventType == "error"
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if lines != want {
		t.Fatalf("got %d lines, want %d", lines, want)
	}
	for id, s := range sessions {
		if !s.closed {
			t.Errorf("session %s has no end or error row", id)
		}
	}
}

func TestGenerate_BadConfig(t *testing.T) {
	for _, cfg := range []config{{events: 1, concurrent: 1}, {events: -1, concurrent: 1}, {events: 10, concurrent: 0}} {
		if _, err := generate(&bytes.Buffer{}, cfg); err == nil {
			t.Errorf("generate(%+v): no error", cfg)
		}
	}
}

func TestAppendEscaped(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\s/", "nl\n\r\t", "\x00\x1f\x7f", "é 日本語 🎉", "\u2028"} {
		b := append([]byte{'"'}, appendEscaped(nil, s)...)
		b = append(b, '"')
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: %s: %v", s, b, err)
		}
		if got != s {
			t.Errorf("round trip of %q gave %q", s, got)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	cfg := config{events: 100000, seed: 1, concurrent: 8}
	var n int64
	for b.Loop() {
		st, err := generate(discard{}, cfg)
		if err != nil {
			b.Fatal(err)
		}
		n = st.bytes
	}
	b.SetBytes(n)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestGenerateClaude checks the claude format: exactly n lines of JSON, the
// same for the same seed, runs of init, prompt, messages and a result, and
// every tool_use answered by a tool_result before the run goes on.
func TestGenerateClaude(t *testing.T) {
	for _, n := range []int{3, 4, 20000} {
		cfg := config{events: n, seed: 1, format: "claude"}
		var a, b bytes.Buffer
		st, err := generateClaude(&a, cfg)
		if err != nil {
			t.Fatal(err)
		}
		generateClaude(&b, cfg)
		if !bytes.Equal(a.Bytes(), b.Bytes()) || st.events != int64(n) || st.bytes != int64(a.Len()) {
			t.Fatalf("n=%d: %+v, %d bytes; not deterministic or miscounted", n, st, a.Len())
		}
		sc := bufio.NewScanner(&a)
		sc.Buffer(nil, 1<<20)
		var (
			lines   int
			state   = "result" // what the previous line was
			pending string
		)
		for sc.Scan() {
			lines++
			var m struct {
				Type    string
				Message struct {
					Content []struct {
						Type, ID  string
						ToolUseID string `json:"tool_use_id"`
					}
				}
			}
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("line %d: %v", lines, err)
			}
			switch {
			case m.Type == "system":
				if state != "result" || pending != "" {
					t.Fatalf("line %d: init inside a run", lines)
				}
			case m.Type == "result":
				if pending != "" {
					t.Fatalf("line %d: result with a tool_use unanswered", lines)
				}
			case m.Type == "assistant" && m.Message.Content[0].Type == "tool_use":
				pending = m.Message.Content[0].ID
			case m.Type == "user" && m.Message.Content[0].Type == "tool_result":
				if m.Message.Content[0].ToolUseID != pending || pending == "" {
					t.Fatalf("line %d: tool_result without a tool_use", lines)
				}
				pending = ""
			}
			state = m.Type
		}
		if lines != n || state != "result" {
			t.Fatalf("n=%d: %d lines, last %s", n, lines, state)
		}
	}
	if _, err := generateClaude(io.Discard, config{events: 2, format: "claude"}); err == nil {
		t.Error("-n 2: no error")
	}
}
