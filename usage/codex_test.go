package usage_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/usage"
)

// ccusageCodex reads @ccusage/codex's totals of a scenario's rollouts, in
// this package's kinds: its inputTokens include the cached ones.
func ccusageCodex(t *testing.T, scenario, report string) (tok usage.Tokens, cost float64) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(real, scenario, "ccusage-codex-"+report+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Totals *struct {
			Input     int64   `json:"inputTokens"`
			Cached    int64   `json:"cachedInputTokens"`
			Output    int64   `json:"outputTokens"`
			Reasoning int64   `json:"reasoningOutputTokens"`
			Cost      float64 `json:"costUSD"`
		} `json:"totals"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", scenario, err)
	}
	if doc.Totals == nil { // no usage at all
		return usage.Tokens{}, 0
	}
	x := doc.Totals
	return usage.Tokens{Input: x.Input - x.Cached, CacheRead: x.Cached, Output: x.Output, Reasoning: x.Reasoning}, x.Cost
}

// checkCodex compares a report's totals with @ccusage/codex's; priced says
// the model is known, so the cost must be ccusage's too.
func checkCodex(t *testing.T, l *usage.Ledger, scenario string, priced bool) {
	t.Helper()
	for _, rep := range []usage.Period{usage.Daily, usage.Session} {
		rows := usage.Report(l.Items(), usage.Options{Period: rep})
		got := usage.Totals(rows)
		wantTok, wantCost := ccusageCodex(t, scenario, string(rep))
		if got.Tokens != wantTok {
			t.Errorf("%s: tokens %+v, @ccusage/codex %+v", rep, got.Tokens, wantTok)
		}
		if wantTok != (usage.Tokens{}) && len(rows) != 1 {
			t.Errorf("%s: %d rows, want 1", rep, len(rows))
		}
		switch {
		case priced:
			if cents(got.TotalCost) != cents(wantCost) || math.Abs(got.TotalCost-wantCost) > 1e-9 {
				t.Errorf("%s: cost %.9f, @ccusage/codex %.9f", rep, got.TotalCost, wantCost)
			}
			if got.AgentCost != 0 || len(got.Unpriced) > 0 {
				t.Errorf("%s: agent cost %v, unpriced %v: Codex's cost is computed", rep, got.AgentCost, got.Unpriced)
			}
		case wantTok != (usage.Tokens{}):
			// `codex exec --json` names no model: unpriced, never $0.
			if len(got.Unpriced) != 1 || got.TotalCost != 0 {
				t.Errorf("%s: cost %v, unpriced %v: want the usage unpriced", rep, got.TotalCost, got.Unpriced)
			}
		}
	}
}

// TestCodexStream_EqualsCcusage: the tokens Codex printed (turn.completed;
// token_count in the older format) equal @ccusage/codex's of the same runs'
// rollouts, a resumed thread's included: its second turn.completed is the
// thread's total (3,200 in), which counts by its increase. The older format
// names its model (the config line), so its cost is computed.
func TestCodexStream_EqualsCcusage(t *testing.T) {
	for scenario, priced := range map[string]bool{"codex-tools": false, "codex-resume": false, "codex-old": true} {
		t.Run(scenario, func(t *testing.T) {
			checkCodex(t, ledgerOf(t, "codex", runs(t, scenario)...), scenario, priced)
		})
	}
}

// TestCodexTranscripts_EqualCcusage: the rollouts Codex wrote give
// @ccusage/codex's tokens and cost, the model taken from turn_context.
func TestCodexTranscripts_EqualCcusage(t *testing.T) {
	for _, scenario := range []string{"codex-tools", "codex-resume", "codex-old", "codex-failed"} {
		t.Run(scenario, func(t *testing.T) {
			checkCodex(t, ledgerOf(t, "codex", transcripts(t, scenario)...), scenario, true)
		})
	}
}

// TestCodex_StreamAndTranscriptCountOnce: a thread fed from its rollout and
// its stream counts once, in either order: both report the same running
// total. In the order of their times (the rollout's lines come first: Codex
// writes them before it prints) the cost is the rollout's model's.
func TestCodex_StreamAndTranscriptCountOnce(t *testing.T) {
	for _, scenario := range []string{"codex-tools", "codex-resume"} {
		t.Run(scenario, func(t *testing.T) {
			checkCodex(t, ledgerOf(t, "codex", append(transcripts(t, scenario), runs(t, scenario)...)...), scenario, true)
			l := ledgerOf(t, "codex", append(runs(t, scenario), transcripts(t, scenario)...)...)
			got := usage.Totals(usage.Report(l.Items(), usage.Options{Period: usage.Session}))
			if want, _ := ccusageCodex(t, scenario, "session"); got.Tokens != want {
				t.Errorf("stream first: tokens %+v, want %+v", got.Tokens, want)
			}
		})
	}
}

func errorRows(recs []vibekit.Record) (n int, msgs []string) {
	for _, r := range recs {
		if r.EventType == vibekit.EventError {
			n++
			msgs = append(msgs, r.StreamData)
		}
	}
	return n, msgs
}

// TestCodex_OneFailureOneErrorRow: an `error` event followed by turn.failed
// with the same message is one failure, one error row; the older format's
// one error msg is one too; a warning item (model metadata not found) is
// none, and the run ends with its end row.
func TestCodex_OneFailureOneErrorRow(t *testing.T) {
	for scenario, want := range map[string]int{"codex-failed": 1, "codex-old-failed": 1, "codex-tools": 0, "codex-old": 0} {
		t.Run(scenario, func(t *testing.T) {
			recs := mapFile(t, "codex", runs(t, scenario)[0])
			if n, msgs := errorRows(recs); n != want {
				t.Errorf("%d error rows %q, want %d", n, msgs, want)
			}
			if want == 0 {
				last := recs[len(recs)-1]
				if last.EventType != vibekit.EventEnd || !json.Valid(last.Metadata) {
					t.Fatalf("last row %+v, want an end row", last)
				}
				var meta struct{ Status string }
				json.Unmarshal(last.Metadata, &meta)
				if meta.Status != "success" {
					t.Errorf("end row status %q, want success", meta.Status)
				}
			}
		})
	}
}
