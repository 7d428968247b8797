package jq

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var base = time.UnixMilli(1_764_000_000_000)

// mapLines runs lines through a Mapper, reading line i at base+i seconds,
// and finishes with status at the second after the last line.
func mapLines(t testing.TB, src string, o MapOptions, lines []string, status string) []vibekit.Record {
	t.Helper()
	p, err := CompileMap(src)
	if err != nil {
		t.Fatal(err)
	}
	if o.Run == "" {
		o.Run = "run-1" // $run is random otherwise
	}
	m := NewMapper(p, o)
	defer m.Close()
	var recs []vibekit.Record
	emit := func(r vibekit.Record) { recs = append(recs, r) }
	for i, l := range lines {
		if _, err := m.Line([]byte(l), false, base.Add(time.Duration(i)*time.Second), emit); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
	}
	m.Finish(base.Add(time.Duration(len(lines))*time.Second), status, emit)
	return recs
}

func splitLines(data []byte) []string {
	s := strings.TrimSuffix(string(data), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func encode(recs []vibekit.Record) []byte {
	var b []byte
	for i := range recs {
		b = vibekit.AppendJSON(b, &recs[i])
		b = append(b, '\n')
	}
	return b
}

// TestPresets maps the transcripts in testdata/agents through their preset
// and compares the records with jq/testdata/*.records.ndjson (-update
// rewrites them).
func TestPresets(t *testing.T) {
	tests := []struct {
		file, preset, prompt string
		// one: the file is one JSON document (gemini -o json), compacted
		// here to the one line a preset is given.
		one bool
	}{
		{file: "claude-plain", preset: "claude", prompt: "What does `make bench` do in this repo?"},
		{file: "claude-tools", preset: "claude"}, // the prompt comes from the first user message
		{file: "claude-failed", preset: "claude", prompt: "Upgrade all dependencies and make the tests pass"},
		{file: "claude-cut", preset: "claude", prompt: "Run the tests with -race"},
		{file: "codex-plain", preset: "codex", prompt: "What does make bench do?"},
		{file: "codex-tools", preset: "codex"},
		{file: "codex-failed", preset: "codex", prompt: "Upgrade all dependencies"},
		{file: "codex-cut", preset: "codex", prompt: "Run the tests with -race"},
		// Real captures (testdata/agents/real): streams and transcripts.
		{file: "real/codex-tools/stdout", preset: "codex", prompt: "run echo hi"},
		{file: "real/codex-failed/stdout", preset: "codex", prompt: "say hello"},
		{file: "real/codex-old/stdout", preset: "codex", prompt: "run echo hi"},
		{file: "real/codex-old-failed/stdout", preset: "codex", prompt: "say hello"},
		{file: "real/codex-tools/transcript", preset: "codex"},
		{file: "real/codex-failed/transcript", preset: "codex"},
		{file: "real/codex-old/transcript", preset: "codex"},
		{file: "real/gemini-tools/stdout", preset: "gemini"},
		{file: "real/gemini-failed/stdout", preset: "gemini"},
		{file: "real/gemini-json/stdout", preset: "gemini", prompt: "what is 2+2?", one: true},
		{file: "real/gemini-tools/transcript", preset: "gemini"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			src, ok := Preset(tt.preset)
			if !ok {
				t.Fatalf("no preset %q", tt.preset)
			}
			if _, err := CompilePreset(tt.preset); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("..", "testdata", "agents", tt.file)
			if scenario, ok := strings.CutSuffix(path, "/transcript"); ok {
				// The one transcript a captured run wrote, whatever its name.
				path = onlyTranscript(t, filepath.Join(scenario, "home"))
			} else if filepath.Ext(path) == "" {
				path += ".ndjson"
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if tt.one {
				var b bytes.Buffer
				if err := json.Compact(&b, data); err != nil {
					t.Fatal(err)
				}
				data = b.Bytes()
			}
			recs := mapLines(t, src, MapOptions{Session: "pipe-flag-session", Prompt: tt.prompt}, splitLines(data), "success")
			got := encode(recs)
			golden := filepath.Join("testdata", goldenName(tt.file)+".records.ndjson")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("records differ from %s (go test ./jq -run TestPresets -update rewrites it):\n%s", golden, got)
			}
			if !strings.HasSuffix(tt.file, "/transcript") { // a transcript has no start or end rows
				checkSessions(t, recs, tt.prompt != "" || tt.file == "claude-tools")
			}
		})
	}
}

// onlyTranscript is the path of the one .jsonl file under dir.
func onlyTranscript(t *testing.T, dir string) string {
	t.Helper()
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".jsonl") {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 1 {
		t.Fatalf("%s: %d transcripts, want 1: %v", dir, len(files), files)
	}
	return files[0]
}

// goldenName names the golden file of a fixture: a real capture's by its
// scenario and what the file is (stdout, a transcript).
func goldenName(file string) string {
	parts := strings.Split(file, "/")
	if len(parts) < 3 || parts[0] != "real" {
		return file
	}
	if parts[2] == "home" {
		return "real-" + parts[1] + "-transcript"
	}
	return "real-" + parts[1] + "-" + parts[2]
}

// checkSessions checks what every mapped run must hold: one start row per
// session, first, with a prompt if one was given; nothing after an end row;
// an end or error row for each session.
func checkSessions(t *testing.T, recs []vibekit.Record, prompt bool) {
	t.Helper()
	started := map[string]bool{}
	ended := map[string]bool{}  // an end row: nothing may follow
	failed := map[string]bool{} // an error row: codex may go on after one
	for i, r := range recs {
		switch {
		case ended[r.SessionID]:
			t.Errorf("row %d (%s) after the end of session %s", i+1, r.EventType, r.SessionID)
		case r.EventType == vibekit.EventStart:
			if started[r.SessionID] {
				t.Errorf("row %d: a second start row for %s", i+1, r.SessionID)
			}
			if prompt && r.Prompt == "" {
				t.Errorf("row %d: start row without a prompt", i+1)
			}
			started[r.SessionID] = true
		case !started[r.SessionID]:
			t.Errorf("row %d (%s) before session %s started", i+1, r.EventType, r.SessionID)
		case r.EventType == vibekit.EventEnd:
			ended[r.SessionID] = true
		case r.EventType == vibekit.EventError:
			failed[r.SessionID] = true
		}
	}
	for s := range started {
		if !ended[s] && !failed[s] {
			t.Errorf("session %s has no end or error row", s)
		}
	}
}

// TestPresets_Lines maps lines the captures do not have, one per case, and
// checks the rows they become ("eventType streamData metadata").
func TestPresets_Lines(t *testing.T) {
	tests := []struct {
		preset, name string
		lines        []string
		want         []string
	}{
		{"gemini", "a -o json document of a failed run", []string{
			`{"session_id":"g1","error":{"type":"FatalAuthenticationError","message":"no key","code":41}}`,
		}, []string{
			`start  {"kind":"init"}`,
			`error no key {"error_type":"FatalAuthenticationError","kind":"result","status":"error"}`,
		}},
		{"gemini", "a stream-json warning is not a failure", []string{
			`{"type":"init","session_id":"g2","model":"gemini-2.5-pro"}`,
			`{"type":"error","severity":"warning","message":"loop detected"}`,
		}, []string{
			`start  {"kind":"init","model":"gemini-2.5-pro"}`,
			`stream loop detected {"kind":"error","severity":"warning"}`,
			`end  {"duration":2000,"lines":2,"status":"incomplete"}`,
		}},
		{"codex", "the older format's task_complete ends the run; a token_count without info counts nothing", []string{
			`{"model":"gpt-5","provider":"openai","workdir":"/w"}`,
			`{"id":"0","msg":{"type":"token_count","info":null}}`,
			`{"id":"0","msg":{"type":"token_count","info":{"total_token_usage":{"input_tokens":10,"cached_input_tokens":4,"output_tokens":2}}}}`,
			`{"id":"0","msg":{"type":"task_complete","last_agent_message":"done"}}`,
		}, []string{
			`start  `,
			`stream  {"kind":"config","model":"gpt-5","provider":"openai","workdir":"/w"}`,
			`stream  {"kind":"token_count","tokens":{"cacheRead":4,"grows":true,"input":6,"model":"gpt-5","output":2,"scope":"thread"}}`,
			`end done {"kind":"task_complete","status":"success"}`,
		}},
		{"codex", "a rollout line keeps its own time and the session of its session_meta", []string{
			`{"timestamp":"2026-12-08T03:13:40.631Z","type":"session_meta","payload":{"id":"t1","cwd":"/w"}}`,
			`{"timestamp":"2026-12-08T03:13:40.704Z","type":"turn_context","payload":{"model":"gpt-5","cwd":"/w"}}`,
			`{"timestamp":"2026-12-08T03:13:41.000Z","type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":10,"output_tokens":2}}}}`,
		}, []string{
			`stream  {"cwd":"/w","kind":"session_meta"} t1 1796699620631`,
			`stream  {"cwd":"/w","kind":"turn_context","model":"gpt-5"} t1 1796699620704`,
			`stream  {"kind":"token_count","tokens":{"grows":true,"input":10,"model":"gpt-5","output":2,"scope":"thread"}} t1 1796699621000`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.preset+"/"+tt.name, func(t *testing.T) {
			src, _ := Preset(tt.preset)
			recs := mapLines(t, src, MapOptions{Session: "flag"}, tt.lines, "success")
			var got []string
			for _, r := range recs {
				s := string(r.EventType) + " " + r.StreamData + " " + string(r.Metadata)
				if r.SessionID != "flag" && r.SessionID != "g1" && r.SessionID != "g2" {
					s += fmt.Sprintf(" %s %d", r.SessionID, r.Timestamp)
				}
				got = append(got, s)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestPresetNames(t *testing.T) {
	if got := strings.Join(PresetNames(), ","); got != "claude,codex,gemini" {
		t.Fatalf("PresetNames() = %s", got)
	}
	for _, name := range PresetNames() {
		p, err := CompilePreset(name)
		if err != nil {
			t.Errorf("preset %s: %v", name, err)
		} else if p.Timeout >= 0 {
			t.Errorf("preset %s runs with a time limit", name)
		}
	}
	if _, err := CompilePreset("aider"); err == nil || !strings.Contains(err.Error(), "presets: claude, codex, gemini") {
		t.Errorf("CompilePreset(aider): err = %v", err)
	}
	for _, name := range []string{"", "nope", "../jq", "claude.jq"} {
		if _, ok := Preset(name); ok {
			t.Errorf("Preset(%q) found", name)
		}
	}
}

func TestMapper(t *testing.T) {
	o := MapOptions{Session: "flag", Agent: "gemini", Mode: "chat", Prompt: "p0", RepoURL: "https://example.com/r"}
	tests := []struct {
		name   string
		src    string
		lines  []string
		status string
		want   []string // records as "sessionId eventType agentType prompt|streamData|metadata"
	}{
		{
			name:  "defaults come from the flags and the flag session gets start and end rows",
			src:   `{streamData: .msg}`,
			lines: []string{`{"msg":"a"}`, `plain text`, `{"msg":"b"}`},
			want: []string{
				`flag start gemini p0||`,
				`flag stream gemini |a|`,
				`flag stream gemini |plain text|`,
				`flag stream gemini |b|`,
				`flag end gemini ||{"duration":3000,"lines":3,"status":"success"}`,
			},
		},
		{
			name:   "a program's session ends incomplete, or with the stop's status",
			src:    `if .t == "init" then {sessionId: .id, eventType: "start", prompt: "x"} else {streamData: .msg} end`,
			lines:  []string{`{"t":"init","id":"s1"}`, `{"msg":"a"}`, `not json {`},
			status: "interrupted",
			want: []string{
				`s1 start gemini x||`,
				`s1 stream gemini |a|`,
				`s1 stream gemini |not json {|`,
				`s1 end gemini ||{"duration":3000,"lines":3,"status":"interrupted"}`,
			},
		},
		{
			name:  "a start row without a prompt takes the next row's",
			src:   `if .t == "init" then {sessionId: .id, eventType: "start"} else {prompt: .p, streamData: .p} end`,
			lines: []string{`{"t":"init","id":"s1"}`, `{"p":"fix it"}`, `{"p":"later"}`},
			want: []string{
				`s1 start gemini fix it||`,
				`s1 stream gemini fix it|fix it|`,
				`s1 stream gemini later|later|`,
				`s1 end gemini ||{"duration":3000,"lines":3,"status":"incomplete"}`,
			},
		},
		{
			name:  "a held start row is released by the end of input",
			src:   `{sessionId: "s1", eventType: "start"}`,
			lines: []string{`{}`},
			want: []string{
				`s1 start gemini ||`,
				`s1 end gemini ||{"duration":1000,"lines":1,"status":"incomplete"}`,
			},
		},
		{
			name:  "empty drops, several outputs, end closes, tool names follow tool_use_id",
			src:   `if .skip then empty else ({sessionId: "s", eventType: .e, metadata: .m}, ({eventType: "stream", streamData: "again"} | select($session == "s"))) end`,
			lines: []string{`{"skip":true}`, `{"e":"start","m":{"tool":"Bash","tool_use_id":"t1"}}`, `{"e":"stream","m":{"tool_use_id":"t1"}}`, `{"e":"end"}`},
			want: []string{
				`s start gemini ||{"tool":"Bash","tool_use_id":"t1"}`, // $session was still "flag"
				`s stream gemini ||{"tool":"Bash","tool_use_id":"t1"}`,
				`s stream gemini |again|`,
				`s end gemini ||`,
				`s stream gemini |again|`,
			},
		},
		{
			name: "usage without a model takes the last model its session named",
			src:  `{sessionId: .s, metadata: .m}`,
			lines: []string{
				`{"s":"a","m":{"tokens":{"input":1}}}`,              // no model named yet
				`{"s":"a","m":{"model":"m1"}}`,                      // named in the metadata
				`{"s":"b","m":{"tokens":{"model":"m2","input":2}}}`, // or in the usage
				`{"s":"a","m":{"tokens":{"input":3}}}`,
				`{"s":"b","m":{"tokens":[{"input":4},{"model":"m3","input":5},7]}}`,
				`{"s":"a","m":{"tokens":{"model":null,"input":6}}}`,
				`{"s":"a","m":{"tokens":"bad"}}`,
			},
			want: []string{
				`a stream gemini ||{"tokens":{"input":1}}`,
				`a stream gemini ||{"model":"m1"}`,
				`b stream gemini ||{"tokens":{"input":2,"model":"m2"}}`,
				`a stream gemini ||{"tokens":{"input":3,"model":"m1"}}`,
				`b stream gemini ||{"tokens":[{"input":4,"model":"m2"},{"input":5,"model":"m3"},7]}`,
				`a stream gemini ||{"tokens":{"input":6,"model":"m1"}}`,
				`a stream gemini ||{"tokens":"bad"}`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status := tt.status
			if status == "" {
				status = "success"
			}
			recs := mapLines(t, tt.src, o, tt.lines, status)
			var got []string
			for _, r := range recs {
				if r.RepoURL != o.RepoURL || r.Mode != o.Mode {
					t.Errorf("record %+v lost the flags' mode or repo", r)
				}
				got = append(got, r.SessionID+" "+string(r.EventType)+" "+r.AgentType+" "+r.Prompt+"|"+r.StreamData+"|"+string(r.Metadata))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestMapper_Errors(t *testing.T) {
	tests := []struct{ src, line, err string }{
		{`"text"`, `{}`, "map output 1 is a string, not an object"},
		{`{eventType: "begin"}`, `{}`, `map output 1: event type "begin"`},
		{`{}, {metadata: 1}`, `{}`, "map output 2: metadata must be a JSON object"},
		{`error("no")`, `{}`, "jq: error: no"},
		{`range(20000) | {}`, `{}`, "more than 10000 records"},
	}
	for _, tt := range tests {
		p, err := CompileMap(tt.src)
		if err != nil {
			t.Fatal(err)
		}
		m := NewMapper(p, MapOptions{Session: "s"})
		emitted := 0
		n, err := m.Line([]byte(tt.line), false, base, func(vibekit.Record) { emitted++ })
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: err = %v, want %q", tt.src, err, tt.err)
		}
		if n != 0 || emitted != 0 {
			t.Errorf("%s: a failed line gave %d records, emitted %d", tt.src, n, emitted)
		}
		m.Close()
	}
}

func TestMapper_PartialText(t *testing.T) {
	p, _ := CompileMap(`{}`)
	m := NewMapper(p, MapOptions{Session: "s"})
	defer m.Close()
	var recs []vibekit.Record
	m.Line([]byte(`{"cut":`), true, base, func(r vibekit.Record) { recs = append(recs, r) })
	if len(recs) != 2 || recs[1].StreamData != `{"cut":` || string(recs[1].Metadata) != `{"partial":true}` || recs[1].AgentType != "unknown" {
		t.Fatalf("got %+v", recs)
	}
}

// TestMapper_Started is a caller that writes the --session session's start
// and end rows itself: the Mapper writes neither, and text lines still go to
// that session.
func TestMapper_Started(t *testing.T) {
	p, _ := CompileMap(`{}`)
	m := NewMapper(p, MapOptions{Session: "s", Prompt: "p"})
	defer m.Close()
	m.Started()
	var recs []vibekit.Record
	emit := func(r vibekit.Record) { recs = append(recs, r) }
	m.Line([]byte("plain text"), false, base, emit)
	m.Finish(base.Add(time.Second), "success", emit)
	if len(recs) != 1 || recs[0].EventType != vibekit.EventStream || recs[0].SessionID != "s" {
		t.Fatalf("got %+v, want the text row only", recs)
	}
}

// TestMapper_OneStartPerSession: Claude Code prints an init message for
// every turn of a multi-turn run (--input-format stream-json); the session
// still has one start row, and the later inits are stream rows.
func TestMapper_OneStartPerSession(t *testing.T) {
	src, _ := Preset("claude")
	data, err := os.ReadFile("../testdata/agents/real/claude-multiturn/stdout.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(data, []byte(`"subtype":"init"`)); n != 2 {
		t.Fatalf("the capture has %d init messages, want 2", n)
	}
	recs := mapLines(t, src, MapOptions{Session: "flag"}, splitLines(data), "success")
	starts, inits := 0, 0
	for _, r := range recs {
		if r.SessionID != "00000000-0000-4000-8000-000000000002" {
			continue
		}
		if r.EventType == vibekit.EventStart {
			starts++
		}
		if bytes.Contains(r.Metadata, []byte(`"kind":"init"`)) {
			inits++
		}
	}
	if starts != 1 || inits != 2 {
		t.Errorf("%d start rows and %d init rows, want 1 and 2", starts, inits)
	}
}

// TestMapper_UsageOncePerCall: Claude Code's transcript writes an API call's
// usage on a line per content block; the rows keep it on the first line
// only, and the next call's usage is kept.
func TestMapper_UsageOncePerCall(t *testing.T) {
	src, _ := Preset("claude")
	path := onlyTranscript(t, "../testdata/agents/real/claude-tools/home")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := splitLines(data)
	withUsage := 0
	for _, l := range lines {
		if strings.Contains(l, `"requestId"`) && strings.Contains(l, `"usage"`) {
			withUsage++
		}
	}
	recs := mapLines(t, src, MapOptions{Session: "flag"}, lines, "success")
	keys := map[string]int{}
	for _, r := range recs {
		var md struct {
			Tokens *struct{ Key string } `json:"tokens"`
		}
		json.Unmarshal(r.Metadata, &md)
		if md.Tokens != nil {
			keys[md.Tokens.Key]++
		}
	}
	if withUsage != 3 || len(keys) != 2 {
		t.Fatalf("%d transcript lines with usage, %d calls in the rows (want 3 lines of 2 calls): %v", withUsage, len(keys), keys)
	}
	for k, n := range keys {
		if n != 1 {
			t.Errorf("call %s carried by %d rows, want 1", k, n)
		}
	}
}
