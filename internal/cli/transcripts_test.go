package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestTranscriptRoots(t *testing.T) {
	env := func(kv map[string]string) func(string) string {
		return func(k string) string { return kv[k] }
	}
	got := transcriptRoots(env(map[string]string{"HOME": "/h"}))
	want := []transcriptRoot{
		{"/h/.config/claude", "/h/.config/claude/projects/**/*.jsonl", "claude"},
		{"/h/.claude", "/h/.claude/projects/**/*.jsonl", "claude"},
		{"/h/.codex", "/h/.codex/sessions/**/*.jsonl", "codex"},
		{"/h/.gemini", "/h/.gemini/tmp/*/chats/*.jsonl", "gemini"},
	}
	if len(got) != len(want) {
		t.Fatalf("roots %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("root %d = %v, want %v", i, got[i], want[i])
		}
	}
	got = transcriptRoots(env(map[string]string{"HOME": "/h", "CLAUDE_CONFIG_DIR": "/a, /b", "CODEX_HOME": "/c", "GEMINI_CLI_HOME": "/g"}))
	var dirs []string
	for _, r := range got {
		dirs = append(dirs, r.preset+":"+r.dir)
	}
	if s := strings.Join(dirs, " "); s != "claude:/a claude:/b codex:/c gemini:/g/.gemini" {
		t.Errorf("roots from the agents' variables: %s", s)
	}
	if got := transcriptSession("codex", "/x/rollout-2026-12-08T03-13-38-01a253a4-7d60-7501-8e08-f4989120c930.jsonl"); got != "01a253a4-7d60-7501-8e08-f4989120c930" {
		t.Errorf("a rollout's session: %q", got)
	}
}

// homeWith makes a home directory holding the transcripts of captured runs
// (testdata/agents/real/<scenario>/home), as the agents left them.
func homeWith(t *testing.T, scenarios ...string) string {
	t.Helper()
	home := t.TempDir()
	for _, s := range scenarios {
		src := filepath.Join("../../testdata/agents/real", s, "home")
		if out, err := exec.Command("cp", "-r", src+"/.", home).CombinedOutput(); err != nil {
			t.Fatalf("copy %s: %v: %s", src, err, out)
		}
	}
	return home
}

// catchUp runs vibekit-pipe --transcripts with HOME set to home, as a cron
// run does: stdin an empty pipe, so it reads what is there and exits.
func catchUp(t *testing.T, home, db string) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	defer r.Close()
	t.Setenv("HOME", home)
	for _, v := range []string{"CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_CLI_HOME"} {
		t.Setenv(v, "")
	}
	var errb bytes.Buffer
	if code := RunPipe(context.Background(), []string{"--db", db, "--transcripts", "--stats"}, r, &bytes.Buffer{}, &errb); code != 0 {
		t.Fatalf("vibekit-pipe --transcripts: exit %d: %s", code, errb.String())
	}
	return errb.String()
}

