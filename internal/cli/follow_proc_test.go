package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vibekit/vibekit-pipe/sqlite"
)

// Tests that stop vibekit-pipe as a process: kill -9, SIGTERM. The test
// binary is vibekit-pipe under that name on PATH (see TestMain).

// pipeCommand is vibekit-pipe as a separate process.
func pipeCommand(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	bin, err := exec.LookPath("vibekit-pipe")
	if err != nil {
		t.Fatalf("vibekit-pipe is not on PATH (TestMain puts it there): %v", err)
	}
	cmd := exec.Command(bin, args...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	// A test that fails half-way leaves no process behind.
	t.Cleanup(func() {
		if cmd.Process != nil && cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, stderr
}

func rowCount(t *testing.T, db string) int {
	t.Helper()
	rows := query(t, db, `SELECT count(*) FROM telemetry`)
	if len(rows) == 0 {
		return 0
	}
	return int(rows[0][0].(int64))
}

// writer appends numbered lines to path at a steady pace until stopped.
type writer struct {
	stop chan struct{}
	done chan int // the number of lines written
}

func startWriter(t *testing.T, path, prefix string) *writer {
	t.Helper()
	f := openAppend(t, path)
	w := &writer{stop: make(chan struct{}), done: make(chan int, 1)}
	go func() {
		n := 0
		pace := time.NewTicker(time.Millisecond) // load, not synchronisation
		defer pace.Stop()
		for {
			select {
			case <-w.stop:
				w.done <- n
				return
			case <-pace.C:
			}
			var b strings.Builder
			for range 5 {
				n++
				fmt.Fprintf(&b, "%s-%d\n", prefix, n)
			}
			if _, err := f.WriteString(b.String()); err != nil {
				panic(err)
			}
		}
	}()
	return w
}

func (w *writer) finish() int {
	close(w.stop)
	return <-w.done
}

// 14. Random kill -9 during steady writing, 20 times, then a clean run: the
// lines stored are exactly the lines written.
func TestFollow_KillNine(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, wc watcherCase) {
		dir := t.TempDir()
		db, path := filepath.Join(dir, "t.db"), filepath.Join(dir, "app.log")
		w := startWriter(t, path, "w")
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 14))
		for range 20 {
			cmd, stderr := pipeCommand(t, wc.args(db, "--follow", path)...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Kill at a random point: after some more rows were committed,
			// while reading and committing go on.
			target := rowCount(t, db) + 1 + rng.IntN(400)
			waitUntil(t, func() string { return fmt.Sprintf("%d rows; stderr:\n%s", target, stderr) }, func() bool {
				return rowCount(t, db) >= target
			})
			cmd.Process.Kill()
			cmd.Wait()
		}
		n := w.finish()
		// A clean run: stdin at its end stops it once the file is read to its end.
		cmd, stderr := pipeCommand(t, wc.args(db, "--follow", path)...)
		cmd.Stdin = strings.NewReader("")
		if err := cmd.Run(); err != nil {
			t.Fatalf("final run: %v; stderr:\n%s", err, stderr)
		}
		if got, want := stored(t, db), multiset(lines("w", 1, n)...); !maps.Equal(got, want) {
			t.Fatalf("after 20 kills, %d lines written: %s", n, diffSets(got, want))
		}
		// The killed process's claim of the file was taken over, not obeyed,
		// and the clean run let go of its own.
		if !strings.Contains(stderr.String(), "took over the claim of pid") {
			t.Errorf("the run after a kill -9 did not say it took over the claim; stderr:\n%s", stderr)
		}
		if got := query(t, db, `SELECT count(*) FROM vk_claims`); got[0][0] != int64(0) {
			t.Errorf("claims left after the clean run: %v", got)
		}
	})
}

