package cli

import (
	"os"
	"regexp"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary act as vibekit-pipe and vibekit in scripts.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"vibekit-pipe": func() { os.Exit(MainPipe()) },
		"vibekit":      func() { os.Exit(MainVibekit()) },
	})
}

// TestScript runs the end-to-end scripts in testdata/script: both programs,
// real files, real exit codes.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "../../testdata/script",
		RequireExplicitExec: true,
		// testscript passes no VIBEKIT_* variables of the caller's through.
		Setup: func(env *testscript.Env) error {
			env.Setenv("TZ", "UTC")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"replace": cmdReplace,
		},
	})
}

// cmdReplace is the script command "replace regexp replacement file": it
// rewrites file in place, so that golden files can ignore what varies
// between runs (database sizes, timings).
func cmdReplace(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: replace regexp replacement file")
	}
	re, err := regexp.Compile(args[0])
	ts.Check(err)
	file := ts.MkAbs(args[2])
	data, err := os.ReadFile(file)
	ts.Check(err)
	ts.Check(os.WriteFile(file, re.ReplaceAll(data, []byte(args[1])), 0o666))
}
