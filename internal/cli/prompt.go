package cli

import (
	"path/filepath"
	"strings"
)

// The flags of the agent CLIs that take a value as the next argument: the
// argument after one is the flag's value, not the prompt. (--allowedTools
// and --disallowedTools take one or more: their values are not prompts
// either, but a prompt given after them can only be told by position, so
// the prompt right after -p wins.)
var (
	claudeValueFlags = setOf("--output-format", "--input-format", "--model", "--fallback-model", "--session-id",
		"--resume", "-r", "--max-turns", "--max-budget-usd", "--permission-mode", "--append-system-prompt",
		"--system-prompt", "--mcp-config", "--settings", "--add-dir", "--agents", "--setting-sources",
		"--allowedTools", "--allowed-tools", "--disallowedTools", "--disallowed-tools", "--permission-prompt-tool",
		"--json-schema", "--plugin-dir", "--betas", "--agent")
	codexValueFlags = setOf("-m", "--model", "-c", "--config", "-C", "--cd", "-s", "--sandbox", "-p", "--profile",
		"-i", "--image", "--output-last-message", "-o", "--output-schema", "--color", "--add-dir", "--enable", "--disable",
		"--local-provider")
	geminiValueFlags = setOf("-m", "--model", "--output-format", "-o", "--approval-mode", "--include-directories",
		"--allowed-tools", "--allowed-mcp-server-names", "-e", "--extensions", "--telemetry-target",
		"--telemetry-otlp-endpoint", "--proxy", "-r", "--resume", "--session-summary")
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// agentPrompt is the prompt on the command line of an agent run that
// vibekit-pipe starts, "" if it names none: `claude -p "..."` (the prompt
// is never echoed in its stream), `codex exec "..."` and `codex exec resume
// ... "..."`, `gemini -p "..."` or `gemini "..."`.
func agentPrompt(argv []string) string {
	if len(argv) == 0 {
		return ""
	}
	name := filepath.Base(argv[0])
	args := argv[1:]
	if (name == "npx" || name == "bunx") && len(args) > 0 {
		name, args = filepath.Base(args[0]), args[1:]
	}
	name = strings.TrimPrefix(strings.TrimSuffix(name, "-cli"), "@anthropic-ai/")
	switch {
	case name == "claude" || strings.HasSuffix(name, "claude-code"):
		for i, a := range args {
			if (a == "-p" || a == "--print") && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				return args[i+1]
			}
		}
		return lastPositional(args, claudeValueFlags)
	case name == "codex" || strings.HasSuffix(name, "/codex"):
		i := indexOf(args, "exec")
		if i < 0 {
			i = indexOf(args, "e")
		}
		if i < 0 {
			return ""
		}
		rest := args[i+1:]
		ps := positionals(rest, codexValueFlags)
		if len(ps) > 0 && ps[0] == "resume" {
			// resume SESSION_ID [PROMPT], or resume --last [PROMPT]
			ps = ps[1:]
			if indexOf(rest, "--last") < 0 {
				if len(ps) < 2 {
					return ""
				}
			}
		}
		if len(ps) == 0 {
			return ""
		}
		return ps[len(ps)-1]
	case name == "gemini" || strings.HasSuffix(name, "gemini-cli"):
		for i, a := range args {
			if (a == "-p" || a == "--prompt" || a == "-i" || a == "--prompt-interactive") && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, "--prompt="); ok {
				return v
			}
		}
		return lastPositional(args, geminiValueFlags)
	}
	return ""
}

// positionals are the arguments that are neither flags nor a flag's value.
func positionals(args []string, valueFlags map[string]bool) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(out, args[i+1:]...)
		case strings.HasPrefix(a, "-") && a != "-":
			if !strings.Contains(a, "=") && valueFlags[a] {
				i++
			}
		default:
			out = append(out, a)
		}
	}
	return out
}

func lastPositional(args []string, valueFlags map[string]bool) string {
	ps := positionals(args, valueFlags)
	if len(ps) == 0 {
		return ""
	}
	return ps[len(ps)-1]
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
