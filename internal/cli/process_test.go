package cli

import (
	"bufio"
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// programs returns paths that run this test binary as vibekit-pipe and
// vibekit (testscript.Main dispatches on the name).
func programs(t *testing.T) (pipe, vibekit string) {
	t.Helper()
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"vibekit-pipe", "vibekit"} {
		if err := os.Symlink(self, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "vibekit-pipe"), filepath.Join(dir, "vibekit")
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func countRows(t *testing.T, db, where string) int {
	t.Helper()
	conn, err := sql.Open("sqlite3", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n int
	if err := conn.QueryRow(`SELECT count(*) FROM telemetry ` + where).Scan(&n); err != nil {
		return -1 // not created yet
	}
	return n
}

func streamData(t *testing.T, db string) []string {
	t.Helper()
	conn, err := sql.Open("sqlite3", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(`SELECT streamData FROM telemetry WHERE eventType = 'stream' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		out = append(out, s)
	}
	return out
}

var linesReadRE = regexp.MustCompile(`lines read (\d+) = rows (\d+) \+ rejects (\d+) \+ skipped (\d+)`)

// linesRead parses the --stats line; it fails the test if the counts do not
// reconcile.
func linesRead(t *testing.T, stderr string) int {
	t.Helper()
	m := linesReadRE.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no stats in stderr:\n%s", stderr)
	}
	n := make([]int, 5)
	for i := 1; i < 5; i++ {
		n[i], _ = strconv.Atoi(m[i])
	}
	if n[1] != n[2]+n[3]+n[4] {
		t.Fatalf("counts do not reconcile: %s", m[0])
	}
	return n[1]
}

// TestPipe_StopSignals sends each stop signal mid-stream, with the writer
// still connected, and finds every line the pipe read stored, in order.
func TestPipe_StopSignals(t *testing.T) {
	pipeBin, _ := programs(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "t.db")
			cmd := exec.Command(pipeBin, "--db", db, "--quiet", "--stats", "--session", "s", "--stream-batch-size", "10")
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			w := bufio.NewWriter(in)
			n := 0
			write := func(k int) {
				for range k {
					n++
					fmt.Fprintf(w, "line %d\n", n)
				}
				w.Flush()
			}
			write(500)
			waitFor(t, "rows to be committed", func() bool { return countRows(t, db, "") > 0 })
			write(500) // more lines, some perhaps still in flight at the signal
			cmd.Process.Signal(sig)
			err = cmd.Wait()
			in.Close()
			if err != nil {
				t.Fatalf("exit: %v\n%s", err, stderr.String())
			}
			read := linesRead(t, stderr.String())
			got := streamData(t, db)
			if len(got) != read {
				t.Fatalf("stored %d lines, read %d", len(got), read)
			}
			for i, s := range got {
				want := fmt.Sprintf("line %d", i+1)
				// The last line may have been cut off by the stop: then it
				// is the start of the line, marked partial.
				if i == len(got)-1 && s != want && strings.HasPrefix(want, s) {
					if countRows(t, db, `WHERE json_extract(metadata, '$.partial') = 1`) != 1 {
						t.Fatalf("last row %q is cut off but not marked partial", s)
					}
					continue
				}
				if s != want {
					t.Fatalf("row %d = %q, want %q", i, s, want)
				}
			}
			if read < 500 {
				t.Fatalf("read %d lines; 500 were committed before the signal", read)
			}
			if got := countRows(t, db, `WHERE eventType = 'end' AND json_extract(metadata, '$.status') = 'interrupted'`); got != 1 {
				t.Fatalf("%d end rows with status interrupted, want 1", got)
			}
		})
	}
}

// TestPipe_ClosedStdout is `vibekit-pipe | head -1`: the reader of stdout
// goes away, and the pipe stores what it read and exits 0.
func TestPipe_ClosedStdout(t *testing.T) {
	pipeBin, _ := programs(t)
	db := filepath.Join(t.TempDir(), "t.db")
	cmd := exec.Command(pipeBin, "--db", db, "--stats", "--session", "s")
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		w := bufio.NewWriter(in)
		for i := 1; i <= 200000; i++ {
			if _, err := fmt.Fprintf(w, "line %d\n", i); err != nil {
				return // the pipe stopped reading: expected
			}
		}
		w.Flush()
		in.Close()
	}()
	first, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || first != "line 1\n" {
		t.Fatalf("first output line = %q, %v", first, err)
	}
	out.Close() // like head -1 exiting
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
	read := linesRead(t, stderr.String())
	if got := len(streamData(t, db)); got != read {
		t.Fatalf("stored %d lines, read %d", got, read)
	}
	if got := countRows(t, db, `WHERE eventType = 'end' AND json_extract(metadata, '$.status') = 'output closed'`); got != 1 {
		t.Fatalf("%d end rows with status 'output closed', want 1", got)
	}
}

// TestPipe_SIGUSR1 prints the metrics without stopping.
func TestPipe_SIGUSR1(t *testing.T) {
	pipeBin, _ := programs(t)
	db := filepath.Join(t.TempDir(), "t.db")
	cmd := exec.Command(pipeBin, "--db", db, "--quiet")
	in, _ := cmd.StdinPipe()
	stderrR, stderrW := io.Pipe()
	cmd.Stderr = stderrW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(in, "one")
	waitFor(t, "the first row", func() bool { return countRows(t, db, "") > 0 })
	cmd.Process.Signal(syscall.SIGUSR1)
	line, err := bufio.NewReader(stderrR).ReadString('\n')
	if err != nil || !linesReadRE.MatchString(line) {
		t.Fatalf("stderr after SIGUSR1 = %q, %v", line, err)
	}
	go io.Copy(io.Discard, stderrR)
	fmt.Fprintln(in, "two") // still running
	in.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	stderrW.Close()
	if got := streamData(t, db); len(got) != 2 {
		t.Fatalf("stored %q, want both lines", got)
	}
}

// TestPipe_CommitsOnTime feeds a steady stream that never pauses and never
// fills a batch: rows must still be committed within the interval of the
// oldest, while the input is still open. A start record commits at once.
func TestPipe_CommitsOnTime(t *testing.T) {
	pipeBin, _ := programs(t)
	db := filepath.Join(t.TempDir(), "t.db")
	cmd := exec.Command(pipeBin, "--db", db, "--quiet", "--session", "s", "--stream-batch-size", "100000", "--stream-flush-interval-ms", "200")
	in, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				fmt.Fprintf(in, "line %d\n", i)
			}
		}
	}()
	// The session's start row commits at once, with the first line; later
	// lines can only be committed by the interval, since no batch fills.
	waitFor(t, "the session to start", func() bool { return countRows(t, db, "") > 0 })
	first := countRows(t, db, `WHERE eventType = 'stream'`)
	waitFor(t, "stream rows committed by the interval while the input flows", func() bool {
		return countRows(t, db, `WHERE eventType = 'stream'`) > first
	})
	close(stop)
	<-fed

	// A lifecycle row, with a long interval: it is committed at once, with
	// the stream rows buffered before it.
	fmt.Fprintln(in, `{"sessionId":"r","eventType":"start","agentType":"codex"}`)
	waitFor(t, "the start record", func() bool {
		return countRows(t, db, `WHERE sessionId = 'r'`) == 1
	})
	in.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestPipe_StopSignalSocketStdin is the stop of TestPipe_StopSignals with
// stdin a socket (as a supervisor may give): the blocked read is
// interrupted, what was read is stored, and the exit is clean.
func TestPipe_StopSignalSocketStdin(t *testing.T) {
	pipeBin, _ := programs(t)
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "ours"), os.NewFile(uintptr(fds[1]), "theirs")
	defer ours.Close()
	db := filepath.Join(t.TempDir(), "t.db")
	cmd := exec.Command(pipeBin, "--db", db, "--quiet", "--session", "s")
	cmd.Stdin = theirs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	fmt.Fprintln(ours, "hello")
	waitFor(t, "the line to be stored", func() bool { return countRows(t, db, `WHERE eventType = 'stream'`) == 1 })
	cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("still running 20 s after SIGTERM, blocked reading the socket")
	}
	if got := countRows(t, db, `WHERE eventType = 'end' AND json_extract(metadata, '$.status') = 'interrupted'`); got != 1 {
		t.Fatalf("%d end rows with status interrupted, want 1", got)
	}
}
