package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestOpen_WaitsForLock: while another connection holds the database's
// write lock (BEGIN IMMEDIATE, as a writer committing a batch does), Open
// waits past the busy timeout, says it is waiting, and succeeds once the
// lock is released. Before, it failed after the 5 s busy timeout.
func TestOpen_WaitsForLock(t *testing.T) {
	for _, tt := range []struct {
		name string
		make func(t *testing.T, path string) // what is at path before
	}{
		{"new file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"our database", func(t *testing.T, path string) {
			db, err := Open(path, Options{EnableIndexes: true})
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.db")
			tt.make(t, path)
			other := sql.OpenDB(connector(dsn(path, time.Second, "_txlock=immediate"), ""))
			defer other.Close()
			lock, err := other.Begin()
			if err != nil {
				t.Fatal(err)
			}
			defer lock.Rollback()
			waiting := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				// A busy timeout shorter than the lock is held: the
				// waiting is Open's own.
				db, err := Open(path, Options{EnableIndexes: true, BusyTimeout: 50 * time.Millisecond,
					WaitNotice: 100 * time.Millisecond, Waiting: func() { close(waiting) }})
				if err == nil {
					err = db.Close()
				}
				done <- err
			}()
			select {
			case <-waiting:
			case err := <-done:
				t.Fatalf("Open returned while the lock was held, without saying it waited: %v", err)
			case <-time.After(testDeadline):
				t.Fatal("Open did not say it was waiting for the lock")
			}
			// Past its busy timeout (50 ms) and still waiting: it must
			// not have given up.
			select {
			case err := <-done:
				t.Fatalf("Open returned while the lock was held: %v", err)
			default:
			}
			if err := lock.Rollback(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Open after the lock was released: %v", err)
				}
			case <-time.After(testDeadline):
				t.Fatal("Open did not finish after the lock was released")
			}
			var id int64
			if err := other.QueryRow(`PRAGMA application_id`).Scan(&id); err != nil || id != ApplicationID {
				t.Errorf("application_id = %#x, %v; want %#x", id, err, ApplicationID)
			}
		})
	}
}

// TestOpen_WaitsUntilCancelled: an Open kept waiting for a lock that is
// never released returns when its context is done, with the reason.
func TestOpen_WaitsUntilCancelled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	other := sql.OpenDB(connector(dsn(path, time.Second, "_txlock=immediate"), ""))
	defer other.Close()
	lock, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		db, err := OpenContext(ctx, path, Options{BusyTimeout: 50 * time.Millisecond, WaitNotice: time.Millisecond, Waiting: cancel})
		if err == nil {
			db.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Open = %v, want an error from the cancelled context", err)
		}
	case <-time.After(testDeadline):
		t.Fatal("Open did not return after its context was cancelled")
	}
}

// TestOpen_ConcurrentCreate: opens of the same new database at the same
// moment all succeed.
func TestOpen_ConcurrentCreate(t *testing.T) {
	dir := t.TempDir()
	n := 100
	if testing.Short() {
		n = 10
	}
	for i := range n {
		path := filepath.Join(dir, fmt.Sprintf("t%d.db", i))
		var wg sync.WaitGroup
		errs := make([]error, 3)
		start := make(chan struct{})
		for j := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				db, err := Open(path, Options{EnableIndexes: j == 0})
				if err == nil {
					err = db.Close()
				}
				errs[j] = err
			}()
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("open %d: %v", i, err)
			}
		}
	}
}