// 19. SIGTERM while following: the final batch and its offsets are
// committed, and the exit status is 0.
func TestFollow_SIGTERM(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, wc watcherCase) {
		dir := t.TempDir()
		db, path := filepath.Join(dir, "t.db"), filepath.Join(dir, "app.log")
		// Records, not text: text would start a session, whose start row
		// is committed at once.
		all := lines("line", 1, 100000)
		raw := make([]string, len(all))
		for i, l := range all {
			raw[i] = `{"sessionId":"s","eventType":"stream","streamData":"` + l + `"}`
		}
		appendLines(t, path, raw...)
		fi, _ := os.Stat(path)
		// Nothing is committed before the stop: the stop commits it all.
		args := wc.args(db, "--follow", path, "--stream-flush-interval-ms", "3600000", "--stream-batch-size", "10000000")
		cmd, stderr := pipeCommand(t, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Stop once the file has been read to its end.
		waitUntil(t, func() string { return "the file to be read; stderr:\n" + stderr.String() }, func() bool {
			return readTo(cmd.Process.Pid, path) == fi.Size()
		})
		if got := rowCount(t, db); got != 0 {
			t.Fatalf("%d rows committed before the stop", got)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, stderr)
		}
		if rowCount(t, db) == 0 {
			t.Fatal("the stop committed nothing")
		}
		// What was read was committed with its offset; a restart reads
		// the rest, if any, and nothing twice.
		checkOffsetMatchesRows(t, db, path, raw, all)
		cmd, stderr = pipeCommand(t, args...)
		cmd.Stdin = strings.NewReader("")
		if err := cmd.Run(); err != nil {
			t.Fatalf("restart: %v; stderr:\n%s", err, stderr)
		}
		if got, want := stored(t, db), multiset(all...); !maps.Equal(got, want) {
			t.Fatalf("after SIGTERM and a restart: %s", diffSets(got, want))
		}
	})
}

// readTo is the file position of process pid's descriptor on path, or -1.
func readTo(pid int, path string) int64 {
	fds := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(fds)
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join(fds, e.Name())); err != nil || target != path {
			continue
		}
		info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, e.Name()))
		if err != nil {
			continue
		}
		var pos int64
		if _, err := fmt.Sscanf(string(info), "pos:\t%d", &pos); err == nil {
			return pos
		}
	}
	return -1
}

// 15. A full disk, or the database locked by another writer: the offset
// never passes what was committed, and nothing is lost once it clears.
func TestFollow_CommitFails(t *testing.T) {
	t.Run("disk full", func(t *testing.T) {
		forEachWatcher(t, func(t *testing.T, wc watcherCase) {
			dir := t.TempDir()
			mnt := filepath.Join(dir, "small")
			os.Mkdir(mnt, 0o700)
			if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=2m"); err != nil {
				t.Skipf("cannot mount a small tmpfs for the database (needs root): %v", err)
			}
			t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
			db, path := filepath.Join(mnt, "t.db"), filepath.Join(dir, "app.log")
			failures := make(chan error, 1)
			o := &pipeOptions{commitFailed: func(err error) {
				select {
				case failures <- err:
				default:
				}
			}}
			all := lines(strings.Repeat("x", 200), 1, 3000)
			appendLines(t, path, all[:100]...)
			startPipe(t, o, nil, wc.args(db, "--follow", path)...)
			waitStored(t, db, multiset(all[:100]...))
			fill(t, filepath.Join(mnt, "filler"))
			appendLines(t, path, all[100:]...)
			select {
			case err := <-failures:
				if !strings.Contains(err.Error(), "full") {
					t.Fatalf("commit failed with %v, want a full disk", err)
				}
			case <-time.After(deadline):
				t.Fatal("no commit failed on the full disk")
			}
			checkOffsetMatchesRows(t, db, path, all, nil)
			os.Remove(filepath.Join(mnt, "filler"))
			waitStored(t, db, multiset(all...))
			checkOffsetMatchesRows(t, db, path, all, nil)
		})
	})
	t.Run("locked", func(t *testing.T) {
		forEachWatcher(t, func(t *testing.T, wc watcherCase) {
			dir := t.TempDir()
			db, path := filepath.Join(dir, "t.db"), filepath.Join(dir, "app.log")
			failures := make(chan error, 1)
			o := &pipeOptions{commitFailed: func(err error) {
				select {
				case failures <- err:
				default:
				}
			}}
			all := lines("line", 1, 2000)
			appendLines(t, path, all[:100]...)
			startPipe(t, o, nil, wc.args(db, "--follow", path)...)
			waitStored(t, db, multiset(all[:100]...))
			// Another writer takes the lock and holds it.
			ctx := context.Background()
			conn, err := dbQuery(t, db).Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
				t.Fatal(err)
			}
			appendLines(t, path, all[100:]...)
			select {
			case err := <-failures:
				if !sqlite.IsBusy(errors.Unwrap(err)) && !strings.Contains(err.Error(), "locked") {
					t.Fatalf("commit failed with %v, want a busy database", err)
				}
			case <-time.After(deadline):
				t.Fatal("no commit failed while the database was locked")
			}
			checkOffsetMatchesRows(t, db, path, all, nil)
			if _, err := conn.ExecContext(ctx, `ROLLBACK`); err != nil {
				t.Fatal(err)
			}
			waitStored(t, db, multiset(all...))
			checkOffsetMatchesRows(t, db, path, all, nil)
		})
	})
}

