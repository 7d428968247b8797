package usage_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/jq"
	"github.com/vibekit/vibekit-pipe/usage"
)

// What Gemini CLI reported of its runs (stats per model), in this package's
// kinds: its input includes the cached tokens and its output leaves out the
// thoughts; Total is the CLI's total_tokens. The cost is computed from the
// price table (Gemini CLI reports none): gemini-2.5-pro at $1.25, $0.125
// cached and $10 per million, gemini-2.5-flash at $0.30 and $2.50.
var geminiWant = map[string]struct {
	tokens usage.Tokens
	cost   float64
}{
	"gemini-tools": {usage.Tokens{Input: 18100 - 8500, CacheRead: 8500, Output: 32 + 40, Reasoning: 40},
		9600*1.25e-6 + 8500*0.125e-6 + 72*10e-6},
	"gemini-json":   {usage.Tokens{Input: 900, Output: 12 + 30, Reasoning: 30}, 900*0.3e-6 + 42*2.5e-6},
	"gemini-failed": {},
}

// mapDocument maps a -o json document given as one value, as a reader of
// whole documents would give it.
func mapDocument(t *testing.T, path string) []vibekit.Record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		t.Fatal(err)
	}
	p, err := jq.CompilePreset("gemini")
	if err != nil {
		t.Fatal(err)
	}
	m := jq.NewMapper(p, jq.MapOptions{Session: "pipe-" + filepath.Base(path)})
	defer m.Close()
	var recs []vibekit.Record
	emit := func(r vibekit.Record) { recs = append(recs, r) }
	now := time.Date(2026, 12, 8, 12, 0, 0, 0, time.UTC)
	if _, err := m.Line(b.Bytes(), false, now, emit); err != nil {
		t.Fatal(err)
	}
	m.Finish(now, "success", emit)
	return recs
}

func geminiLedger(t *testing.T, scenario string, transcript bool) (*usage.Ledger, []vibekit.Record) {
	t.Helper()
	var recs []vibekit.Record
	switch {
	case transcript:
		for _, f := range transcripts(t, scenario) {
			recs = append(recs, mapFile(t, "gemini", f)...)
		}
	case scenario == "gemini-json":
		recs = mapDocument(t, runs(t, scenario)[0])
	default:
		recs = mapFile(t, "gemini", runs(t, scenario)[0])
	}
	l := usage.NewLedger(nil)
	for _, r := range recs {
		for _, e := range usage.FromRecord(&r) {
			l.Add(e)
		}
	}
	return l, recs
}

func checkGemini(t *testing.T, l *usage.Ledger, scenario string) {
	t.Helper()
	want := geminiWant[scenario]
	rows := usage.Report(l.Items(), usage.Options{Period: usage.Session})
	got := usage.Totals(rows)
	if got.Tokens != want.tokens {
		t.Errorf("tokens %+v, want %+v", got.Tokens, want.tokens)
	}
	if micro(got.TotalCost) != micro(want.cost) || got.AgentCost != 0 || len(got.Unpriced) > 0 {
		t.Errorf("cost %.9f (agent %v, unpriced %v), want %.9f computed", got.TotalCost, got.AgentCost, got.Unpriced, want.cost)
	}
	if want.tokens != (usage.Tokens{}) && len(rows) != 1 {
		t.Errorf("%d sessions, want 1", len(rows))
	}
}

// TestGeminiStream_TotalsAreTheAgentsOwn: the stream-json result's and the
// -o json document's stats give the tokens Gemini CLI reported, by kind;
// a failed run is one error row and no usage.
func TestGeminiStream_TotalsAreTheAgentsOwn(t *testing.T) {
	for _, scenario := range []string{"gemini-tools", "gemini-json", "gemini-failed"} {
		t.Run(scenario, func(t *testing.T) {
			l, recs := geminiLedger(t, scenario, false)
			checkGemini(t, l, scenario)
			total := usage.Totals(usage.Report(l.Items(), usage.Options{Period: usage.Daily})).Total()
			if want := map[string]int64{"gemini-tools": 18172, "gemini-json": 942}[scenario]; total != want {
				t.Errorf("total %d tokens, the CLI's %d", total, want)
			}
			n, msgs := errorRows(recs)
			if want := map[bool]int{true: 1, false: 0}[scenario == "gemini-failed"]; n != want {
				t.Errorf("%d error rows %q, want %d", n, msgs, want)
			}
			if last := recs[len(recs)-1]; scenario != "gemini-failed" && last.EventType != vibekit.EventEnd {
				t.Errorf("last row %+v, want the end row", last)
			}
		})
	}
}

// TestGeminiTranscripts_EqualTheAgentsOwn: the chats Gemini CLI wrote give
// the same tokens per kind as its own stats, each message once though the
// chat writes it again when its tool calls finish.
func TestGeminiTranscripts_EqualTheAgentsOwn(t *testing.T) {
	for _, scenario := range []string{"gemini-tools", "gemini-json", "gemini-failed"} {
		t.Run(scenario, func(t *testing.T) {
			l, _ := geminiLedger(t, scenario, true)
			checkGemini(t, l, scenario)
		})
	}
}

// TestGemini_StreamAndTranscriptCountOnce: a session fed from its stream and
// its chat counts once: the result's totals stand for the session.
func TestGemini_StreamAndTranscriptCountOnce(t *testing.T) {
	scenario := "gemini-tools"
	checkGemini(t, ledgerOf(t, "gemini", append(runs(t, scenario), transcripts(t, scenario)...)...), scenario)
	checkGemini(t, ledgerOf(t, "gemini", append(transcripts(t, scenario), runs(t, scenario)...)...), scenario)
}
