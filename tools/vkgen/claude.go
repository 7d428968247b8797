package main

import (
	"io"
	"math"
	"math/rand/v2"
)

// Claude Code's stream-json output (claude -p ... --output-format
// stream-json --verbose), as testdata/agents/README.md describes it: runs one
// after another, each an init message, the prompt (as with
// --replay-user-messages), assistant messages with a text or tool_use block,
// a user message with the tool_result for each tool_use (about 10% of them
// is_error), and a result, about 5% of them failed. The input of `make
// bench`'s claude preset figures.

// claudeTools are the tools the init message lists and tool_use blocks call,
// with typical inputs (JSON objects).
var claudeTools = []toolCall{
	{"Bash", `{"command":"go test ./...","description":"Run all tests"}`},
	{"Bash", `{"command":"git status --short && git diff --stat","description":"Show changes"}`},
	{"Read", `{"file_path":"/home/dev/vibekit-pipe/sqlite/write.go","offset":40,"limit":80}`},
	{"Grep", `{"pattern":"func \\(db \\*DB\\)","path":"sqlite","output_mode":"content","-n":true}`},
	{"Edit", `{"file_path":"/home/dev/vibekit-pipe/batch/batch.go","old_string":"return b.cur","new_string":"return b.take()"}`},
	{"Glob", `{"pattern":"**/*_test.go"}`},
	{"TodoWrite", `{"todos":[{"content":"Reproduce the failure","status":"completed","activeForm":"Reproducing"},{"content":"Fix the race","status":"in_progress","activeForm":"Fixing"}]}`},
}

const claudeInitTools = `["Task","Bash","Glob","Grep","ExitPlanMode","Read","Edit","Write","NotebookEdit","WebFetch","TodoWrite","WebSearch","BashOutput","KillShell","SlashCommand"]`

// claudeRun is one run of claude -p in flight.
type claudeRun struct {
	id                             []byte // session_id, a UUID
	model                          string
	messages                       int // assistant and tool result messages still to write
	pending                        int // index into claudeTools of a tool_use awaiting its result; -1 if none
	toolID                         []byte
	turns                          int
	fails                          bool
	started                        bool
	prompted                       bool
	tokensIn, tokensOut, cacheRead int
}

// generateClaude writes cfg.events lines of Claude stream-json to w.
func generateClaude(w io.Writer, cfg config) (stats, error) {
	if cfg.events < 0 || cfg.events == 1 || cfg.events == 2 {
		return stats{}, errClaudeEvents(cfg.events)
	}
	g := &generator{
		rng:       rand.New(rand.NewPCG(cfg.seed, 0x636c61756465)), // "claude"
		corpus:    newCorpus(),
		remaining: cfg.events,
		buf:       make([]byte, 0, flushAt+64<<10),
	}
	for {
		run := g.newClaudeRun()
		if run == nil {
			break
		}
		for !g.emitClaude(run) {
			if len(g.buf) >= flushAt {
				if err := g.flush(w); err != nil {
					return g.stats, err
				}
			}
		}
	}
	return g.stats, g.flush(w)
}

type errClaudeEvents int

func (e errClaudeEvents) Error() string {
	return "-format claude -n " + itoa(int(e)) + ": want 0 or at least 3 (a run needs an init, a prompt and a result)"
}

func itoa(n int) string { return string(appendInt(nil, n)) }

// newClaudeRun plans a run that fits in the lines left: init, prompt,
// messages and result.
func (g *generator) newClaudeRun() *claudeRun {
	if g.remaining < 3 {
		return nil
	}
	r := g.rng
	messages := int(math.Exp(r.Float64()*math.Log(100)) * 3)
	if g.remaining-(messages+3) < 3 {
		messages = g.remaining - 3
	}
	g.remaining -= messages + 3
	g.stats.sessions++
	models := []string{"claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-haiku-4-5-20251001"}
	return &claudeRun{
		id:       appendUUID(nil, r),
		model:    models[r.IntN(len(models))],
		messages: messages,
		pending:  -1,
		fails:    r.IntN(100) < 5,
	}
}

