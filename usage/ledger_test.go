package usage_test

import (
	"encoding/json"
	"testing"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/usage"
)

// TestLedger_Grows: a total that never goes down counts the increase of
// each count over its highest, whatever the order its reports arrive in; a
// total that may reset counts the whole figure after a decrease.
func TestLedger_Grows(t *testing.T) {
	in := func(n, out int64) usage.Tokens { return usage.Tokens{Input: n, Output: out} }
	tests := []struct {
		name   string
		grows  bool
		totals []usage.Tokens
		want   usage.Tokens
	}{
		{"in order", true, []usage.Tokens{in(10, 1), in(20, 2), in(30, 3)}, in(30, 3)},
		{"a second source behind", true, []usage.Tokens{in(30, 3), in(10, 1), in(20, 2), in(30, 3)}, in(30, 3)},
		{"interleaved", true, []usage.Tokens{in(10, 1), in(10, 1), in(20, 2), in(30, 3), in(20, 2), in(30, 3)}, in(30, 3)},
		{"counts apart", true, []usage.Tokens{in(10, 5), in(20, 1)}, in(20, 5)},
		{"a reset", false, []usage.Tokens{in(30, 3), in(10, 1), in(20, 2)}, in(50, 5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := usage.NewLedger(nil)
			for _, tok := range tt.totals {
				l.Add(usage.Entry{Agent: "codex", Session: "s", Model: "gpt-5", Tokens: tok, Scope: "thread", Grows: tt.grows})
			}
			if got := usage.Totals(usage.Report(l.Items(), usage.Options{Period: usage.Session})).Tokens; got != tt.want {
				t.Errorf("tokens %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFromRecord_Grows(t *testing.T) {
	r := vibekit.Record{AgentType: "codex", SessionID: "s",
		Metadata: json.RawMessage(`{"tokens":{"model":"gpt-5","input":1,"scope":"thread","grows":true}}`)}
	es := usage.FromRecord(&r)
	if len(es) != 1 || !es[0].Grows || es[0].Scope != "thread" || es[0].Flagged {
		t.Fatalf("entries %+v, want one that grows", es)
	}
}
