package cli

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vibekit/vibekit-pipe/reader"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

// TestPipe_OpenWaitsForLock: vibekit-pipe started while another process
// holds the database's write lock waits for it, says so on stderr once it
// has waited a few seconds, and stores all its input when the lock frees.
// Before, opening failed after the 5 s busy timeout and the input was lost.
func TestPipe_OpenWaitsForLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	db, err := sqlite.Open(path, sqlite.Options{EnableIndexes: true})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	other, err := sql.Open("sqlite3", "file:"+path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()

	var input strings.Builder
	for i := range 100 {
		fmt.Fprintf(&input, "line %d\n", i)
	}
	in := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(in, []byte(input.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	stderr := &syncBuffer{}
	o := &pipeOptions{db: path, session: "s", agent: "a", quiet: true, indexes: true, maxLine: reader.DefaultMaxLine,
		batchSize: 50, flushMs: 10}
	done := make(chan error, 1)
	go func() { done <- runPipe(context.Background(), o, f, nil, stderr) }()

	var (
		runErr   error
		returned bool
	)
	finished := func() bool {
		if !returned {
			select {
			case runErr = <-done:
				returned = true
			default:
			}
		}
		return returned
	}
	waitFor(t, "the waiting notice", func() bool {
		return finished() || strings.Contains(stderr.String(), "waiting for the lock on "+path)
	})
	if returned {
		t.Fatalf("the pipe returned while the lock was held: %v\n%s", runErr, stderr.String())
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pipe to finish", finished)
	if runErr != nil {
		t.Fatalf("runPipe: %v\n%s", runErr, stderr.String())
	}
	var n int
	if err := other.QueryRow(`SELECT count(*) FROM telemetry WHERE eventType = 'stream'`).Scan(&n); err != nil || n != 100 {
		t.Fatalf("%d stream rows stored (%v), want 100\n%s", n, err, stderr.String())
	}
	if c := strings.Count(stderr.String(), "waiting for the lock"); c != 1 {
		t.Errorf("the notice was printed %d times, want once:\n%s", c, stderr.String())
	}
}
