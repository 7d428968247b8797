package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

// mustStore writes a small store and returns its path.
func mustStore(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "t.db")
	db, err := sqlite.Open(path, sqlite.Options{EnableIndexes: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	b := &vibekit.Batch{Records: []vibekit.Record{
		{SessionID: "s1", EventType: vibekit.EventStart, AgentType: "claude", Timestamp: 1732704000000},
		{SessionID: "s1", EventType: vibekit.EventEnd, AgentType: "claude", Timestamp: 1732704001000},
	}}
	if _, err := db.Commit(context.Background(), b); err != nil {
		tb.Fatal(err)
	}
	return path
}

func runVibekit(tb testing.TB, args ...string) (code int, stdout, stderr string) {
	tb.Helper()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		tb.Fatal(err)
	}
	defer devnull.Close()
	var out, errb bytes.Buffer
	code = RunVibekit(context.Background(), args, devnull, &out, &errb)
	return code, out.String(), errb.String()
}

// TestRunVibekit_ExitCodes checks DESIGN's exit codes: 0 success, 1 runtime
// failure, 2 usage error, 3 a jq program that does not compile; errors go
// to stderr once, and nothing to stdout.
func TestRunVibekit_ExitCodes(t *testing.T) {
	db := mustStore(t)
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string // substring
	}{
		{"stats", []string{"telemetry", "stats", "--db", db}, ExitOK, ""},
		{"no command", []string{"telemetry"}, ExitUsage, ""},
		{"unknown command", []string{"telemetry", "vacuum-all"}, ExitUsage, `unknown command "vacuum-all"`},
		{"bad flag", []string{"telemetry", "dump", "--nope"}, ExitUsage, "flag provided but not defined"},
		{"bad format", []string{"telemetry", "sessions", "--db", db, "--format", "xml"}, ExitUsage, `--format "xml"`},
		{"bad time", []string{"telemetry", "stats", "--db", db, "--from", "someday"}, ExitUsage, "--from"},
		{"jq compile error", []string{"telemetry", "dump", "--db", db, "--jq", "{"}, ExitJQ, "syntax error"},
		{"transform compile error", []string{"telemetry", "import", "--db", db, "--transform", "{"}, ExitJQ, "syntax error"},
		{"missing database", []string{"telemetry", "dump", "--db", db + ".missing"}, ExitFailure, "no such file"},
		{"missing session", []string{"telemetry", "session", "nope", "--db", db}, ExitFailure, "not found"},
		{"refused query", []string{"telemetry", "query", "--db", db, "DELETE FROM telemetry"}, ExitFailure, "refused"},
		{"sql error", []string{"telemetry", "query", "--db", db, "SELECT nope FROM telemetry"}, ExitFailure, "no such column"},
		{"clear without a terminal", []string{"telemetry", "clear", "--db", db}, ExitUsage, "--force"},
		{"delete without a terminal", []string{"telemetry", "delete-user-data", "u1", "--db", db}, ExitUsage, "--force"},
		{"import a missing file", []string{"telemetry", "import", "--db", db, "--file", db + ".none"}, ExitFailure, "no such file"},
		{"bad config file", []string{"telemetry", "stats", "--db", db, "--config", badConfig(t)}, ExitUsage, `config file: unknown setting "bogus"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runVibekit(t, tt.args...)
			if got, want := code, tt.code; got != want {
				t.Errorf("exit code = %d, want %d (stderr %q)", got, want, stderr)
			}
			if tt.code != ExitOK && stdout != "" && tt.name != "no command" {
				t.Errorf("stdout = %q, want nothing on failure", stdout)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.stderr)
			}
			if tt.code != ExitOK && strings.Count(stderr, "vibekit: ") > 1 {
				t.Errorf("stderr has more than one error: %q", stderr)
			}
		})
	}
	// The refused statements above changed nothing.
	code, stdout, _ := runVibekit(t, "telemetry", "query", "--db", db, "SELECT COUNT(*) AS n FROM telemetry")
	if code != ExitOK || stdout != "{\"n\":2}\n" {
		t.Errorf("after refusals: code %d, %q", code, stdout)
	}
}

// badConfig writes a config file with a setting no program has.
func badConfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(p, []byte(`{"bogus": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRunVibekit_Help checks that every command has --help with examples,
// and that help exits 0.
func TestRunVibekit_Help(t *testing.T) {
	for _, cmd := range []string{"dump", "stats", "sessions", "session", "clear", "query", "import", "export-user-data", "delete-user-data"} {
		t.Run(cmd, func(t *testing.T) {
			code, _, stderr := runVibekit(t, "telemetry", cmd, "--help")
			if code != ExitOK {
				t.Errorf("exit code = %d, want 0", code)
			}
			for _, want := range []string{"USAGE", "Examples:", "vibekit telemetry " + cmd, "-db"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("help lacks %q:\n%s", want, stderr)
				}
			}
		})
	}
}
