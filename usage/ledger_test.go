package usage_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

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

// TestReport_Blocks: a block starts at the hour of its first call and runs
// 5 hours, its end included (as ccusage's blocks); a call after it starts
// another, as does one more than 5 hours after the last.
func TestReport_Blocks(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	var items []usage.Item
	for _, s := range []string{"2026-12-01T10:00:00Z", "2026-12-01T15:00:00Z", "2026-12-01T15:00:01Z", "2026-12-02T09:00:00Z"} {
		items = append(items, usage.Item{Agent: "claude", Session: "s", Model: "m", Time: at(s), Tokens: usage.Tokens{Input: 1}})
	}
	rows := usage.Report(items, usage.Options{Period: usage.Blocks, Now: at("2026-12-02T10:00:00Z")})
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%s+%d active=%v", r.Start.UTC().Format("15:04"), r.Input, *r.Active))
	}
	if want := "10:00+2 active=false|15:00+1 active=false|09:00+1 active=true"; strings.Join(got, "|") != want {
		t.Errorf("blocks %q, want %q", strings.Join(got, "|"), want)
	}
}

// TestReport_DaysOfATimezone: days, weeks and months are those of the
// report's time zone.
func TestReport_DaysOfATimezone(t *testing.T) {
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	it := usage.Item{Agent: "claude", Session: "s", Model: "m", Time: time.Date(2026, 12, 8, 3, 30, 0, 0, time.UTC), Tokens: usage.Tokens{Input: 1}}
	for _, tc := range []struct {
		o    usage.Options
		want string
	}{
		{usage.Options{Period: usage.Daily}, "2026-12-08"},
		{usage.Options{Period: usage.Daily, Location: la}, "2026-12-07"},
		{usage.Options{Period: usage.Weekly, Location: la}, "2026-12-06"}, // Sunday
		{usage.Options{Period: usage.Weekly, Location: la, WeekStart: time.Monday}, "2026-12-07"},
		{usage.Options{Period: usage.Monthly, Location: la}, "2026-12"},
	} {
		r := usage.Report([]usage.Item{it}, tc.o)[0]
		if got := r.Date + r.Week + r.Month; got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.o, got, tc.want)
		}
	}
}
