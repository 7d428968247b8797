package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pipeFile stores the lines of path with vibekit-pipe --preset preset.
func pipeFile(t *testing.T, db, preset, path string) {
	t.Helper()
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var errb bytes.Buffer
	if code := RunPipe(context.Background(), []string{"--db", db, "--preset", preset, "--quiet"}, in, &bytes.Buffer{}, &errb); code != 0 {
		t.Fatalf("vibekit-pipe < %s: exit %d: %s", path, code, errb.String())
	}
}

type usageTotals struct {
	Input         int64   `json:"inputTokens"`
	Output        int64   `json:"outputTokens"`
	CacheCreation int64   `json:"cacheCreationTokens"`
	CacheRead     int64   `json:"cacheReadTokens"`
	Cost          float64 `json:"totalCost"`
}

// TestUsage_ClaudeTranscriptsEqualCcusage stores every captured Claude Code
// transcript in one database, the subagents' too, and checks that `usage
// daily` and `usage session` give ccusage's token counts and its cost to the
// cent, added up over the runs (ccusage read each run's home on its own).
func TestUsage_ClaudeTranscriptsEqualCcusage(t *testing.T) {
	real := "../../testdata/agents/real"
	db := filepath.Join(t.TempDir(), "t.db")
	var want usageTotals
	dirs, _ := filepath.Glob(filepath.Join(real, "claude-*"))
	for _, dir := range dirs {
		err := filepath.WalkDir(filepath.Join(dir, "home"), func(p string, d os.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(p, ".jsonl") {
				pipeFile(t, db, "claude", p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "ccusage-daily.json"))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Totals usageTotals }
		if strings.TrimSpace(string(b)) != "[]" { // ccusage's answer when it found nothing
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatalf("%s: %v", dir, err)
			}
		}
		want.Input += doc.Totals.Input
		want.Output += doc.Totals.Output
		want.CacheCreation += doc.Totals.CacheCreation
		want.CacheRead += doc.Totals.CacheRead
		want.Cost += doc.Totals.Cost
	}
	if len(dirs) < 5 {
		t.Fatalf("only %d Claude runs in %s", len(dirs), real)
	}
	for _, report := range []string{"daily", "session"} {
		code, out, errs := runVibekit(t, "telemetry", "usage", report, "--db", db, "--format", "json", "--timezone", "UTC")
		if code != 0 {
			t.Fatalf("usage %s: exit %d: %s", report, code, errs)
		}
		var doc struct {
			Totals usageTotals `json:"totals"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("usage %s: %v\n%s", report, err, out)
		}
		got := doc.Totals
		gotCost, wantCost := got.Cost, want.Cost
		got.Cost, want.Cost = 0, 0
		if got != want {
			t.Errorf("usage %s: tokens %+v, ccusage %+v", report, got, want)
		}
		if math.Round(gotCost*100) != math.Round(wantCost*100) || math.Abs(gotCost-wantCost) > 1e-9 {
			t.Errorf("usage %s: cost %.9f, ccusage %.9f", report, gotCost, wantCost)
		}
		want.Cost = wantCost
	}
}

// TestUsage_Live: --live prints the report again as rows are committed, and
// stops when its context ends.
func TestUsage_Live(t *testing.T) {
	real := "../../testdata/agents/real"
	db := filepath.Join(t.TempDir(), "t.db")
	pipeFile(t, db, "claude", filepath.Join(real, "claude-tools", "stdout.ndjson"))
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- RunVibekit(ctx, []string{"telemetry", "usage", "session", "--db", db, "--live", "100ms",
			"--jq", `"\(.sessionId) \(.totalCost)"`}, nil, &out, &errb)
	}()
	waitFor(t, "the first report", func() bool { return strings.Contains(out.String(), "000000000001 0.029145") })
	if strings.Contains(out.String(), "000000000007") {
		t.Fatal("a session not yet stored is in the report")
	}
	pipeFile(t, db, "claude", filepath.Join(real, "claude-denied", "stdout.ndjson"))
	waitFor(t, "the new session in a later report", func() bool { return strings.Contains(out.String(), "000000000007 0.027075") })
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("--live did not stop when its context ended")
	}
}

// TestUsage_ToADate: --to with a date alone counts that whole day.
func TestUsage_ToADate(t *testing.T) {
	db := filepath.Join(t.TempDir(), "t.db")
	pipeFile(t, db, "claude", onlyFile(t, "../../testdata/agents/real/claude-tools/home", ".jsonl"))
	code, out, errs := runVibekit(t, "telemetry", "usage", "daily", "--db", db, "--timezone", "UTC", "--jq", ".date")
	if code != 0 || out == "" {
		t.Fatalf("exit %d: %s", code, errs)
	}
	date := strings.Trim(strings.TrimSpace(out), `"`)
	for _, to := range []string{date, date + "T23:59:59Z"} {
		code, out, errs = runVibekit(t, "telemetry", "usage", "daily", "--db", db, "--timezone", "UTC", "--from", date, "--to", to, "--jq", ".totalTokens")
		if code != 0 || strings.TrimSpace(out) != "34275" {
			t.Errorf("--to %s: exit %d, %q (want the day's 34275 tokens): %s", to, code, out, errs)
		}
	}
}

// onlyFile is the one file under dir whose name ends in suffix.
func onlyFile(t *testing.T, dir, suffix string) string {
	t.Helper()
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, suffix) {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 1 {
		t.Fatalf("%s: %d files, want 1", dir, len(files))
	}
	return files[0]
}

// TestUsage_TableEscapesStoredText: a session id, project and model from the
// store are hostile text; the table shows their control characters escaped.
func TestUsage_TableEscapesStoredText(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "t.db")
	in := filepath.Join(dir, "in.ndjson")
	line := `{"sessionId":"s\u001b]52;c;ZXZpbA==\u0007","eventType":"stream","agentType":"claude","metadata":` +
		`{"tokens":{"model":"m\u001b[31mred","input":5,"output":7,"project":"/p\u009b2J"}},"timestamp":1796000000000}` + "\n"
	if err := os.WriteFile(in, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(in)
	defer f.Close()
	if code := RunPipe(context.Background(), []string{"--db", db, "--quiet"}, f, &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
		t.Fatalf("vibekit-pipe: exit %d", code)
	}
	code, out, errs := runVibekit(t, "telemetry", "usage", "session", "--db", db, "--format", "table", "--by", "project", "--breakdown")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, bad := range []string{"\x1b", "\x07", "\u009b"} {
		if strings.Contains(out, bad) {
			t.Errorf("the table holds %q raw:\n%s", bad, out)
		}
	}
	for _, want := range []string{`s\x1b]52;c;ZXZpbA==\x07`, `m\x1b[31mred`, `/p\u009b2J`, "Unpriced"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
}

// TestUsage_DatesOfTheTimezone: --from and --to dates are days of
// --timezone, as the report's dates are.
func TestUsage_DatesOfTheTimezone(t *testing.T) {
	db := filepath.Join(t.TempDir(), "t.db")
	pipeFile(t, db, "claude", onlyFile(t, "../../testdata/agents/real/claude-tools/home", ".jsonl"))
	code, out, errs := runVibekit(t, "telemetry", "usage", "daily", "--db", db, "--timezone", "America/Los_Angeles", "--jq", ".date")
	if code != 0 || out == "" {
		t.Fatalf("exit %d: %s", code, errs)
	}
	date := strings.Trim(strings.TrimSpace(out), `"`) // the day before UTC's: captured at 03:30 UTC
	code, out, errs = runVibekit(t, "telemetry", "usage", "daily", "--db", db, "--timezone", "America/Los_Angeles", "--from", date, "--to", date, "--jq", ".totalTokens")
	if code != 0 || strings.TrimSpace(out) != "34275" {
		t.Errorf("--from/--to %s in its zone: exit %d, %q (want the day's 34275 tokens): %s", date, code, out, errs)
	}
}

// TestUsage_SaysWhatIsUnknown: a count clamped into range marks its row in
// a table, and a cost that leaves unpriced models out says so in stats.
func TestUsage_SaysWhatIsUnknown(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "t.db")
	in := filepath.Join(dir, "in.ndjson")
	lines := `{"sessionId":"a","eventType":"stream","agentType":"claude","metadata":{"tokens":{"model":"claude-sonnet-4-5-20250929","input":1e30,"output":7}},"timestamp":1796000000000}` + "\n" +
		`{"sessionId":"b","eventType":"stream","agentType":"x","metadata":{"tokens":{"model":"no-such-model","input":5}},"timestamp":1796000000001}` + "\n"
	if err := os.WriteFile(in, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(in)
	defer f.Close()
	if code := RunPipe(context.Background(), []string{"--db", db, "--quiet"}, f, &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
		t.Fatalf("vibekit-pipe: exit %d", code)
	}
	code, out, errs := runVibekit(t, "telemetry", "usage", "session", "--db", db, "--format", "table")
	if code != 0 || !strings.Contains(out, "*!") || !strings.Contains(out, "was clamped") || !strings.Contains(out, "Unpriced") {
		t.Errorf("exit %d, table without the clamped mark or the unpriced note:\n%s%s", code, out, errs)
	}
	code, out, errs = runVibekit(t, "telemetry", "stats", "--db", db, "--format", "text")
	if code != 0 || !strings.Contains(out, "and more: some models are not in the price table") {
		t.Errorf("exit %d, stats does not say the cost leaves models out:\n%s%s", code, out, errs)
	}
}
