package cli

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vibekit/vibekit-pipe/batch"
	"github.com/vibekit/vibekit-pipe/reader"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

// lockedStore opens a store whose commits give up on a lock after 20 ms, and
// takes its write lock in another connection, which it also returns.
func lockedStore(t *testing.T) (*sqlite.DB, *sql.DB, *sql.Tx) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.db")
	db, err := sqlite.Open(path, sqlite.Options{EnableIndexes: true, BusyTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	other, err := sql.Open("sqlite3", "file:"+path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	lock, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	return db, other, lock
}

// TestPipe_RetriesWhileLocked holds the database's write lock in another
// connection for longer than the busy timeout: the pipe keeps its batches,
// retries, and stores every line once the lock is gone.
func TestPipe_RetriesWhileLocked(t *testing.T) {
	db, other, lock := lockedStore(t)

	var input strings.Builder
	for i := range 300 {
		fmt.Fprintf(&input, "line %d\n", i)
	}
	in := filepath.Join(t.TempDir(), "in.txt")
	os.WriteFile(in, []byte(input.String()), 0o600)
	f, _ := os.Open(in)
	defer f.Close()

	var stderr bytes.Buffer
	o := &pipeOptions{session: "s", agent: "a", maxLine: reader.DefaultMaxLine}
	p := &pipe{o: o, db: db, b: batch.New(10, 10*time.Millisecond), stderr: &stderr, now: time.Now}
	done := make(chan error, 1)
	go func() { done <- p.run(context.Background(), &reader.Stream{File: f, Name: "stdin"}) }()

	// Hold the lock until the pipe has been refused several times.
	waitFor(t, "commits refused by the lock", func() bool { return p.retries.Load() >= 3 })
	lock.Rollback()
	if err := <-done; err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	var n int
	other.QueryRow(`SELECT count(*) FROM telemetry WHERE eventType = 'stream'`).Scan(&n)
	if n != 300 {
		t.Fatalf("%d stream rows stored, want 300", n)
	}
	if p.m.written != 302 {
		t.Fatalf("metrics say %d rows written, want 302 (with start and end)", p.m.written)
	}
}

// TestPipe_GivesUpAfterSignal stops a pipe whose commits keep failing while
// its reader waits for them (more input than the byte budget): the stop
// bounds the retries, and the pipe returns an error naming what was lost
// instead of hanging.
func TestPipe_GivesUpAfterSignal(t *testing.T) {
	db, _, lock := lockedStore(t)
	defer lock.Rollback()

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	go func() {
		line := strings.Repeat("x", 1000) + "\n"
		for range 20000 { // 20 MB: past the 8 MiB budget; the write end stays open
			if _, err := w.WriteString(line); err != nil {
				return
			}
		}
	}()
	var stderr bytes.Buffer
	o := &pipeOptions{session: "s", agent: "a", maxLine: reader.DefaultMaxLine, stopRetry: 100 * time.Millisecond}
	p := &pipe{o: o, db: db, b: batch.New(50, 10*time.Millisecond), stderr: &stderr, now: time.Now}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.run(ctx, &reader.Stream{File: r, Name: "stdin"}) }()
	waitFor(t, "commits refused by the lock", func() bool { return p.retries.Load() >= 3 })
	cancel() // the signal
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "rows not stored") {
			t.Fatalf("run = %v, want an error naming the rows not stored", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the pipe did not stop after the signal while its commits failed")
	}
}
