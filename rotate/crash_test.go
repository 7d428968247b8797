package rotate

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/vibekit/vibekit-pipe/sqlite"
)

// The crash tests run this test binary as a child that seals a database
// and is killed (SIGKILL) at one step of the seal.
const (
	childDBEnv   = "ROTATE_TEST_CHILD_DB"
	childStepEnv = "ROTATE_TEST_CHILD_KILL_AT"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(childDBEnv); path != "" {
		os.Exit(sealChild(path, Step(os.Getenv(childStepEnv))))
	}
	os.Exit(m.Run())
}

// sealChild seals the database at path and kills itself at step.
func sealChild(path string, step Step) int {
	db, err := sqlite.Open(path, sqlite.Options{EnableIndexes: true})
	if err != nil {
		os.Stderr.WriteString(err.Error())
		return 3
	}
	s := &Sealer{DB: db, Hook: func(st Step) {
		if st == step {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}}
	if _, err := s.Seal(context.Background(), 0); err != nil {
		os.Stderr.WriteString(err.Error())
		return 4
	}
	return 0 // not killed: the step was not reached
}

// killSealAt runs a child that seals the database at path and is killed at step.
func killSealAt(t *testing.T, path string, step Step) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDBEnv+"="+path, childStepEnv+"="+string(step))
	out, err := cmd.CombinedOutput()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed at %s: %v\n%s", step, err, out)
	}
}

// TestSeal_KilledAtEachStep kills a sealing process at each step, then
// opens the database again as the next vibekit-pipe would: the half-done
// seal is finished or rolled back, and live rows + archived rows are
// exactly the rows committed, each archive passes integrity_check, no temp
// file is left, and sealing works again.
func TestSeal_KilledAtEachStep(t *testing.T) {
	for _, step := range Steps {
		t.Run(string(step), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "telemetry.db")
			db, err := sqlite.Open(path, sqlite.Options{EnableIndexes: true})
			if err != nil {
				t.Fatal(err)
			}
			commitRows(t, db, 0, 300)
			db.Close()

			killSealAt(t, path, step)

			db, err = sqlite.Open(path, sqlite.Options{EnableIndexes: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			s := &Sealer{DB: db}
			if err := s.Recover(context.Background()); err != nil {
				t.Fatal(err)
			}
			archived, live := allRows(t, path)
			checkExactly(t, archived, live, 300)
			// Before the archive has its name the seal rolls back; after,
			// it is finished.
			finished := step == StepRenamed || step == StepVerified || step == StepFinished
			if got, want := len(archived), map[bool]int{true: 300, false: 0}[finished]; got != want {
				t.Errorf("%d rows archived after a kill at %s, want %d", got, step, want)
			}
			seals, _ := db.Seals(context.Background())
			for _, se := range seals {
				if se.State != sqlite.SealDone {
					t.Errorf("seal %d left %s", se.ID, se.State)
				}
			}
			assertNoTempFiles(t, Dir(path))

			commitRows(t, db, 300, 400)
			if _, err := s.Seal(context.Background(), 0); err != nil {
				t.Fatal(err)
			}
			archived, live = allRows(t, path)
			checkExactly(t, archived, live, 400)
		})
	}
}

// TestRecover_BadPendingArchive: a crash after the rename, and the archive
// then damaged: the seal is rolled back, the archive removed, the rows kept.
func TestRecover_BadPendingArchive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "telemetry.db")
	db, err := sqlite.Open(path, sqlite.Options{EnableIndexes: true})
	if err != nil {
		t.Fatal(err)
	}
	commitRows(t, db, 0, 300)
	db.Close()
	killSealAt(t, path, StepRenamed)
	as, _ := List(path)
	if len(as) != 1 {
		t.Fatalf("%d archives, want 1", len(as))
	}
	truncate(t, as[0].Path)

	db, err = sqlite.Open(path, sqlite.Options{EnableIndexes: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := (&Sealer{DB: db}).Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if as, _ := List(path); len(as) != 0 {
		t.Fatalf("the damaged pending archive was kept: %v", as)
	}
	archived, live := allRows(t, path)
	checkExactly(t, archived, live, 300)
	if len(live) != 300 {
		t.Errorf("%d live rows, want all 300", len(live))
	}
}

func truncate(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temp file %s left in %s", e.Name(), dir)
		}
	}
}

