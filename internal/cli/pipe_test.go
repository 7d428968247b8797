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

// TestPipe_RetriesWhileLocked holds the database's write lock in another
// connection for longer than the busy timeout: the pipe keeps its batches,
// retries, and stores every line once the lock is gone.
func TestPipe_RetriesWhileLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	db, err := sqlite.Open(path, sqlite.Options{EnableIndexes: true, BusyTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	other, err := sql.Open("sqlite3", "file:"+path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}

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