// fill writes zeros to path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatal(err)
		}
	}
}

// 17. 1,000 idle followed files: CPU stays near 0, descriptors stay
// bounded, and a new file matching the glob is found within a second.
func TestFollow_ThousandIdleFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 files: not in -short")
	}
	forEachWatcher(t, func(t *testing.T, wc watcherCase) {
		dir := t.TempDir()
		db, logs := filepath.Join(dir, "t.db"), filepath.Join(dir, "logs")
		os.Mkdir(logs, 0o755)
		for i := range 1000 {
			appendLines(t, filepath.Join(logs, fmt.Sprintf("f%04d.log", i)), fmt.Sprintf("f%04d", i))
		}
		before := countFDs(t)
		// The default poll interval: what a user gets.
		startPipe(t, nil, nil, wc.args(db, "--follow", filepath.Join(logs, "*.log"), "--poll-interval", "250ms")...)
		waitUntil(t, func() string { return "1000 rows" }, func() bool { return rowCount(t, db) >= 1001 }) // and the session's start
		if n := countFDs(t) - before; n > 1000+32 {
			t.Errorf("%d descriptors open for 1,000 files", n)
		}
		// Idle CPU: measured over a window (a measurement, not a wait for
		// anything). The bound is loose; BENCHMARKS.md has the figure.
		cpu0, wall0 := processCPU(t), time.Now()
		time.Sleep(2 * time.Second)
		cpu, wall := processCPU(t)-cpu0, time.Since(wall0)
		pct := 100 * cpu.Seconds() / wall.Seconds()
		t.Logf("idle CPU with 1,000 followed files: %.2f%% of one core (%v in %v)", pct, cpu, wall.Round(time.Millisecond))
		if pct > 20 {
			t.Errorf("idle CPU %.1f%% of one core with 1,000 files", pct)
		}
		began := time.Now()
		appendLines(t, filepath.Join(logs, "new.log"), "new-1")
		waitUntil(t, func() string { return "the new file's line" }, func() bool {
			return len(query(t, db, `SELECT 1 FROM telemetry WHERE streamData = 'new-1'`)) == 1
		})
		took := time.Since(began)
		t.Logf("a new file was found and its line committed in %v", took.Round(time.Millisecond))
		// Promised within a second; the bound allows for a loaded machine.
		if took > 5*time.Second {
			t.Errorf("a new file took %v to be found", took)
		}
	})
}

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

func processCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Backpressure: while the store cannot keep up (here: locked by another
// writer), reading waits once the pipe's budget of lines is in flight,
// however much the file holds; then it all arrives.
func TestFollow_Backpressure(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, wc watcherCase) {
		dir := t.TempDir()
		db, path := filepath.Join(dir, "t.db"), filepath.Join(dir, "app.log")
		failures := make(chan error, 1)
		o := &pipeOptions{commitFailed: func(err error) {
			select {
			case failures <- err:
			default:
			}
		}}
		appendLines(t, path, "first")
		startPipe(t, o, nil, wc.args(db, "--follow", path)...)
		waitStored(t, db, multiset("first"))
		ctx := context.Background()
		conn, err := dbQuery(t, db).Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
			t.Fatal(err)
		}
		// 40 MB, five times the budget.
		all := lines(strings.Repeat("y", 500), 1, 80000)
		appendLines(t, path, all...)
		select {
		case <-failures:
		case <-time.After(deadline):
			t.Fatal("no commit failed while the database was locked")
		}
		// The reader had seconds to run ahead; it stopped at the budget.
		pos, limit := readTo(os.Getpid(), path), int64(pipeBudget+2<<20)
		t.Logf("read %d of %d bytes while the store was locked", pos, 40<<20)
		if pos > limit || pos < 0 {
			t.Errorf("read %d bytes ahead of a locked store, want at most %d", pos, limit)
		}
		if _, err := conn.ExecContext(ctx, `ROLLBACK`); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, func() string { return "all rows" }, func() bool { return rowCount(t, db) == len(all)+2 })
		if got, want := stored(t, db), multiset(append(all, "first")...); !maps.Equal(got, want) {
			t.Fatalf("after the lock: %s", diffSets(got, want))
		}
	})
}
