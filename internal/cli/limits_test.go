package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// rssBound is the bar: every command stays under it on any input.
const rssBound = 256 << 20

// runMeasured runs the program with args and returns its stdout, stderr,
// whether it succeeded, and its peak resident set size in bytes.
//
// Linux counts a process's RSS at fork and exec into its child's peak, and
// this test process may have grown large in earlier tests: the program is
// started by a fresh, small copy of the test binary (measureMain), whose
// child's peak is the program's own.
func runMeasured(t *testing.T, prog string, stdin []byte, args ...string) (stdout, stderr string, ok bool, peak int64) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	measure, report := filepath.Join(dir, "vk-measure"), filepath.Join(dir, "peak")
	if err := os.Symlink(self, measure); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(measure, append([]string{prog}, args...)...)
	// No soft limit inherited from the caller: the program sets its own.
	cmd.Env = append(os.Environ(), "GOMEMLIMIT=", "GOGC=", "VK_MEASURE_OUT="+report)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	// Only the start of the output is kept: the parent's memory must stay small.
	out, errb := &headWriter{max: 1 << 20}, &headWriter{max: 1 << 20}
	cmd.Stdout, cmd.Stderr = out, errb
	err = cmd.Run()
	if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
		t.Fatal(err)
	}
	b, rerr := os.ReadFile(report)
	if rerr != nil {
		t.Fatalf("no peak measured: %v (stderr %q)", rerr, errb.String())
	}
	kib, perr := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if perr != nil {
		t.Fatal(perr)
	}
	return out.String(), errb.String(), err == nil, kib * 1024
}

// measureMain runs os.Args[1:] with this process's stdin, stdout and
// stderr, writes the child's peak RSS in KiB to $VK_MEASURE_OUT, and exits
// with the child's status.
func measureMain() {
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
		fmt.Fprintln(os.Stderr, "vk-measure:", err)
		os.Exit(125)
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if ru == nil {
		fmt.Fprintln(os.Stderr, "vk-measure: no resource usage")
		os.Exit(125)
	}
	if err := os.WriteFile(os.Getenv("VK_MEASURE_OUT"), []byte(strconv.FormatInt(ru.Maxrss, 10)), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "vk-measure:", err)
		os.Exit(125)
	}
	os.Exit(cmd.ProcessState.ExitCode())
}

// headWriter keeps the first max bytes written to it. (It must not embed
// bytes.Buffer: io.Copy would use the buffer's ReadFrom and keep it all.)
type headWriter struct {
	buf bytes.Buffer
	max int
}

func (w *headWriter) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (w *headWriter) String() string { return w.buf.String() }

// checkPeak fails t if peak is over the bar.
func checkPeak(t *testing.T, what string, peak int64) {
	t.Helper()
	t.Logf("%s: peak RSS %d MiB", what, peak>>20)
	if peak > rssBound {
		t.Errorf("%s: peak RSS %d MiB, over %d MiB", what, peak>>20, rssBound>>20)
	}
}

// writeBigArray writes a JSON array of records of about size bytes and
// returns how many records it holds.
func writeBigArray(t *testing.T, path string, size int64) int {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	chunk := strings.Repeat("lorem ipsum dolor sit amet ", 1200) // ~32 KB
	w.WriteString("[\n")
	n := 0
	for written := int64(0); written < size; n++ {
		if n > 0 {
			w.WriteString(",\n")
		}
		k, _ := fmt.Fprintf(w, `{"sessionId":"s%d","eventType":"stream","agentType":"claude","streamData":%q,"timestamp":%d}`,
			n%50, chunk, 1732704000000+n)
		written += int64(k)
	}
	w.WriteString("\n]\n")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return n
}

// Importing a JSON array reads one element at a time: a 300 MB array is
// imported whole in bounded memory, where reading it whole took over 3x
// its size.
func TestImport_BigArrayBoundedMemory(t *testing.T) {
	_, vk := programs(t)
	dir := t.TempDir()
	in, db := filepath.Join(dir, "big.json"), filepath.Join(dir, "t.db")
	n := writeBigArray(t, in, 300<<20)
	stdout, stderr, ok, peak := runMeasured(t, vk, nil, "telemetry", "import", "--db", db, "--file", in)
	os.Remove(in)
	if !ok {
		t.Fatalf("import failed: %s", stderr)
	}
	if !strings.HasPrefix(stdout, "Imported ") {
		t.Errorf("stdout = %q, want the count imported", stdout)
	}
	if got := countRows(t, db, ""); got != n {
		t.Errorf("rows = %d, want %d", got, n)
	}
	checkPeak(t, "import", peak)
}

