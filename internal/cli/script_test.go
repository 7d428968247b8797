package cli

import (
	"os"
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
	})
}
