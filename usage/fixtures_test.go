package usage_test

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/jq"
	"github.com/vibekit/vibekit-pipe/usage"
)

// The fixtures are real runs of the agent CLIs (testdata/agents/real): the
// references are what the agents themselves printed and what ccusage, the
// reference of usage reports, says of the same transcripts.
const real = "../testdata/agents/real"

// mapFile runs the lines of path through preset, as one run of vibekit-pipe
// would, and returns the records.
func mapFile(t *testing.T, preset, path string) []vibekit.Record {
	t.Helper()
	p, err := jq.CompilePreset(preset)
	if err != nil {
		t.Fatal(err)
	}
	m := jq.NewMapper(p, jq.MapOptions{Session: "pipe-" + filepath.Base(path)})
	defer m.Close()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []vibekit.Record
	emit := func(r vibekit.Record) { recs = append(recs, r) }
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	now := time.Date(2026, 12, 8, 12, 0, 0, 0, time.UTC)
	for sc.Scan() {
		if _, err := m.Line(sc.Bytes(), false, now, emit); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	m.Finish(now, "success", emit)
	return recs
}

// ledgerOf maps each file as its own run and adds the records' usage.
func ledgerOf(t *testing.T, preset string, files ...string) *usage.Ledger {
	t.Helper()
	l := usage.NewLedger(nil)
	for _, f := range files {
		for _, r := range mapFile(t, preset, f) {
			for _, e := range usage.FromRecord(&r) {
				l.Add(e)
			}
		}
	}
	return l
}

func runs(t *testing.T, scenario string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(real, scenario, "stdout*.ndjson"))
	sort.Strings(files) // stdout.2.ndjson < stdout.ndjson: put the first run first
	if len(files) > 1 {
		files = append(files[len(files)-1:], files[:len(files)-1]...)
	}
	if len(files) == 0 {
		t.Fatalf("no stdout in %s", scenario)
	}
	return files
}

func transcripts(t *testing.T, scenario string) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(filepath.Join(real, scenario, "home"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".jsonl") {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatalf("no transcripts in %s", scenario)
	}
	return files
}

func cents(f float64) int64 { return int64(math.Round(f * 100)) }

// Rounded to a millionth of a dollar, the figures the agents print.
func micro(f float64) int64 { return int64(math.Round(f * 1e6)) }

// TestClaudeStream_CostIsTheAgentsOwn: a session's cost from its live
// stream is the total Claude Code printed for it: the latest cumulative
// total of each process, added over the processes of a resumed session.
func TestClaudeStream_CostIsTheAgentsOwn(t *testing.T) {
	// What Claude Code printed (the last result's total_cost_usd of each run).
	want := map[string]float64{
		"claude-tools":        0.029145,
		"claude-multiturn":    0.024609, // two results: 0.01851, then 0.024609 (cumulative)
		"claude-resume":       0.0198 + 0.004578,
		"claude-subagent":     0.03811,
		"claude-overloaded":   0,
		"claude-max-turns":    0.022362,
		"claude-denied":       0.027075,
		"claude-budget":       0.2535,
		"claude-long-context": 0.87,
	}
	for scenario, cost := range want {
		t.Run(scenario, func(t *testing.T) {
			rows := usage.Report(ledgerOf(t, "claude", runs(t, scenario)...).Items(), usage.Options{Period: usage.Session})
			total := usage.Totals(rows)
			if got, want := micro(total.TotalCost), micro(cost); got != want {
				t.Errorf("cost = %.6f, want %.6f (the agent's own)", total.TotalCost, cost)
			}
			if total.ComputedCost != 0 {
				t.Errorf("computed cost %.6f: every figure of a stream is the agent's", total.ComputedCost)
			}
			if scenario != "claude-overloaded" && len(rows) != 1 {
				t.Errorf("%d sessions, want 1: %+v", len(rows), rows)
			}
		})
	}
}

