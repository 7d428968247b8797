package rotate

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/vibekit/vibekit-pipe/sqlite"
)

// posixLocks counts the POSIX record locks this process holds on the file
// at path, from /proc/locks.
func posixLocks(t *testing.T, path string) int {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	id := fmt.Sprintf("%02x:%02x:%d", (st.Dev>>8)&0xfff, st.Dev&0xff, st.Ino)
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[1] == "POSIX" && f[4] == fmt.Sprint(os.Getpid()) && f[5] == id {
			n++
		}
	}
	return n
}

// TestSeal_KeepsTheLocks: SQLite's locks on the database file are POSIX
// record locks, which closing any descriptor of the file drops for the
// whole process; a seal reads the file's pages, and opening the database a
// second time in the process creates nothing: the process's locks are
// still there afterwards, so another process cannot take it for the last
// user and checkpoint or delete the WAL under it.
func TestSeal_KeepsTheLocks(t *testing.T) {
	db := MustOpen(t)
	commitRows(t, db, 0, 300)
	before := posixLocks(t, db.Path)
	if before == 0 {
		t.Fatal("no POSIX lock on the database file to begin with: the test cannot see what it checks")
	}
	if _, err := (&Sealer{DB: db}).Seal(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if got := posixLocks(t, db.Path); got != before {
		t.Errorf("%d POSIX locks on the database file after a seal, %d before", got, before)
	}
	other, err := sqlite.Open(db.Path, sqlite.Options{EnableIndexes: true})
	if err != nil {
		t.Fatal(err)
	}
	ro, err := sqlite.OpenReadOnly(db.Path)
	if err != nil {
		t.Fatal(err)
	}
	ro.Close()
	other.Close()
	if got := posixLocks(t, db.Path); got != before {
		t.Errorf("%d POSIX locks on the database file after opening and closing it again, %d before", got, before)
	}
}
