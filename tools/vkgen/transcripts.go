package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Claude Code's transcripts (~/.claude/projects/<project>/<session>.jsonl),
// shaped as the captured runs in testdata/agents/real show them: a prompt,
// then turns of an assistant message written as one line per content block
// (a text, then a tool_use; both lines carry the message's id, request id
// and usage), the tool's result, and a last-prompt line. Sessions use
// Sonnet mostly, Opus and Haiku sometimes; they are spread over 30 days from
// baseTime. The input of `make bench`'s usage figures, beside ccusage.

var transcriptModels = []string{
	"claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929",
	"claude-sonnet-4-5-20250929", "claude-opus-4-5-20251101", "claude-haiku-4-5-20251001",
}

// generateTranscripts writes cfg.events lines of transcripts into files
// under dir/projects, and returns what it wrote.
func generateTranscripts(dir string, cfg config) (stats, error) {
	if dir == "" {
		return stats{}, fmt.Errorf("-format claude-transcripts needs -dir")
	}
	r := rand.New(rand.NewPCG(cfg.seed, 0x7472616e73)) // "trans"
	c := newCorpus()
	var st stats
	for left := cfg.events; left > 0; {
		n := min(left, 100+r.IntN(700))
		left -= n
		project := fmt.Sprintf("-home-dev-project%02d", r.IntN(12))
		session := string(appendUUID(nil, r))
		cwd := "/home/dev/project" + project[len(project)-2:]
		t := time.UnixMilli(baseTime).Add(time.Duration(r.Int64N(int64(30 * 24 * time.Hour))))
		model := transcriptModels[r.IntN(len(transcriptModels))]
		if err := os.MkdirAll(filepath.Join(dir, "projects", project), 0o755); err != nil {
			return st, err
		}
		b := make([]byte, 0, n*900)
		common := func(b []byte) []byte {
			b = append(b, `,"uuid":"`...)
			b = appendUUID(b, r)
			b = append(b, `","timestamp":"`...)
			t = t.Add(time.Duration(200+r.IntN(20000)) * time.Millisecond)
			b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
			b = append(b, `","userType":"external","cwd":"`...)
			b = append(b, cwd...)
			b = append(b, `","sessionId":"`...)
			b = append(b, session...)
			b = append(b, `","version":"2.1.197","gitBranch":"main"}`+"\n"...)
			return b
		}
		user := func(b []byte, content string) []byte {
			b = append(b, `{"parentUuid":null,"isSidechain":false,"type":"user","message":{"role":"user","content":`...)
			b = append(b, content...)
			b = append(b, '}')
			return common(b)
		}
		lines := 0
		b = user(b, `"`+string(appendEscaped(nil, c.prompts[r.IntN(len(c.prompts))]))+`"`)
		lines++
		for msg := 0; lines < n-1; msg++ {
			id := "msg_01" + string(appendHex(nil, r.Uint64(), 16))
			req := "req_01" + string(appendHex(nil, r.Uint64(), 16))
			usage := `{"input_tokens":` + strconv.Itoa(1+r.IntN(40)) +
				`,"cache_creation_input_tokens":` + strconv.Itoa(r.IntN(6000)) +
				`,"cache_read_input_tokens":` + strconv.Itoa(5000+r.IntN(150000)) +
				`,"output_tokens":` + strconv.Itoa(20+r.IntN(1500)) +
				`,"service_tier":"standard"}`
			blocks := []string{`{"type":"text","text":"` + string(c.appendStreamData(nil, r)) + `"}`}
			tool := claudeTools[r.IntN(len(claudeTools))]
			toolID := "toolu_01" + string(appendHex(nil, r.Uint64(), 16))
			withTool := lines < n-3
			if withTool {
				blocks = append(blocks, `{"type":"tool_use","id":"`+toolID+`","name":"`+tool.name+`","input":`+tool.input+`}`)
			}
			for _, blk := range blocks {
				if lines >= n-1 {
					break
				}
				b = append(b, `{"parentUuid":null,"isSidechain":false,"message":{"id":"`+id+`","type":"message","role":"assistant","model":"`+model+
					`","content":[`+blk+`],"stop_reason":null,"stop_sequence":null,"usage":`+usage+`},"requestId":"`+req+`","type":"assistant"`...)
				b = common(b)
				lines++
			}
			if withTool && lines < n-1 {
				b = user(b, `[{"tool_use_id":"`+toolID+`","type":"tool_result","content":"`+string(c.appendStreamData(nil, r))+`","is_error":false}]`)
				lines++
			}
		}
		b = append(b, `{"type":"last-prompt","lastPrompt":"done","sessionId":"`+session+`"}`+"\n"...)
		lines++
		path := filepath.Join(dir, "projects", project, session+".jsonl")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return st, err
		}
		st.events += int64(lines)
		st.sessions++
		st.bytes += int64(len(b))
	}
	return st, nil
}