// A JSON array element too big to hold (far over --max-line-bytes) stops
// the import with a clear error instead of growing memory; nothing is kept.
func TestImport_HugeElementStops(t *testing.T) {
	_, vk := programs(t)
	dir := t.TempDir()
	in, db := filepath.Join(dir, "huge.json"), filepath.Join(dir, "t.db")
	rec := `{"sessionId":"s","eventType":"stream","agentType":"claude","streamData":"ok","timestamp":1732704000000}`
	// Written in pieces, so that the test itself stays small.
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, "[\n"+rec+",\n"+`{"sessionId":"s","eventType":"stream","agentType":"claude","streamData":"`)
	mb := bytes.Repeat([]byte{'x'}, 1<<20)
	for range 400 {
		f.Write(mb)
	}
	fmt.Fprint(f, `"},`+"\n"+rec+"\n]\n")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	_, stderr, ok, peak := runMeasured(t, vk, nil, "telemetry", "import", "--db", db, "--file", in)
	os.Remove(in)
	if ok {
		t.Fatal("import of a 400 MB element succeeded")
	}
	if want := "huge.json: line 3: the JSON array element at byte 107 is over 1048576 bytes (--max-line-bytes); nothing was imported"; !strings.Contains(stderr, want) {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}
	if got := countRows(t, db, ""); got > 0 {
		t.Errorf("%d rows stored", got)
	}
	checkPeak(t, "import", peak)
}

// query stays under the bar and within --timeout whatever the statement
// makes: SQLite's length and heap limits refuse huge values at once, and the
// timeout stops runaway statements, the time spent writing rows included.
func TestQuery_BoundedMemoryAndTime(t *testing.T) {
	pipe, vk := programs(t)
	db := filepath.Join(t.TempDir(), "t.db")
	if _, stderr, ok, _ := runMeasured(t, pipe, []byte("hello\n"), "--db", db, "--quiet"); !ok {
		t.Fatalf("pipe: %s", stderr)
	}
	const endless = `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) `
	for _, tc := range []struct {
		sql, want string
	}{
		{`SELECT zeroblob(900000000)`, "string or blob too big"},
		{`SELECT randomblob(900000000)`, "string or blob too big"},
		{`SELECT zeroblob(16000000) AS a, zeroblob(16000000) AS b, zeroblob(16000000) AS c, zeroblob(16000000) AS d, zeroblob(16000000) AS e`, "query:"},
		{endless + `SELECT group_concat(printf('%0100d', x)) FROM c`, "ran longer than its timeout (2s)"},
		{endless + `SELECT x, printf('%01000d', x) FROM c`, "ran longer than its timeout (2s)"},
		{endless + `SELECT x FROM c ORDER BY random()`, "ran longer than its timeout (2s)"},
	} {
		t.Run(tc.sql, func(t *testing.T) {
			_, stderr, ok, peak := runMeasured(t, vk, nil, "telemetry", "query", "--db", db, "--timeout", "2s", tc.sql)
			if ok {
				t.Fatal("the statement succeeded")
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr = %q, want %q", stderr, tc.want)
			}
			checkPeak(t, "query", peak)
		})
	}
}

