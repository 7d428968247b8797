package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// holdLock takes the write lock of db on a second connection, as another
// writer would, and returns its release.
func holdLock(t *testing.T, db string) func() {
	t.Helper()
	ctx := context.Background()
	conn, err := dbQuery(t, db).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			conn.ExecContext(ctx, `ROLLBACK`)
			conn.Close()
		}
	}
	t.Cleanup(release)
	return release
}

// streamRecord is the n-th JSON stream record of session s.
func streamRecord(n int) string {
	return fmt.Sprintf(`{"sessionId":"s","eventType":"stream","agentType":"x","streamData":"r%d"}`, n)
}

// TestPipe_LockStall: another writer holds the lock; after a few seconds
// the pipe says so, once, and says when it is released; nothing is lost.
func TestPipe_LockStall(t *testing.T) {
	db := filepath.Join(t.TempDir(), "t.db")
	cmd, stderr := pipeCommand(t, "--db", db, "--quiet", "--stream-batch-size", "5", "--stream-flush-interval-ms", "50")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(in, streamRecord(0))
	waitFor(t, "the first row", func() bool { return countRows(t, db, "") == 1 })
	release := holdLock(t, db)
	for i := 1; i <= 20; i++ {
		fmt.Fprintln(in, streamRecord(i))
	}
	waitFor(t, "the lock stall warning", func() bool { return strings.Contains(stderr.String(), "locked by another writer") })
	if got := countRows(t, db, ""); got != 1 {
		t.Fatalf("%d rows stored while the lock was held", got)
	}
	release()
	waitFor(t, "the rows after the lock is released", func() bool { return countRows(t, db, "") == 21 })
	waitFor(t, "the release to be told", func() bool { return strings.Contains(stderr.String(), "lock was released") })
	in.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr)
	}
	if n := strings.Count(stderr.String(), "locked by another writer"); n != 1 {
		t.Errorf("the stall was told %d times, want once:\n%s", n, stderr)
	}
}

var droppedRE = regexp.MustCompile(`stopped at once by a second signal: dropped (\d+) buffered rows`)

// TestPipe_SecondSignal: commits block on a held lock, so rows are
// buffered; a second SIGTERM stops at once and says how many it dropped.
func TestPipe_SecondSignal(t *testing.T) {
	db := filepath.Join(t.TempDir(), "t.db")
	cmd, stderr := pipeCommand(t, "--db", db, "--stream-batch-size", "10", "--stream-flush-interval-ms", "50")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	passed := bufio.NewReader(out)
	fmt.Fprintln(in, streamRecord(0))
	passed.ReadString('\n')
	waitFor(t, "the first row", func() bool { return countRows(t, db, "") == 1 })
	release := holdLock(t, db)
	const buffered = 137
	for i := 1; i <= buffered; i++ {
		fmt.Fprintln(in, streamRecord(i))
	}
	// Every line passed through has been read: it is buffered somewhere.
	for i := 1; i <= buffered; i++ {
		if _, err := passed.ReadString('\n'); err != nil {
			t.Fatalf("pass-through line %d: %v", i, err)
		}
	}
	// The first SIGTERM stops reading and waits for the lock (for a
	// bounded time); one after it stops at once. They are sent until the
	// process is gone, so the second cannot arrive before the first is
	// taken in.
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	end := time.After(deadline)
	for done := false; !done; {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err = <-exited:
			done = true
		case <-time.After(200 * time.Millisecond):
		case <-end:
			t.Fatalf("still running after repeated SIGTERMs:\n%s", stderr)
		}
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 128+int(syscall.SIGTERM) {
		t.Errorf("exit %v, want status %d", err, 128+int(syscall.SIGTERM))
	}
	m := droppedRE.FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no count of dropped rows:\n%s", stderr)
	}
	release()
	stored := countRows(t, db, "")
	if n, _ := strconv.Atoi(m[1]); n != buffered || stored != 1 {
		t.Fatalf("dropped %d, stored %d; want %d dropped, 1 stored", n, stored, buffered)
	}
}