// TestTranscripts_EveryAgentOnce follows the transcripts that Claude Code
// (a subagent's file included), Codex (a resumed thread) and Gemini CLI
// wrote, each through its preset, and checks what usage then reports
// against the references: ccusage's and @ccusage/codex's totals of the same
// files, and the tokens Gemini CLI printed. A second run stores nothing
// again; a line added later is stored; a damaged one is a reject.
func TestTranscripts_EveryAgentOnce(t *testing.T) {
	home := homeWith(t, "claude-subagent", "codex-resume", "gemini-tools")
	db := filepath.Join(t.TempDir(), "t.db")
	catchUp(t, home, db)

	type row struct {
		Agent         string  `json:"agent"`
		Input         int64   `json:"inputTokens"`
		Output        int64   `json:"outputTokens"`
		CacheCreation int64   `json:"cacheCreationTokens"`
		CacheRead     int64   `json:"cacheReadTokens"`
		Total         int64   `json:"totalTokens"`
		Cost          float64 `json:"totalCost"`
	}
	report := func() map[string]row {
		code, out, errs := runVibekit(t, "telemetry", "usage", "session", "--db", db)
		if code != 0 {
			t.Fatalf("usage session: exit %d: %s", code, errs)
		}
		got := map[string]row{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var r row
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("%v: %s", err, l)
			}
			got[r.Agent] = r
		}
		return got
	}
	got := report()
	cents := func(f float64) int64 { return int64(math.Round(f * 100)) }
	// ccusage: the session's two transcript files (main and subagent).
	if c := got["claude"]; c.Input != 95 || c.Output != 118 || c.CacheCreation != 9500 || c.CacheRead != 31000 || math.Abs(c.Cost-0.03811) > 1e-9 {
		t.Errorf("claude: %+v, want ccusage's 95 in, 118 out, 9,500 cache write, 31,000 cache read, $0.03811", c)
	}
	// @ccusage/codex: 3,200 input (1,500 cached), 44 output, $0.0027525.
	if c := got["codex"]; c.Input+c.CacheRead != 3200 || c.CacheRead != 1500 || c.Output != 44 || cents(c.Cost) != cents(0.0027525) || math.Abs(c.Cost-0.0027525) > 1e-9 {
		t.Errorf("codex: %+v, want 3,200 in (1,500 cached), 44 out, $0.0027525", c)
	}
	// Gemini CLI printed total_tokens 18,172 (18,100 in, 8,500 of them cached).
	if c := got["gemini"]; c.Total != 18172 || c.Input+c.CacheRead != 18100 || c.CacheRead != 8500 {
		t.Errorf("gemini: %+v, want 18,172 tokens, 18,100 in, 8,500 cached", c)
	}

	rows := func() int {
		code, out, _ := runVibekit(t, "telemetry", "query", "--db", db, "SELECT count(*) AS n FROM telemetry")
		var r struct{ N int }
		if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
			t.Fatalf("count rows: exit %d, %s", code, out)
		}
		return r.N
	}
	before := rows()
	catchUp(t, home, db)
	if n := rows(); n != before {
		t.Errorf("a second run stored %d rows again", n-before)
	}

	files, _ := filepath.Glob(filepath.Join(home, ".claude/projects/*/*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("claude transcripts: %v", files)
	}
	f, err := os.OpenFile(files[0], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"type":"user","message":{"role":"user","content":"one more"},"sessionId":"00000000-0000-4000-8000-000000000004","timestamp":"2026-12-08T05:00:00.000Z"}` + "\n")
	f.WriteString(`{"type":"assistant","message":{"id":"msg_cut` + "\n")
	f.WriteString(`{"level":"info","msg":"another program's log line"}` + "\n")
	f.Close()
	stats := catchUp(t, home, db)
	if n := rows(); n != before+1 {
		t.Errorf("after a line, a damaged one and a foreign one: %d rows more, want 1", n-before)
	}
	code, out, _ := runVibekit(t, "telemetry", "rejects", "--db", db)
	if code != 0 || !strings.Contains(out, "not a JSON object") || !strings.Contains(out, files[0]) {
		t.Errorf("the damaged line is not a reject naming its file: %s (stats: %s)", out, stats)
	}
	if !strings.Contains(out, "not a line of claude's transcripts") || !strings.Contains(out, "another program") {
		t.Errorf("the foreign line is not a reject: %s", out)
	}
}

// TestTranscripts_CodexResumedPastItsModel: a rollout read in two runs, the
// second after its turn_context (the line that names the model), is still
// priced with that model: @ccusage/codex's $0.0027325 for codex-tools.
func TestTranscripts_CodexResumedPastItsModel(t *testing.T) {
	full := homeWith(t, "codex-tools")
	files, _ := filepath.Glob(filepath.Join(full, ".codex/sessions/*/*/*/rollout-*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("rollouts: %v", files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	cut := -1
	for i, l := range lines {
		if strings.Contains(l, `"turn_context"`) {
			cut = i + 1
			break
		}
	}
	if cut < 0 || cut >= len(lines)-1 {
		t.Fatalf("no turn_context before the rollout's end (%d lines)", len(lines))
	}
	if err := os.WriteFile(files[0], []byte(strings.Join(lines[:cut], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "t.db")
	catchUp(t, full, db)
	f, err := os.OpenFile(files[0], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(strings.Join(lines[cut:], ""))
	f.Close()
	catchUp(t, full, db)
	code, out, errs := runVibekit(t, "telemetry", "usage", "session", "--db", db, "--jq", `"\(.totalCost) \(.unpricedModels)"`)
	if code != 0 || strings.TrimSpace(out) != `"0.0027325 null"` {
		t.Errorf("exit %d: %s %s, want the thread priced as gpt-5-codex ($0.0027325)", code, out, errs)
	}
}

// TestFollow_StreamRestartedMidRun: a Claude Code stream-json file followed
// in two runs (the follower restarted between the two results of a
// multi-turn run) costs what the agent printed last, $0.024609, not the
// sum of its cumulative results.
func TestFollow_StreamRestartedMidRun(t *testing.T) {
	data, err := os.ReadFile("../../testdata/agents/real/claude-multiturn/stdout.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	cut := 0
	for i, l := range lines {
		if strings.Contains(l, `"type":"result"`) {
			cut = i + 1
			break
		}
	}
	dir := t.TempDir()
	stream, db := filepath.Join(dir, "run.ndjson"), filepath.Join(dir, "t.db")
	follow := func(content string) {
		f, err := os.OpenFile(stream, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(content)
		f.Close()
		r, w, _ := os.Pipe()
		w.Close()
		defer r.Close()
		var errb bytes.Buffer
		if code := RunPipe(context.Background(), []string{"--db", db, "--preset", "claude", "--follow", stream}, r, &bytes.Buffer{}, &errb); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	}
	follow(strings.Join(lines[:cut], ""))
	follow(strings.Join(lines[cut:], ""))
	code, out, errs := runVibekit(t, "telemetry", "usage", "session", "--db", db, "--jq", ".totalCost")
	if code != 0 || strings.TrimSpace(out) != "0.024609" {
		t.Errorf("exit %d: %q %s, want the agent's own 0.024609", code, out, errs)
	}
}
