package cli

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary act as vibekit-pipe and vibekit in scripts.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"vibekit-pipe": func() { os.Exit(MainPipe()) },
		"vibekit":      func() { os.Exit(MainVibekit()) },
		"vk-measure":   measureMain, // limits_test.go
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
			// The agent transcripts, for scripts to pipe through the presets.
			agents, err := filepath.Abs("../../testdata/agents")
			env.Setenv("AGENTS", agents)
			return err
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"writefile":  cmdWritefile,
			"bigline":    cmdBigline,
			"nested":     cmdNested,
			"replace":    cmdReplace,
			"genrecords": cmdGenrecords,
			"chown":      cmdChown,
		},
		// [root]: the script runs as root, so it can plant files owned by
		// another user.
		Condition: func(cond string) (bool, error) {
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
	})
}

// writefile FILE QUOTED writes a Go-quoted string (\x00, \xff, \r\n, ...)
// to FILE: bytes a txtar file cannot hold cleanly.
func cmdWritefile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: writefile FILE QUOTED")
	}
	// Double quotes stand for themselves; backslash escapes are Go's.
	s, err := strconv.Unquote(`"` + strings.ReplaceAll(args[1], `"`, `\"`) + `"`)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(s), 0o644))
}

// chown UID PATH gives PATH to the user UID (and its group to the group
// of the same number): root only, to plant another user's file.
func cmdChown(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: chown UID PATH")
	}
	uid, err := strconv.Atoi(args[0])
	ts.Check(err)
	ts.Check(os.Lchown(ts.MkAbs(args[1]), uid, uid))
}

// bigline FILE N writes "before", a line of N bytes of 'x', and "after".
func cmdBigline(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: bigline FILE N")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	f, err := os.Create(ts.MkAbs(args[0]))
	ts.Check(err)
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "before")
	w.WriteString(strings.Repeat("x", n))
	fmt.Fprintln(w, "\nafter")
	ts.Check(w.Flush())
	ts.Check(f.Close())
}

// nested FILE DEPTH writes a record whose metadata nests DEPTH objects deep.
func cmdNested(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: nested FILE DEPTH")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	line := `{"sessionId":"deep","eventType":"stream","metadata":` + strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) + "}\n"
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(line), 0o644))
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