// ccusageTotals reads ccusage's totals of a scenario's transcripts.
func ccusageTotals(t *testing.T, scenario, report string) (tok usage.Tokens, cost float64) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(real, scenario, "ccusage-"+report+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Totals struct {
			Input         int64   `json:"inputTokens"`
			Output        int64   `json:"outputTokens"`
			CacheCreation int64   `json:"cacheCreationTokens"`
			CacheRead     int64   `json:"cacheReadTokens"`
			Cost          float64 `json:"totalCost"`
		} `json:"totals"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		// ccusage prints [] when it found no usage at all.
		if strings.TrimSpace(string(b)) == "[]" {
			return usage.Tokens{}, 0
		}
		t.Fatalf("%s: %v", scenario, err)
	}
	x := doc.Totals
	return usage.Tokens{Input: x.Input, Output: x.Output, CacheCreation: x.CacheCreation, CacheRead: x.CacheRead}, x.Cost
}

// TestClaudeTranscripts_EqualCcusage: the transcripts Claude Code wrote,
// subagents' included, give ccusage's token counts, and its cost to the cent,
// in the daily and the session report; each API call is counted once though
// its transcript repeats it on a line per content block.
func TestClaudeTranscripts_EqualCcusage(t *testing.T) {
	for _, scenario := range []string{"claude-tools", "claude-multiturn", "claude-resume", "claude-subagent",
		"claude-overloaded", "claude-max-turns", "claude-denied", "claude-budget", "claude-long-context"} {
		t.Run(scenario, func(t *testing.T) {
			l := ledgerOf(t, "claude", transcripts(t, scenario)...)
			for _, rep := range []usage.Period{usage.Daily, usage.Session} {
				rows := usage.Report(l.Items(), usage.Options{Period: rep})
				got := usage.Totals(rows)
				wantTok, wantCost := ccusageTotals(t, scenario, string(rep))
				gotTok := got.Tokens
				gotTok.Reasoning = 0
				if gotTok != wantTok {
					t.Errorf("%s: tokens %+v, ccusage %+v", rep, gotTok, wantTok)
				}
				if cents(got.TotalCost) != cents(wantCost) || math.Abs(got.TotalCost-wantCost) > 1e-9 {
					t.Errorf("%s: cost %.9f, ccusage %.9f", rep, got.TotalCost, wantCost)
				}
				if got.AgentCost != 0 || len(got.Unpriced) > 0 {
					t.Errorf("%s: agent cost %v, unpriced %v: a transcript's cost is computed", rep, got.AgentCost, got.Unpriced)
				}
			}
		})
	}
}

// TestClaude_StreamAndTranscriptCountOnce: a session fed both from its live
// stream and from its transcript is counted once, at the agent's own cost.
func TestClaude_StreamAndTranscriptCountOnce(t *testing.T) {
	scenario := "claude-subagent"
	files := append(runs(t, scenario), transcripts(t, scenario)...)
	rows := usage.Report(ledgerOf(t, "claude", files...).Items(), usage.Options{Period: usage.Session})
	if len(rows) != 1 {
		t.Fatalf("%d sessions, want 1", len(rows))
	}
	if got, want := micro(rows[0].TotalCost), micro(0.03811); got != want {
		t.Errorf("cost %.6f, want 0.03811 (the agent's own, once)", rows[0].TotalCost)
	}
	if got, want := rows[0].Input+rows[0].CacheRead+rows[0].CacheCreation+rows[0].Output, int64(40713); got != want {
		t.Errorf("tokens %d, want %d", got, want)
	}
}

// TestClaude_PartlyStreamedSession: a session whose first run was streamed
// and whose resumed run was not, with its transcript read too: the
// transcript holds both runs and stands for the session, which costs what
// the agent printed for both (0.0198 + 0.004578), not the first alone.
func TestClaude_PartlyStreamedSession(t *testing.T) {
	first := filepath.Join(real, "claude-resume", "stdout.ndjson")
	files := append([]string{first}, transcripts(t, "claude-resume")...)
	rows := usage.Report(ledgerOf(t, "claude", files...).Items(), usage.Options{Period: usage.Session})
	if len(rows) != 1 {
		t.Fatalf("%d sessions, want 1", len(rows))
	}
	if got, want := micro(rows[0].TotalCost), micro(0.0198+0.004578); got != want {
		t.Errorf("cost %.6f, want %.6f", rows[0].TotalCost, 0.0198+0.004578)
	}
	if got := rows[0].TotalTokens; got != 27142 {
		t.Errorf("tokens %d, want 27,142 (ccusage's)", got)
	}
}