// emitClaude writes the next line of run and reports whether it was the last.
func (g *generator) emitClaude(run *claudeRun) (done bool) {
	r := g.rng
	b := g.buf
	start := len(b)
	switch {
	case !run.started:
		run.started = true
		b = append(b, `{"type":"system","subtype":"init","cwd":"/home/dev/vibekit-pipe","session_id":"`...)
		b = append(b, run.id...)
		b = append(b, `","tools":`...)
		b = append(b, claudeInitTools...)
		b = append(b, `,"mcp_servers":[],"model":"`...)
		b = append(b, run.model...)
		b = append(b, `","permissionMode":"default","slash_commands":["compact","context","cost","init","review"],"apiKeySource":"none","claude_code_version":"2.0.14","output_style":"default","uuid":"`...)
		b = appendUUID(b, r)
		b = append(b, `"}`...)
	case !run.prompted:
		run.prompted = true
		b = append(b, `{"type":"user","message":{"role":"user","content":[{"type":"text","text":"`...)
		b = appendEscaped(b, g.corpus.prompts[r.IntN(len(g.corpus.prompts))])
		b = append(b, `"}]},"parent_tool_use_id":null,"session_id":"`...)
		b = append(b, run.id...)
		b = append(b, `","uuid":"`...)
		b = appendUUID(b, r)
		b = append(b, `"}`...)
	case run.messages > 0:
		run.messages--
		if run.pending >= 0 {
			b = g.appendToolResult(b, run)
			break
		}
		run.turns++
		in, out, cached := 3+r.IntN(20), 2+r.IntN(400), 5000+r.IntN(40000)
		run.tokensIn, run.tokensOut, run.cacheRead = run.tokensIn+in, run.tokensOut+out, run.cacheRead+cached
		b = append(b, `{"type":"assistant","message":{"id":"msg_01`...)
		b = appendHex(b, r.Uint64(), 16)
		b = append(b, `","type":"message","role":"assistant","model":"`...)
		b = append(b, run.model...)
		b = append(b, `","content":[`...)
		if run.messages > 0 && r.IntN(100) < 45 {
			run.pending = r.IntN(len(claudeTools))
			run.toolID = appendHex(append(run.toolID[:0], "toolu_01"...), r.Uint64(), 16)
			t := claudeTools[run.pending]
			b = append(b, `{"type":"tool_use","id":"`...)
			b = append(b, run.toolID...)
			b = append(b, `","name":"`...)
			b = append(b, t.name...)
			b = append(b, `","input":`...)
			b = append(b, t.input...)
			b = append(b, '}')
		} else {
			b = append(b, `{"type":"text","text":"`...)
			b = g.corpus.appendStreamData(b, r)
			b = append(b, `"}`...)
		}
		b = append(b, `],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":`...)
		b = appendInt(b, in)
		b = append(b, `,"cache_creation_input_tokens":`...)
		b = appendInt(b, r.IntN(2000))
		b = append(b, `,"cache_read_input_tokens":`...)
		b = appendInt(b, cached)
		b = append(b, `,"output_tokens":`...)
		b = appendInt(b, out)
		b = append(b, `,"service_tier":"standard"}},"parent_tool_use_id":null,"session_id":"`...)
		b = append(b, run.id...)
		b = append(b, `","uuid":"`...)
		b = appendUUID(b, r)
		b = append(b, `"}`...)
	default:
		done = true
		ms := 2000 + r.IntN(300000)
		b = append(b, `{"type":"result","subtype":"`...)
		if run.fails {
			b = append(b, `error_max_turns","is_error":true`...)
		} else {
			b = append(b, `success","is_error":false`...)
		}
		b = append(b, `,"duration_ms":`...)
		b = appendInt(b, ms)
		b = append(b, `,"duration_api_ms":`...)
		b = appendInt(b, ms*4/5)
		b = append(b, `,"num_turns":`...)
		b = appendInt(b, run.turns)
		if !run.fails {
			b = append(b, `,"result":"`...)
			b = g.corpus.appendStreamData(b, r)
			b = append(b, '"')
		}
		b = append(b, `,"session_id":"`...)
		b = append(b, run.id...)
		b = append(b, `","total_cost_usd":0.`...)
		b = appendInt(b, 100000+r.IntN(900000))
		b = append(b, `,"usage":{"input_tokens":`...)
		b = appendInt(b, run.tokensIn)
		b = append(b, `,"cache_creation_input_tokens":0,"cache_read_input_tokens":`...)
		b = appendInt(b, run.cacheRead)
		b = append(b, `,"output_tokens":`...)
		b = appendInt(b, run.tokensOut)
		b = append(b, `,"server_tool_use":{"web_search_requests":0},"service_tier":"standard"},"permission_denials":[],"uuid":"`...)
		b = appendUUID(b, r)
		b = append(b, `"}`...)
	}
	b = append(b, '\n')
	g.stats.events++
	g.stats.bytes += int64(len(b) - start)
	g.buf = b
	return done
}

// appendToolResult writes the user message answering run's pending tool_use.
func (g *generator) appendToolResult(b []byte, run *claudeRun) []byte {
	r := g.rng
	b = append(b, `{"type":"user","message":{"role":"user","content":[{"tool_use_id":"`...)
	b = append(b, run.toolID...)
	b = append(b, `","type":"tool_result","content":"`...)
	b = g.corpus.appendStreamData(b, r)
	b = append(b, `","is_error":`...)
	b = appendBool(b, r.IntN(100) < 10)
	b = append(b, `}]},"parent_tool_use_id":null,"session_id":"`...)
	b = append(b, run.id...)
	b = append(b, `","uuid":"`...)
	b = appendUUID(b, r)
	b = append(b, `"}`...)
	run.pending = -1
	return b
}
