package sqlite

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestOpen_WaitsForAnotherCreator: while another connection holds the write
// lock of a new database that is not in WAL mode yet (it is creating it),
// Open waits for it rather than failing with "database is locked": setting
// WAL mode upgrades a read lock, which SQLite does not retry on its own.
func TestOpen_WaitsForAnotherCreator(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	other := sql.OpenDB(connector(dsn(path, time.Second, "_txlock=immediate"), ""))
	defer other.Close()
	tx, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`CREATE TABLE other (x)`); err != nil {
		t.Fatal(err)
	}
	const hold = 200 * time.Millisecond
	released := time.AfterFunc(hold, func() { tx.Commit() })
	defer released.Stop()
	began := time.Now()
	db, err := Open(path, Options{EnableIndexes: true})
	if err != nil {
		t.Fatalf("open while another connection creates the database: %v", err)
	}
	defer db.Close()
	if waited := time.Since(began); waited < hold/2 {
		t.Errorf("open took %v: it cannot have waited for the lock", waited)
	}
	var n int
	if err := db.SQL().QueryRow(`SELECT count(*) FROM sqlite_master WHERE name IN ('other', 'telemetry')`).Scan(&n); err != nil || n != 2 {
		t.Errorf("tables: %d, %v; want both", n, err)
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
