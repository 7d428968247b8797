package main

import (
	"math/rand/v2"
	"unicode/utf8"
)

// corpus is the text the generator draws from. It is built once per run and
// only read after that.
type corpus struct {
	agents      []agent
	totalWeight int
	prompts     []string
	repos       []string
	branches    []string
	tags        []string // need no JSON escaping
	tools       []toolCall
	errors      []agentError
	prose       []fragment
	code        []language
	fenceEnd    fragment
}

// agent is an agentType with its share of sessions and its models.
type agent struct {
	name     string
	weight   int
	provider string
	models   []string
}

type toolCall struct {
	name  string
	input string // a JSON object
}

type agentError struct {
	code      string
	message   string
	retryable bool
}

// fragment is a piece of stream text with its JSON-escaped form computed once,
// so that writing it is a copy.
type fragment struct {
	raw     string
	escaped []byte
	runes   int
}

// language is a run of code lines that read as one program, and its fence.
type language struct {
	fence fragment
	lines []fragment
}

func newFragment(s string) fragment {
	if !utf8.ValidString(s) {
		panic("vkgen: corpus text is not UTF-8: " + s) // a bug in the tables below
	}
	return fragment{raw: s, escaped: appendEscaped(nil, s), runes: utf8.RuneCountInString(s)}
}

func (c *corpus) pickAgent(r *rand.Rand) *agent {
	n := r.IntN(c.totalWeight)
	for i := range c.agents {
		if n < c.agents[i].weight {
			return &c.agents[i]
		}
		n -= c.agents[i].weight
	}
	return &c.agents[len(c.agents)-1]
}

