package cli

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"
)

func TestAgentPrompt(t *testing.T) {
	tests := []struct {
		argv []string
		want string
	}{
		{[]string{"claude", "-p", "fix the bug", "--output-format", "stream-json", "--verbose"}, "fix the bug"},
		{[]string{"/usr/local/bin/claude", "--output-format", "stream-json", "--verbose", "-p", "fix it"}, "fix it"},
		{[]string{"claude", "--model", "opus", "-p", "--output-format", "stream-json", "do it"}, "do it"},
		{[]string{"claude", "-p", "--input-format", "stream-json", "--output-format", "stream-json"}, ""},
		{[]string{"npx", "claude", "-p", "hi"}, "hi"},
		{[]string{"codex", "exec", "--json", "run the tests"}, "run the tests"},
		{[]string{"codex", "exec", "-m", "gpt-5-codex", "--json", "run the tests"}, "run the tests"},
		{[]string{"codex", "exec", "--json", "resume", "--last", "and now?"}, "and now?"},
		{[]string{"codex", "exec", "--json", "resume", "0199a213-81c0"}, ""},
		{[]string{"codex", "exec", "resume", "0199a213-81c0", "go on"}, "go on"},
		{[]string{"codex", "--help"}, ""},
		{[]string{"gemini", "-p", "say hello", "-m", "gemini-2.5-pro"}, "say hello"},
		{[]string{"gemini", "--prompt=say hello"}, "say hello"},
		{[]string{"gemini", "-m", "gemini-2.5-pro", "say hello"}, "say hello"},
		{[]string{"sh", "-c", "echo hi"}, ""},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := agentPrompt(tt.argv); got != tt.want {
			t.Errorf("agentPrompt(%q) = %q, want %q", tt.argv, got, tt.want)
		}
	}
}

// TestAgentPrompt_CapturedRuns reads the prompt off each command line the
// captured runs were made with (testdata/agents/real/*/command.txt) and
// checks it against the prompt the agent itself recorded as the session's
// first user message, where it did.
func TestAgentPrompt_CapturedRuns(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/agents/real/*/command.txt")
	if len(files) == 0 {
		t.Fatal("no captured command lines")
	}
	want := map[string]string{
		"claude-tools": "run echo hi", "claude-denied": "delete notes.txt", "claude-budget": "work until done",
		"claude-multiturn": "", "codex-tools": "run echo hi", "codex-failed": "say hello",
		"gemini-tools": "run echo hi", "gemini-json": "what is 2+2?",
	}
	checked := 0
	for _, f := range files {
		scenario := filepath.Base(filepath.Dir(f))
		w, ok := want[scenario]
		if !ok {
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Scan()
		fh.Close()
		argv := shellWords(t, sc.Text())
		// The command line starts with env VAR=... assignments.
		for len(argv) > 0 && (argv[0] == "env" || containsRune(argv[0], '=')) {
			argv = argv[1:]
		}
		if got := agentPrompt(argv); got != w {
			t.Errorf("%s: agentPrompt(%q) = %q, want %q", scenario, argv, got, w)
		}
		checked++
	}
	if checked != len(want) {
		t.Errorf("checked %d command lines, want %d", checked, len(want))
	}
}

func containsRune(s string, r rune) bool {
	for _, c := range s {
		if c == r {
			return true
		}
	}
	return false
}

// shellWords splits a line as bash's printf %q wrote it: words apart by
// spaces, a backslash escaping the next character.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var cur []rune
	in := false
	esc := false
	for _, r := range line {
		switch {
		case esc:
			cur, esc, in = append(cur, r), false, true
		case r == '\\':
			esc = true
		case r == ' ':
			if in {
				words, cur, in = append(words, string(cur)), nil, false
			}
		default:
			cur, in = append(cur, r), true
		}
	}
	if in {
		words = append(words, string(cur))
	}
	return words
}