var notStoredRE = regexp.MustCompile(`events written (\d+),.*\n.*refused by the database (\d+) \(kept as rejects\), not stored (\d+)`)

// TestPipe_DiskFull: on a full disk, commits are retried for a bounded
// time, then the rows are counted as not stored and the input keeps
// passing through; once there is room again, rows are stored again.
func TestPipe_DiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs for the database")
	}
	dir := t.TempDir()
	mnt := filepath.Join(dir, "small")
	os.Mkdir(mnt, 0o700)
	// Room, once the filler is gone, for the batch of a few MiB that
	// builds up while a commit is retried.
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=16m"); err != nil {
		t.Fatalf("mount a small tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	db := filepath.Join(mnt, "t.db")
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdinR.Close()
	stdoutR, stdoutW := io.Pipe()
	stderr := &syncBuffer{}
	o := &pipeOptions{stopRetry: time.Second}
	code := make(chan int, 1)
	go func() {
		code <- runPipeWith(context.Background(), []string{"--db", db, "--stats", "--session", "s", "--stream-batch-size", "50"}, o, stdinR, stdoutW, stderr)
		stdoutW.Close()
	}()
	var passed atomic.Int64 // lines passed through to stdout
	go func() {
		sc := bufio.NewScanner(stdoutR)
		for sc.Scan() {
			passed.Add(1)
		}
	}()
	w := bufio.NewWriter(stdinW)
	line := strings.Repeat("x", 200)
	write := func(from, to int) {
		for i := from; i <= to; i++ {
			fmt.Fprintf(w, "%d %s\n", i, line)
		}
		w.Flush()
	}
	write(1, 100)
	waitFor(t, "the first rows", func() bool { return countRows(t, db, "") == 101 })
	fill(t, filepath.Join(mnt, "filler"))
	// Far more than fits, and more than the pipe buffers (pipeBudget):
	// passing it all through means reading did not wait for the disk.
	const total = 60000
	wrote := make(chan struct{})
	go func() { // a pipe that stopped reading would block this write
		defer close(wrote)
		write(101, total)
	}()
	waitFor(t, "the input to pass through a full disk", func() bool { return passed.Load() == total })
	<-wrote
	waitFor(t, "rows counted as not stored", func() bool { return strings.Contains(stderr.String(), "not stored: commit") })
	os.Remove(filepath.Join(mnt, "filler"))
	// The rows still buffered may fill the disk again; at least the first
	// commit after the space was freed stores.
	write(total+1, total+10)
	waitFor(t, "rows stored again", func() bool { return strings.Contains(stderr.String(), "commits succeed again") })
	stdinW.Close()
	select {
	case c := <-code:
		if c != ExitFailure {
			t.Errorf("exit %d, want %d (rows were not stored)", c, ExitFailure)
		}
	case <-time.After(deadline):
		t.Fatalf("did not stop:\n%s", stderr)
	}
	m := notStoredRE.FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no stats:\n%s", stderr)
	}
	written, _ := strconv.Atoi(m[1])
	notStored, _ := strconv.Atoi(m[3])
	stored := countRows(t, db, "")
	// Every row the pipe made (the lines, a start and an end row) is
	// stored or counted not stored, and the stats say which.
	if written != stored || written+notStored != total+12 || notStored == 0 {
		t.Errorf("written %d, not stored %d, in the database %d; want written = stored, and %d in all", written, notStored, stored, total+12)
	}
	var recorded int
	if err := dbQuery(t, db).QueryRow(`SELECT SUM(not_stored) FROM vk_runs`).Scan(&recorded); err != nil || recorded != notStored {
		t.Errorf("vk_runs.not_stored = %d, %v; want %d", recorded, err, notStored)
	}
}
