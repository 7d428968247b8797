package cli

import (
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vibekit/vibekit-pipe/jq"
)

// transcriptRoot is one agent's directory of transcripts on this machine,
// the pattern of its files, and the preset that reads them.
type transcriptRoot struct {
	dir, pattern, preset string
}

// transcriptRoots are the transcript directories of Claude Code
// (CLAUDE_CONFIG_DIR, a comma-separated list, else ~/.config/claude and
// ~/.claude: projects/**/*.jsonl, subagents' files included), Codex
// (CODEX_HOME, else ~/.codex: sessions/**/*.jsonl) and Gemini CLI
// (GEMINI_CLI_HOME's or the home's .gemini: tmp/*/chats/*.jsonl), whether
// or not they exist yet: a directory made later is followed when it
// appears.
func transcriptRoots(getenv func(string) string) []transcriptRoot {
	home := getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	var roots []transcriptRoot
	add := func(dir, pattern, preset string) {
		if dir == "" {
			return
		}
		dir = filepath.Clean(dir)
		for _, r := range roots {
			if r.dir == dir && r.preset == preset {
				return
			}
		}
		roots = append(roots, transcriptRoot{dir: dir, pattern: filepath.Join(dir, pattern), preset: preset})
	}
	if v := getenv("CLAUDE_CONFIG_DIR"); v != "" {
		for _, d := range strings.Split(v, ",") {
			add(strings.TrimSpace(d), "projects/**/*.jsonl", "claude")
		}
	} else if home != "" {
		add(filepath.Join(home, ".config", "claude"), "projects/**/*.jsonl", "claude")
		add(filepath.Join(home, ".claude"), "projects/**/*.jsonl", "claude")
	}
	if v := getenv("CODEX_HOME"); v != "" {
		add(v, "sessions/**/*.jsonl", "codex")
	} else if home != "" {
		add(filepath.Join(home, ".codex"), "sessions/**/*.jsonl", "codex")
	}
	gemini := getenv("GEMINI_CLI_HOME")
	if gemini == "" {
		gemini = home
	}
	if gemini != "" {
		add(filepath.Join(gemini, ".gemini"), "tmp/*/chats/*.jsonl", "gemini")
	}
	return roots
}

// transcriptPattern reports whether pattern is one --transcripts follows.
func (a *agentOptions) transcriptPattern(pattern string) bool {
	for _, r := range a.roots {
		if r.pattern == pattern {
			return true
		}
	}
	return false
}

// transcripts maps the lines of followed transcript files, each file with
// a Mapper of its own (a Codex rollout names its session once, at its
// start) running its agent's preset.
type transcripts struct {
	roots    []transcriptRoot
	programs map[string]*jq.Program // by preset
	mu       sync.Mutex
	mappers  map[string]*jq.Mapper // by file (its identity)
}

func newTranscripts(roots []transcriptRoot) (*transcripts, error) {
	t := &transcripts{roots: roots, programs: map[string]*jq.Program{}, mappers: map[string]*jq.Mapper{}}
	for _, r := range roots {
		if t.programs[r.preset] != nil {
			continue
		}
		p, err := jq.CompilePreset(r.preset)
		if err != nil {
			return nil, err
		}
		t.programs[r.preset] = p
	}
	return t, nil
}

// root is the transcript directory path is in, or nil.
func (t *transcripts) root(path string) *transcriptRoot {
	for i := range t.roots {
		if rel, err := filepath.Rel(t.roots[i].dir, path); err == nil && !strings.HasPrefix(rel, "..") && rel != "." {
			return &t.roots[i]
		}
	}
	return nil
}

// mapper is the Mapper of the file at path (identified by key), and the
// preset it runs; nil if the file is not in a transcript directory.
func (t *transcripts) mapper(path, key string) (*jq.Mapper, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.root(path)
	if r == nil {
		return nil, ""
	}
	if m := t.mappers[key]; m != nil {
		return m, r.preset
	}
	if len(t.mappers) >= maxTranscriptMappers {
		// Bounded memory: one goes; its file's next line gets a new Mapper,
		// its rows the session the file is named after until a line names
		// one.
		for k, m := range t.mappers {
			m.Close()
			delete(t.mappers, k)
			break
		}
	}
	m := jq.NewMapper(t.programs[r.preset], jq.MapOptions{
		Session: transcriptSession(r.preset, path), Agent: r.preset, Transcript: true})
	t.mappers[key] = m
	return m, r.preset
}

// foreignLine reports whether obj, a line of a transcript of preset's agent,
// is not one of that agent's: every line of Claude Code's and Codex's
// transcripts has a "type"; Gemini CLI's chat lines have a "type", a "$set",
// or (the first) the session's id.
func foreignLine(preset string, obj map[string]any) bool {
	if _, ok := obj["type"].(string); ok {
		return false
	}
	if preset == "gemini" {
		_, set := obj["$set"]
		_, sid := obj["sessionId"].(string)
		return !set && !sid
	}
	return true
}

// maxTranscriptMappers bounds the Mappers kept at once, one per file.
const maxTranscriptMappers = 1024

// transcriptSession is where a transcript's rows that name no session go:
// the session its file is named after. Claude Code names a session's file
// <session>.jsonl (its lines name their session anyway); Codex a thread's
// rollout-<time>-<thread>.jsonl (only its first line names it); Gemini
// CLI's session-<time>-<part of the id>.jsonl names part of it, so rows
// read after a restart in the middle of the file, before its first line
// is read again, go to that name.
func transcriptSession(preset, path string) string {
	stem := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	if preset == "codex" && len(stem) > 36 && strings.HasPrefix(stem, "rollout-") {
		return stem[len(stem)-36:]
	}
	return stem
}

func (t *transcripts) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range t.mappers {
		m.Close()
	}
}