func newCorpus() *corpus {
	c := &corpus{
		agents: []agent{
			{"claude", 45, "anthropic", []string{"claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"}},
			{"codex", 25, "openai", []string{"gpt-5-codex", "gpt-5", "o4-mini"}},
			{"gemini", 20, "google", []string{"gemini-2.5-pro", "gemini-2.5-flash"}},
			{"opencode", 10, "opencode", []string{"anthropic/claude-sonnet-4-5", "openai/gpt-5", "opencode/grok-code"}},
		},
		prompts: []string{
			"Fix the failing test in sqlite/store_test.go",
			"Add a --limit flag to the dump command",
			"Why does `go vet` complain about the copylocks in batch.go?",
			"Refactor the reader so followed files survive rotation",
			"Write a README section about \"presets\" with examples",
			"Explain this stack trace:\npanic: runtime error: index out of range [3] with length 3\n\tmain.go:42",
			"Migrate the config loader from YAML to TOML",
			"Corrige le bug d'encodage des caractères accentués (é, è, à)",
			"このリポジトリのテストを実行して、失敗したものを修正してください",
			"Add emoji support 🎉 to the commit message linter",
			"Speed up the CSV export; it takes 40s for 1M rows",
			"Review the diff and suggest improvements",
			"Convert C:\\Users\\dev\\scripts\\build.bat to a Makefile",
			"Implement retries with exponential backoff for SQLITE_BUSY",
			"Set up GitHub Actions to run tests on Linux and macOS",
			"Generate TypeScript types from the OpenAPI spec in api/openapi.yaml",
			"Find why memory grows when the input has very long lines",
			"Rename the `Manager` type to something that says what it does",
			"Add tab\tseparated output to the stats command",
			"Write property tests for the jq mapping of claude stream-json",
		},
		repos: []string{
			"https://github.com/vibekit/vibekit-pipe",
			"https://github.com/acme/webshop",
			"https://github.com/acme/payments-api",
			"https://github.com/superagent-ai/vibekit",
			"https://github.com/jdoe/dotfiles",
			"https://github.com/example-org/monorepo",
			"https://gitlab.com/team-x/ml-pipeline",
			"https://github.com/kubernetes/kubernetes",
		},
		branches: []string{"main", "master", "develop", "feat/dump-jq", "fix/rotation-race", "renovate/go-1.26"},
		tags:     []string{"cli", "ci", "local", "experiment", "bench", "nightly", "sandbox"},
		tools: []toolCall{
			{"bash", `{"command":"go test ./...","timeout":120000}`},
			{"bash", `{"command":"grep -rn \"TODO\" --include='*.go' .","description":"find TODOs"}`},
			{"read_file", `{"path":"/workspace/src/index.ts","range":{"start":1,"end":200}}`},
			{"edit_file", `{"path":"sqlite/store.go","edits":[{"old":"return nil","new":"return s.flush(ctx)"}]}`},
			{"web_search", `{"query":"sqlite WAL checkpoint starvation","limit":5}`},
			{"write_file", `{"path":"docs/日本語.md","bytes":2048}`},
		},
		errors: []agentError{
			{"RATE_LIMITED", "rate limit exceeded: retry after 30s (429 Too Many Requests)", true},
			{"OVERLOADED", `API error 529: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, true},
			{"TIMEOUT", "context deadline exceeded after 600s while waiting for the model", true},
			{"SANDBOX_OOM", "sandbox exited with code 137: out of memory (limit 2 GiB)", false},
			{"TOOL_FAILED", "tool call failed: open /workspace/src/main.go: permission denied", false},
			{"AUTH", "authentication failed: invalid API key \"sk-…redacted\"", false},
			{"CANCELLED", "run cancelled by user (SIGINT)\n\tat Session.abort (session.ts:88:11)", false},
		},
		fenceEnd: newFragment("```\n"),
	}
	for _, a := range c.agents {
		c.totalWeight += a.weight
	}
	for _, s := range proseText {
		c.prose = append(c.prose, newFragment(s))
	}
	for _, l := range codeText {
		lang := language{fence: newFragment("```" + l.name + "\n")}
		for _, s := range l.lines {
			lang.lines = append(lang.lines, newFragment(s))
		}
		c.code = append(c.code, lang)
	}
	return c
}

// proseText is what agents say between code. Each piece ends with its own
// separator. It mixes accents, CJK, Cyrillic, Greek, emoji, quotes,
// backslashes, tabs and newlines, all of which the JSON must carry.
var proseText = []string{
	"I'll start by reading the failing test to understand what it expects. ",
	"The error comes from the parser: it treats an empty line as the end of input. ",
	"Let me check how `parseConfig` handles a missing \"timeout\" key. ",
	"Voilà — the café's résumé and the naïve façade test now pass. ",
	"日本語のテキストも正しく処理されるようになりました。",
	"エラーメッセージを確認してください：「ファイルが見つかりません」。",
	"🚀 Deployment finished in 42s. ",
	"✅ All 128 tests pass. ",
	"⚠️ The migration is not reversible; back up the database first. ",
	`The path on Windows is C:\Users\dev\project\src, note the backslashes. `,
	"Здравствуйте — this string came from a Russian locale. ",
	"Ελληνικά and 中文 characters round-trip without loss. ",
	"I ran `go test ./...` and got:\n",
	"Here is the diff:\n",
	"Next, I'll update the README so the example matches the new flag. ",
	"He said \"it works on my machine\" — it didn't. ",
	"Name\tRows\tSize\ntelemetry\t1000000\t880 MB\n",
	"Done! 🎉 The fix is in `internal/cli/dump.go`.\n\n",
	"Summary: 3 files changed, 41 insertions(+), 7 deletions(-).\n",
	"Naïve approach: O(n²) — we can do better with a map → O(n). ",
	"😀 👍 🔥 ",
	"Let me think about this step by step. ",
	"First, the schema: the `telemetry` table has eleven columns. ",
	"The function returns early when `ctx.Err() != nil`, so the batch is never flushed. ",
	"I'll add a test case for the empty-input edge case. ",
	"The build failed with exit status 2.\n",
	"Reading file src/components/Header.tsx… ",
	"Searching for \"TODO\" in 214 files. ",
	"The regex `\\d+\\.\\d+` matches version numbers like 1.26. ",
	"Windows line endings (\\r\\n) confuse the splitter.\r\n",
	"\x1b[32mPASS\x1b[0m sqlite/store_test.go (0.41s)\n",
	"Now the output looks right:\n\n",
	"This is a longer explanation: the batcher collects rows until either the size limit or the interval is reached, then hands them to the sink in one transaction, together with the offsets of the lines they came from, so that a restart resumes exactly where it stopped. ",
	"Ich habe die Änderungen übernommen – bitte prüfen. ",
	"¿Quieres que también actualice la documentación? ",
}

// codeText is code the agents stream, grouped by language so that a run of
// consecutive lines reads like a program.
var codeText = []struct {
	name  string
	lines []string
}{
	{"go", []string{
		"func (s *Store) Insert(ctx context.Context, recs []Record) error {\n",
		"\ttx, err := s.db.BeginTx(ctx, nil)\n",
		"\tif err != nil {\n",
		"\t\treturn fmt.Errorf(\"insert %d rows: %w\", len(recs), err)\n",
		"\t}\n",
		"\tdefer tx.Rollback()\n",
		"\tre := regexp.MustCompile(`^\\d+\\.\\d+$`)\n",
		"\tfmt.Printf(\"%q\\n\", line)\n",
		"\tpath := \"C:\\\\Users\\\\dev\" // Windows\n",
		"\treturn tx.Commit()\n",
		"}\n",
	}},
	{"python", []string{
		"def parse(line: str) -> dict:\n",
		"    \"\"\"Parse one NDJSON line.\"\"\"\n",
		"    return json.loads(line.strip())\n",
		"    print(f\"{name!r}: {value}\\t{unit}\")\n",
		"    pattern = r\"\\s+([A-Za-z_]\\w*)\"\n",
		"    greeting = 'こんにちは, wörld'\n",
		"\n",
	}},
	{"typescript", []string{
		"export async function trackStart(sessionId: string, prompt: string): Promise<void> {\n",
		"  const msg = `Session ${sessionId} started at ${new Date().toISOString()}`;\n",
		"  await db.run('INSERT INTO telemetry (sessionId, prompt) VALUES (?, ?)', [sessionId, prompt]);\n",
		"  console.log(\"done \\u2713\", { ok: true });\n",
		"}\n",
	}},
	{"sh", []string{
		"$ go test ./... 2>&1 | tee test.log\n",
		"ok  \tgithub.com/vibekit/vibekit-pipe/sqlite\t0.412s\n",
		"--- FAIL: TestStore_Insert (0.01s)\n",
		"    store_test.go:42: got 3 rows, want 4\n",
		"grep -rn \"func main\" --include='*.go' .\n",
		"echo \"héllo wörld\" | iconv -f utf-8 -t ascii//TRANSLIT\n",
	}},
	{"sql", []string{
		"SELECT sessionId, COUNT(*) AS n\n",
		"FROM telemetry\n",
		"WHERE eventType = 'stream' AND json_extract(metadata, '$.model.name') LIKE 'claude%'\n",
		"GROUP BY sessionId ORDER BY n DESC;\n",
	}},
	{"diff", []string{
		"@@ -12,7 +12,9 @@ func run(ctx context.Context) error {\n",
		"-\treturn nil\n",
		"+\treturn s.flush(ctx)\n",
		" // コメント: 日本語のコメント\n",
		"+# TODO(alice): handle the \\r\\n line endings from Windows\n",
	}},
	{"json", []string{
		"{\"key\": \"value\", \"nested\": {\"n\": 1, \"list\": [1, 2, 3]}}\n",
		"{\"emoji\": \"🎉\", \"path\": \"C:\\\\tmp\"}\n",
	}},
}
