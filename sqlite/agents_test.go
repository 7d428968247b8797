package sqlite

import (
	"context"
	"reflect"
	"testing"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// TestDB_AgentUsage sums what the presets record, rule by rule (see
// vibekit.AgentUsage), and ignores rows that only look alike.
func TestDB_AgentUsage(t *testing.T) {
	db := MustOpen(t)
	bash := rec("c", vibekit.EventStream, "claude", 1, `{"kind":"tool_use","tool":"Bash","tool_use_id":"t1"}`)
	bash.StreamData = `{"command":"go test ./..."}`
	MustCommit(t, db, []vibekit.Record{
		rec("c", vibekit.EventStart, "claude", 0, `{"kind":"init","model":"m"}`),
		bash,
		rec("c", vibekit.EventStream, "claude", 2, `{"kind":"tool_result","tool":"Bash","tool_use_id":"t1","is_error":true}`),
		rec("c", vibekit.EventStream, "claude", 3, `{"kind":"tool_use","tool":"Read","tool_use_id":"t2"}`),
		rec("c", vibekit.EventStream, "claude", 4, `{"kind":"tool_result","tool":"Read","tool_use_id":"t2","is_error":false}`),
		rec("c", vibekit.EventEnd, "claude", 5, `{"status":"success","num_turns":3,"total_cost_usd":0.1,"usage":{"input_tokens":10,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000,"output_tokens":7}}`),
		// codex: a started item is no call; a completed one that exited 2 failed.
		rec("x", vibekit.EventStream, "codex", 10, `{"kind":"command_execution","phase":"started","tool":"command_execution","command":"make"}`),
		rec("x", vibekit.EventStream, "codex", 11, `{"kind":"command_execution","phase":"completed","tool":"command_execution","command":"make","exit_code":2,"status":"failed"}`),
		rec("x", vibekit.EventStream, "codex", 12, `{"kind":"mcp_tool_call","phase":"completed","tool":"get_issue","status":"completed"}`),
		rec("x", vibekit.EventEnd, "codex", 13, `{"kind":"turn.completed","status":"success","usage":{"input_tokens":50,"cached_input_tokens":40,"output_tokens":5}}`),
		// A command vibekit-pipe ran, exit 1.
		rec("w", vibekit.EventError, "sh", 20, `{"kind":"exit","command":"sh -c 'exit 1'","exit_code":1}`),
		// Look-alikes: usage on a stream row, metadata that is not JSON.
		rec("o", vibekit.EventStream, "other", 30, `{"usage":{"input_tokens":999}}`),
		rec("o", vibekit.EventStream, "other", 31, `not json "kind"`),
	})
	ctx := context.Background()
	ss, err := db.Sessions(ctx, vibekit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]vibekit.SessionSummary{}
	for _, s := range ss {
		got[s.SessionID] = s
	}
	want := map[string]vibekit.AgentUsage{
		"c": {CostUSD: 0.1, InputTokens: 1110, OutputTokens: 7, Turns: 3, ToolCalls: 2, FailedCommands: 1},
		"x": {InputTokens: 50, OutputTokens: 5, Turns: 1, ToolCalls: 2, FailedCommands: 1},
		"w": {FailedCommands: 1},
		"o": {},
	}
	for id, w := range want {
		if got[id].AgentUsage != w {
			t.Errorf("session %s: %+v, want %+v", id, got[id].AgentUsage, w)
		}
	}
	if got["c"].Tools != "Bash,Read" || got["x"].Tools != "command_execution,get_issue" {
		t.Errorf("tools %q and %q", got["c"].Tools, got["x"].Tools)
	}

	s, err := db.Stats(ctx, vibekit.Filter{}, StatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if w := (vibekit.AgentUsage{CostUSD: 0.1, InputTokens: 1160, OutputTokens: 12, Turns: 4, ToolCalls: 4, FailedCommands: 3}); s.AgentUsage != w {
		t.Errorf("stats %+v, want %+v", s.AgentUsage, w)
	}
	wantFailures := []vibekit.Share{
		{Value: "go test ./...", Events: 1, Sessions: 1, Share: 1.0 / 3}, // the claude call's command
		{Value: "make", Events: 1, Sessions: 1, Share: 1.0 / 3},
		{Value: "sh -c 'exit 1'", Events: 1, Sessions: 1, Share: 1.0 / 3},
	}
	if !reflect.DeepEqual(s.Failures, wantFailures) {
		t.Errorf("failures %+v, want %+v", s.Failures, wantFailures)
	}
	if len(s.Tools) != 4 || s.Tools[0].Value != "Bash" {
		t.Errorf("tools %+v", s.Tools)
	}
}