// jq programs are bounded in memory as well as time: each of these ends
// with a jq error (exit 1, not a Go crash) under the bar, whether it grows
// memory step by step, in one step, by recursion, or by printing.
func TestJQ_BoundedMemory(t *testing.T) {
	pipe, vk := programs(t)
	db := filepath.Join(t.TempDir(), "t.db")
	if _, stderr, ok, _ := runMeasured(t, pipe, []byte("hello\n"), "--db", db, "--quiet"); !ok {
		t.Fatalf("pipe: %s", stderr)
	}
	for _, prog := range []string{
		`[range(1e9)]`,
		`reduce range(1e9) as $i ("x"; . + .)`,
		`reduce range(1e9) as $i ("hello"; . + .)`,
		`[limit(1e8; repeat(1))]`,
		`def f: [f]; f`,
		`def f: 1 + f; f`,
		`"x" * 1e9`,
		`[] | .[30000000] = 1`,
		`reduce range(1e7) as $i (null; [.]) | . == .`,
		`reduce range(40) as $i (10; . * .)`,
		`range(1e9)`,
		`[range(1e9) | tostring] | join(",")`,
		`["x" * 8e6] | . as $a | [range(1e6) | $a[0]] | join("")`,
		`"x" * 8e6 | [match("x"; "g")] | length`,
		`"x" * 8e6 | explode | length`,
	} {
		t.Run(prog, func(t *testing.T) {
			_, stderr, ok, peak := runMeasured(t, vk, nil, "telemetry", "dump", "--db", db, "--jq-timeout", "20s", "--jq", prog)
			if ok {
				t.Fatal("the program succeeded")
			}
			// "record 1: jq: ...", or "jq: ..." when a step was cut short.
			if !strings.HasPrefix(stderr, "vibekit: dump: ") || !strings.Contains(stderr, "jq: ") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr = %q, want one jq error", stderr)
			}
			checkPeak(t, "dump --jq", peak)
		})
	}
}

// A --map program that runs away makes its line a reject, and the pipe goes
// on; a --transform one stops the import. Both stay under the bar.
func TestJQ_MapAndTransformBounded(t *testing.T) {
	pipe, vk := programs(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "t.db")
	in := []byte(`{"n":1}` + "\n" + `{"n":2}` + "\n")
	prog := `if .n == 1 then [range(1e9)] else {sessionId: "s", streamData: "ok"} end`
	_, stderr, ok, peak := runMeasured(t, pipe, in, "--db", db, "--quiet", "--map", prog)
	if !ok {
		t.Fatalf("pipe failed: %s", stderr)
	}
	checkPeak(t, "vibekit-pipe --map", peak)
	if got := countRows(t, db, "WHERE streamData = 'ok'"); got != 1 {
		t.Errorf("%d rows of the second line, want 1", got)
	}
	stdout, _, ok, _ := runMeasured(t, vk, nil, "telemetry", "query", "--db", db, "SELECT reason FROM vk_rejects")
	if !ok || !strings.Contains(stdout, "program used too much memory") {
		t.Errorf("rejects: %q, want the line rejected for its memory", stdout)
	}

	file := filepath.Join(dir, "in.ndjson")
	if err := os.WriteFile(file, in, 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, ok, peak = runMeasured(t, vk, nil, "telemetry", "import", "--db", filepath.Join(dir, "i.db"), "--file", file, "--transform", prog)
	if ok || !strings.Contains(stderr, "transform: jq: program used too much memory") {
		t.Errorf("import: ok %v, stderr %q, want a jq memory error", ok, stderr)
	}
	checkPeak(t, "import --transform", peak)
}

// TestJQ_MapStepThatCannotBeStopped: a --map program whose one step grows
// memory and cannot be cancelled midway (split of an 8 MB line into 8
// million strings, in one built-in call) makes vibekit-pipe stop with the
// reason, under the memory bound, instead of growing until the system
// kills it.
func TestJQ_MapStepThatCannotBeStopped(t *testing.T) {
	pipe, _ := programs(t)
	in := []byte(`{"s":"` + strings.Repeat("a", 8000000) + `"}` + "\n")
	prog := `.s | split("") | {sessionId: "s", streamData: (length | tostring)}`
	_, stderr, ok, peak := runMeasured(t, pipe, in, "--db", filepath.Join(t.TempDir(), "t.db"), "--quiet", "--max-line-bytes", "9000000", "--map", prog)
	if ok || !strings.Contains(stderr, "--map: jq: program used too much memory") || !strings.Contains(stderr, "cannot be stopped midway") {
		t.Errorf("ok %v, stderr %q: want a stop for the memory", ok, stderr)
	}
	checkPeak(t, "vibekit-pipe --map (a step that cannot be stopped)", peak)
}