// TestSeal_TwoSealers: while one sealer holds the lock, another seals
// nothing; and a second seal of the same rows finds nothing to do.
func TestSeal_TwoSealers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "telemetry.db")
	open := func() *sqlite.DB {
		db, err := sqlite.Open(path, sqlite.Options{EnableIndexes: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	commitRows(t, a, 0, 200)
	sa, sb := &Sealer{DB: a}, &Sealer{DB: b}
	var inner error
	sa.Hook = func(st Step) {
		if st == StepSwitched {
			_, inner = sb.Seal(context.Background(), 0)
		}
	}
	if _, err := sa.Seal(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if inner != ErrLocked {
		t.Errorf("second sealer during the first: err = %v, want ErrLocked", inner)
	}
	// The second process saw the database over its limit before the first
	// sealed it; under the lock it finds nothing left to seal.
	if _, err := sb.Seal(context.Background(), 1); err != ErrNothingToSeal {
		t.Errorf("seal after the first: err = %v, want ErrNothingToSeal", err)
	}
	as, _ := List(path)
	if len(as) != 1 {
		t.Errorf("%d archives, want 1", len(as))
	}
	archived, live := allRows(t, path)
	checkExactly(t, archived, live, 200)
}

// TestRecover_PendingSealOfAnEarlierVersion: a seal recorded pending by a
// version that deleted the sealed rows only in its last step has them all
// in the telemetry table, no sealing table, and perhaps a complete archive:
// it is rolled back (archive removed, rows live), and sealing works after.
func TestRecover_PendingSealOfAnEarlierVersion(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	commitRows(t, db, 0, 300)
	c, err := db.Contents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(t.TempDir(), "snap.db")
	if _, err := db.SQL().Exec(`VACUUM INTO ?`, snap); err != nil {
		t.Fatal(err)
	}
	id, err := db.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	name := Name(db.Path, id, c.MinTs, c.MaxTs, 1)
	os.MkdirAll(Dir(db.Path), 0o700)
	if _, _, err := pack(ctx, snap, filepath.Join(Dir(db.Path), name), Meta{DBID: id, Seal: 1, Rows: c.Rows, MaxID: c.MaxID}, zstd.SpeedDefault, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().Exec(`INSERT INTO vk_seals (id, archive, state, max_id, max_reject_id, rows, rejects, min_ts, max_ts, bytes, started, pid)
		VALUES (1, ?, 'pending', ?, ?, ?, ?, ?, ?, 1, 1, 1)`, name, c.MaxID, c.MaxRejectID, c.Rows, c.Rejects, c.MinTs, c.MaxTs); err != nil {
		t.Fatal(err)
	}
	s := &Sealer{DB: db}
	if err := s.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	assertRolledBack(t, db, 300)
	if _, err := s.Seal(ctx, 0); err != nil {
		t.Fatal(err)
	}
	archived, live := allRows(t, db.Path)
	checkExactly(t, archived, live, 300)
}

// TestRecover_SwitchedBeforeNamed: a crash between the switch and the
// naming of its archive leaves a pending seal with no archive name and the
// rows in the sealing table: recovery puts them back and forgets the seal.
func TestRecover_SwitchedBeforeNamed(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	commitRows(t, db, 0, 300)
	seal, pin, err := db.Switch(ctx, func(int64, sqlite.Contents) string { return "a" })
	if err != nil {
		t.Fatal(err)
	}
	pin.Close()
	if _, err := db.SQL().Exec(`UPDATE vk_seals SET archive = '', rows = 0`); err != nil {
		t.Fatal(err)
	}
	// A power loss can keep the archive and lose the name: the archive of
	// that seal number goes too; another database's of that number stays.
	id, err := db.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(Dir(db.Path), 0o700)
	orphan := filepath.Join(Dir(db.Path), Name(db.Path, id, baseTs, baseTs+299_000, seal.ID))
	if err := os.WriteFile(orphan, appendMeta(nil, Meta{DBID: id, Seal: seal.ID}), 0o600); err != nil {
		t.Fatal(err)
	}
	other := strings.Repeat("ab", 16)
	theirs := filepath.Join(Dir(db.Path), Name(db.Path, other, baseTs, baseTs+299_000, seal.ID))
	if err := os.WriteFile(theirs, appendMeta(nil, Meta{DBID: other, Seal: seal.ID}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := (&Sealer{DB: db}).Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(theirs); err != nil {
		t.Errorf("another database's archive with the seal's number was removed: %v", err)
	}
	os.Remove(theirs)
	assertRolledBack(t, db, 300)
	if fi, err := os.Stat(Dir(db.Path)); err != nil || !fi.IsDir() {
		t.Errorf("the archives directory is gone: %v", err)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("the archive of the unnamed seal is left: %v", err)
	}
}

// assertRolledBack checks that recovery rolled a seal back: the n rows all
// live, none archived, no seal recorded.
func assertRolledBack(t *testing.T, db *sqlite.DB, n int) {
	t.Helper()
	archived, live := allRows(t, db.Path)
	if len(archived) != 0 || len(live) != n {
		t.Errorf("after recovery: %d archived, %d live rows; want 0 and %d", len(archived), len(live), n)
	}
	if seals, err := db.Seals(context.Background()); err != nil || len(seals) != 0 {
		t.Errorf("seals left: %+v, %v", seals, err)
	}
}
