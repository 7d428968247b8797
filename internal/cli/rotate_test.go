package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/vibekit/vibekit-pipe/rotate"
)

// writeLineFile writes n lines "<prefix> <i> <padding>" to a new file.
func writeLineFile(t *testing.T, prefix string, n int) string {
	t.Helper()
	var b strings.Builder
	pad := strings.Repeat("p", 300)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%s %d %s\n", prefix, i, pad)
	}
	path := filepath.Join(t.TempDir(), prefix+".txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runPipeFile runs vibekit-pipe on the file in with args; it returns
// stderr and the exit error, if any.
func runPipeFile(t *testing.T, bin, in string, env []string, args ...string) (string, error) {
	t.Helper()
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = f
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	return stderr.String(), err
}

// dumpAll returns the streamData of every stream row in the database and
// its archives, through dump --archives, checking the order by time.
func dumpAll(t *testing.T, vk, db string) []string {
	t.Helper()
	cmd := exec.Command(vk, "telemetry", "dump", "--db", db, "--archives", "--type", "stream", "--jq", "[.timestamp, .streamData]")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dump --archives: %v\n%s", err, stderr.String())
	}
	var data []string
	var last int64
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		var v [2]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatal(err)
		}
		ts := int64(v[0].(float64))
		if ts < last {
			t.Fatalf("dump --archives is not in time order at %q", line)
		}
		last = ts
		data = append(data, v[1].(string))
	}
	return data
}

// committedLines is the stdin line count the live database has committed.
func committedLines(t *testing.T, db string) int {
	t.Helper()
	out, err := exec.Command("sqlite3", db, "SELECT coalesce(max(line), 0) FROM vk_sources WHERE name = 'stdin'").Output()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(string(out), &n)
	return n
}

// checkLines fails unless got holds "<prefix> i" for i in 1..n, each once.
func checkLines(t *testing.T, got []string, prefix string, n int) {
	t.Helper()
	seen := map[int]int{}
	for _, s := range got {
		var p string
		var i int
		if _, err := fmt.Sscanf(s, "%s %d", &p, &i); err != nil || p != prefix {
			continue
		}
		seen[i]++
	}
	for i := 1; i <= n; i++ {
		if seen[i] != 1 {
			t.Fatalf("%s %d is stored %d times", prefix, i, seen[i])
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct %s lines stored, want %d", len(seen), prefix, n)
	}
}

func mustCheckArchives(t *testing.T, vk, db string) {
	t.Helper()
	out, err := exec.Command(vk, "telemetry", "check", "--db", db, "--archives").CombinedOutput()
	if err != nil {
		t.Fatalf("check --archives: %v\n%s", err, out)
	}
}

// TestPipe_KilledWhileSealing kills vibekit-pipe at each step of a seal
// (VKTEST_SEAL_KILL_AT) and starts it again: the seal is finished or
// rolled back at start, and the database with its archives holds exactly
// the lines that were committed, once each, and passes check --archives.
func TestPipe_KilledWhileSealing(t *testing.T) {
	pipeBin, vk := programs(t)
	in := writeLineFile(t, "line", 8000) // 2.5 MB: past a limit of 1 MB
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, nil, 0o600)
	for _, step := range rotate.Steps {
		t.Run(string(step), func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "t.db")
			args := []string{"--db", db, "--quiet", "--max-size-mb", "1", "--session", "s", "--stream-batch-size", "200"}
			stderr, err := runPipeFile(t, pipeBin, in, []string{killAtEnv + "=" + string(step)}, args...)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("vibekit-pipe was not killed at %s: %v\n%s", step, err, stderr)
			}
			if stderr, err := runPipeFile(t, pipeBin, empty, nil, args...); err != nil {
				t.Fatalf("restart: %v\n%s", err, stderr)
			}
			n := committedLines(t, db)
			if n == 0 {
				t.Fatal("nothing was committed before the kill")
			}
			checkLines(t, dumpAll(t, vk, db), "line", n)
			mustCheckArchives(t, vk, db)
			leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(db), "archives", ".*.tmp"))
			if len(leftovers) > 0 {
				t.Errorf("temp files left: %v", leftovers)
			}
		})
	}
}

// TestPipe_TwoWritersSealOnce runs two vibekit-pipe processes into one
// database with a small limit: each sealed row is in exactly one archive,
// and every line of both is stored once.
func TestPipe_TwoWritersSealOnce(t *testing.T) {
	pipeBin, vk := programs(t)
	db := filepath.Join(t.TempDir(), "t.db")
	const n = 16000 // 5 MB each
	inputs := map[string]string{"a": writeLineFile(t, "a", n), "b": writeLineFile(t, "b", n)}
	// Create the database first: two processes creating one file at the
	// same moment can fail with "database is locked" (sqlite.Open sets WAL
	// mode outside the busy timeout), which is not what this test is about.
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, nil, 0o600)
	if stderr, err := runPipeFile(t, pipeBin, empty, nil, "--db", db); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 2)
	for name, in := range inputs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stderr, err := runPipeFile(t, pipeBin, in, nil, "--db", db, "--quiet", "--max-size-mb", "1", "--session", name, "--stream-batch-size", "100")
			if err != nil {
				errs <- fmt.Sprintf("%s: %v\n%s", name, err, stderr)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	got := dumpAll(t, vk, db)
	checkLines(t, got, "a", n)
	checkLines(t, got, "b", n)
	if len(got) != 2*n {
		t.Fatalf("%d stream rows, want %d", len(got), 2*n)
	}
	as, _ := rotate.List(db)
	if len(as) == 0 {
		t.Error("no archive: 10 MB went into a database of 1 MB")
	}
	out, _ := exec.Command("sqlite3", db, "SELECT count(*) FILTER (WHERE state = 'done'), count(*) FROM vk_seals").Output()
	if want := fmt.Sprintf("%d|%d\n", len(as), len(as)); string(out) != want {
		t.Errorf("vk_seals done|all = %q, want %q", out, want)
	}
	mustCheckArchives(t, vk, db)
}

// TestPipe_UnderTheLimitAtExit feeds a bulk load to a tiny limit: rows that
// arrive while a seal runs push the store past it again, and the pipe seals
// once more before it exits, leaving the live database under the limit.
func TestPipe_UnderTheLimitAtExit(t *testing.T) {
	pipeBin, vk := programs(t)
	db := filepath.Join(t.TempDir(), "t.db")
	in := writeLineFile(t, "line", 100000) // ~32 MB of rows against a 1 MB limit
	if stderr, err := runPipeFile(t, pipeBin, in, nil, "--db", db, "--quiet", "--session", "s", "--max-size-mb", "1"); err != nil {
		t.Fatalf("vibekit-pipe: %v\n%s", err, stderr)
	}
	out, err := exec.Command("sqlite3", db, "SELECT (page_count - freelist_count) * page_size FROM pragma_page_count, pragma_freelist_count, pragma_page_size").Output()
	if err != nil {
		t.Fatal(err)
	}
	var used int64
	fmt.Sscan(string(out), &used)
	if used >= 1<<20 {
		t.Fatalf("the live database holds %d bytes of data at exit, over the 1 MB limit", used)
	}
	checkLines(t, dumpAll(t, vk, db), "line", 100000)
	mustCheckArchives(t, vk, db)
}
