package rotate

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	_ "github.com/mattn/go-sqlite3"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

// MustOpen opens a fresh writable database in a temporary directory.
func MustOpen(tb testing.TB) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(filepath.Join(tb.TempDir(), "telemetry.db"), sqlite.Options{EnableIndexes: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// baseTs is 2024-11-27T10:40:00Z; row i is i seconds later.
const baseTs = 1732704000000

// commitRows commits rows from..to-1 (their streamData is "row <i>"), and a
// reject for every tenth.
func commitRows(tb testing.TB, db *sqlite.DB, from, to int) {
	tb.Helper()
	var b vibekit.Batch
	for i := from; i < to; i++ {
		b.Records = append(b.Records, vibekit.Record{SessionID: fmt.Sprintf("s%d", i/100), EventType: vibekit.EventStream,
			AgentType: "claude", StreamData: fmt.Sprintf("row %d %s", i, strings.Repeat("x", 200)), Timestamp: baseTs + int64(i)*1000})
		b.RecordSources = append(b.RecordSources, "stdin")
		if i%10 == 0 {
			b.Rejects = append(b.Rejects, vibekit.Reject{Source: "stdin", Line: int64(i), Reason: "test", Raw: "x", Time: baseTs + int64(i)*1000})
		}
	}
	b.Checkpoints = []vibekit.Checkpoint{{Source: "stdin", Kind: "stdin", Offset: int64(to), Line: int64(to)}}
	if _, err := db.Commit(context.Background(), &b); err != nil {
		tb.Fatal(err)
	}
}

// rowsOf returns the row numbers (from streamData) of the telemetry table of
// the database file at path, in id order, and the ids.
func rowsOf(tb testing.TB, path string) (rows []int, ids []int64) {
	tb.Helper()
	conn, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	rs, err := conn.Query(`SELECT id, streamData FROM telemetry ORDER BY id`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rs.Close()
	for rs.Next() {
		var id int64
		var s string
		if err := rs.Scan(&id, &s); err != nil {
			tb.Fatal(err)
		}
		var n int
		fmt.Sscanf(s, "row %d", &n)
		rows = append(rows, n)
		ids = append(ids, id)
	}
	if err := rs.Err(); err != nil {
		tb.Fatal(err)
	}
	return rows, ids
}

// allRows unpacks every archive of the database at dbPath (checking each
// with integrity_check) and returns the row numbers of the archives and the
// live database, archives first in name order.
func allRows(tb testing.TB, dbPath string) (archived, live []int) {
	tb.Helper()
	as, err := List(dbPath)
	if err != nil {
		tb.Fatal(err)
	}
	tmp := tb.TempDir()
	for _, a := range as {
		if _, err := Verify(context.Background(), a.Path, tmp, Limits{}); err != nil {
			tb.Fatalf("archive %s: %v", a.Name, err)
		}
		out, _, err := Unpack(context.Background(), a.Path, tmp, Limits{})
		if err != nil {
			tb.Fatal(err)
		}
		rows, _ := rowsOf(tb, out)
		archived = append(archived, rows...)
	}
	live, _ = rowsOf(tb, dbPath)
	return archived, live
}

// checkExactly fails unless archived + live rows are exactly 0..n-1, once each.
func checkExactly(tb testing.TB, archived, live []int, n int) {
	tb.Helper()
	seen := make([]int, n)
	for _, r := range append(append([]int(nil), archived...), live...) {
		if r < 0 || r >= n {
			tb.Fatalf("row %d was never committed", r)
		}
		seen[r]++
	}
	for r, k := range seen {
		if k != 1 {
			tb.Fatalf("row %d is stored %d times (archived %d, live %d rows)", r, k, len(archived), len(live))
		}
	}
}

func TestSeal(t *testing.T) {
	db := MustOpen(t)
	commitRows(t, db, 0, 500)
	s := &Sealer{DB: db}
	res, err := s.Seal(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Seal.Rows, int64(500); got != want {
		t.Errorf("sealed %d rows, want %d", got, want)
	}
	id, err := db.Identity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantName := "telemetry-20241127T104000.000Z-20241127T104819.000Z-000001-" + id[:8] + ".db.zst"
	if got := filepath.Base(res.Path); got != wantName {
		t.Errorf("archive %s, want %s", got, wantName)
	}
	fi, err := os.Stat(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("archive mode %v, want 0600", got)
	}
	di, _ := os.Stat(Dir(db.Path))
	if got := di.Mode().Perm(); got != 0o700 {
		t.Errorf("archives directory mode %v, want 0700", got)
	}
	// Rows committed after the seal stay live and keep counting up.
	commitRows(t, db, 500, 600)
	archived, live := allRows(t, db.Path)
	checkExactly(t, archived, live, 600)
	if len(live) != 100 {
		t.Errorf("%d live rows, want 100", len(live))
	}
	_, ids := rowsOf(t, db.Path)
	if ids[0] != 501 {
		t.Errorf("first live id %d, want 501 (ids keep growing across seals)", ids[0])
	}
	// The source offsets stay in the live database.
	var off int64
	db.SQL().QueryRow(`SELECT offset FROM vk_sources WHERE name = 'stdin'`).Scan(&off)
	if off != 600 {
		t.Errorf("stdin offset %d, want 600", off)
	}
	// Sealing again takes only the new rows; no temp files are left.
	if _, err := s.Seal(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	archived, live = allRows(t, db.Path)
	checkExactly(t, archived, live, 600)
	if len(live) != 0 {
		t.Errorf("%d live rows after the second seal, want 0", len(live))
	}
	entries, _ := os.ReadDir(Dir(db.Path))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temp file %s left", e.Name())
		}
	}
	// Nothing new: nothing sealed.
	if _, err := s.Seal(context.Background(), 0); !errors.Is(err, ErrNothingToSeal) {
		t.Errorf("third seal: err = %v, want ErrNothingToSeal", err)
	}
}

func TestSeal_BelowLimit(t *testing.T) {
	db := MustOpen(t)
	commitRows(t, db, 0, 10)
	s := &Sealer{DB: db}
	if _, err := s.Seal(context.Background(), 100<<20); !errors.Is(err, ErrNothingToSeal) {
		t.Fatalf("err = %v, want ErrNothingToSeal", err)
	}
}

// MustOpenPath opens the database at path for writing.
func MustOpenPath(tb testing.TB, path string) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(path, sqlite.Options{EnableIndexes: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// TestRecover_NeverSealed: opening a database that was never sealed does
// not create its archives directory.
func TestRecover_NeverSealed(t *testing.T) {
	db := MustOpen(t)
	r := New(db, Options{MaxBytes: 100 << 20, PruneAge: 24 * time.Hour})
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, err := os.Stat(Dir(db.Path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the archives directory was created: %v", err)
	}
}

// TestSeal_VerifyCatchesAlteredArchive: an archive that does not unpack to
// the pinned database it was made from is not kept: the seal rolls back,
// no archive is left, and every row stays live. The archive is altered on
// disk after its rename, as a bad disk or a bug would: damaged bytes, and a
// well-formed archive (good frames, right size) of a database that differs
// by one byte.
func TestSeal_VerifyCatchesAlteredArchive(t *testing.T) {
	// repack replaces the archive with one of its database changed by edit.
	repack := func(t *testing.T, archive string, edit func([]byte)) {
		image, _, err := Unpack(context.Background(), archive, t.TempDir(), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(image)
		if err != nil {
			t.Fatal(err)
		}
		edit(b)
		other := filepath.Join(t.TempDir(), "other.db")
		os.WriteFile(other, b, 0o600)
		m, _ := ReadMeta(archive)
		os.Remove(archive)
		if _, _, err := pack(context.Background(), other, archive, m, zstd.SpeedDefault, 1); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name  string
		alter func(t *testing.T, archive string)
	}{
		{"damaged", func(t *testing.T, archive string) {
			b, _ := os.ReadFile(archive)
			for i := len(b) / 2; i < len(b)/2+16; i++ {
				b[i] ^= 0xff
			}
			os.WriteFile(archive, b, 0o600)
		}},
		{"another database", func(t *testing.T, archive string) {
			repack(t, archive, func(b []byte) {
				i := bytes.Index(b, []byte("row 123 "))
				b[i+4] = '9' // row 923: still a sound database
			})
		}},
		{"frames out of order", func(t *testing.T, archive string) {
			// The same frames, each sound, the second and third swapped:
			// the same size, and every frame's checksum right.
			repack(t, archive, func(b []byte) {
				if len(b) <= 3*frameSize {
					t.Fatalf("a database of %d bytes: too small for three frames", len(b))
				}
				a := append([]byte(nil), b[frameSize:2*frameSize]...)
				copy(b[frameSize:], b[2*frameSize:3*frameSize])
				copy(b[2*frameSize:], a)
			})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := MustOpen(t)
			const n = 40000 // over three frames
			for i := 0; i < n; i += 5000 {
				commitRows(t, db, i, i+5000)
			}
			s := &Sealer{DB: db, Hook: func(st Step) {
				if st == StepRenamed {
					as, _ := List(db.Path)
					c.alter(t, as[0].Path)
				}
			}}
			_, err := s.Seal(context.Background(), 0)
			if err == nil || !strings.Contains(err.Error(), "verify") {
				t.Fatalf("seal of an altered archive: err = %v, want a verify error", err)
			}
			if as, _ := List(db.Path); len(as) != 0 {
				t.Errorf("archives left: %v", as)
			}
			archived, live := allRows(t, db.Path)
			checkExactly(t, archived, live, n)
			if seals, _ := db.Seals(context.Background()); len(seals) != 0 {
				t.Errorf("seals recorded: %+v", seals)
			}
		})
	}
}

// TestSeal_ReadersSeeEveryRowOnce: at each step of a seal, including while
// the sealed rows are in the sealing table and in no archive yet, reading
// the database with its archives (Scan, as dump --archives does, and Merge,
// as stats and query do) gives every committed row once, in order; rows
// committed after the switch included.
func TestSeal_ReadersSeeEveryRowOnce(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	commitRows(t, db, 0, 300)
	n := 300
	check := func(st Step) {
		t.Helper()
		var got []int
		err := Scan(ctx, db.Path, vibekit.Filter{}, ReadOptions{TempDir: t.TempDir()}, func(r *vibekit.Record) error {
			var i int
			fmt.Sscanf(r.StreamData, "row %d", &i)
			got = append(got, i)
			return nil
		})
		if err != nil {
			t.Fatalf("scan at %s: %v", st, err)
		}
		if len(got) != n {
			t.Fatalf("scan at %s: %d rows, want %d", st, len(got), n)
		}
		for i, r := range got {
			if r != i {
				t.Fatalf("scan at %s: row %d is row %d", st, i, r)
			}
		}
		m, err := Merge(ctx, db.Path, vibekit.Filter{}, MergeOptions{ReadOptions: ReadOptions{TempDir: t.TempDir()}})
		if err != nil {
			t.Fatalf("merge at %s: %v", st, err)
		}
		defer m.Remove()
		rows, _ := rowsOf(t, m.Path)
		if len(rows) != n || m.Rows != int64(n) {
			t.Fatalf("merge at %s: %d rows (reported %d), want %d", st, len(rows), m.Rows, n)
		}
	}
	var steps []Step
	s := &Sealer{DB: db, Hook: func(st Step) {
		steps = append(steps, st)
		check(st)
		if st == StepSwitched || st == StepRenamed {
			commitRows(t, db, n, n+20) // into the fresh table
			n += 20
			check(st)
		}
	}}
	if _, err := s.Seal(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if len(steps) != len(Steps) {
		t.Errorf("steps %v, want %v", steps, Steps)
	}
	check("after")
}

// TestSeal_ReadersDuringSealOverlap: rows committed during a seal whose
// times fall among the sealed rows' are read with them, merged in time
// order, every one once; the reader does not wait on itself (the live and
// the sealing rows come from one connection).
func TestSeal_ReadersDuringSealOverlap(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	commitAt := func(from, to int, ts func(i int) int64) {
		t.Helper()
		var b vibekit.Batch
		for i := from; i < to; i++ {
			b.Records = append(b.Records, vibekit.Record{SessionID: "s", EventType: vibekit.EventStream,
				StreamData: fmt.Sprintf("row %d %s", i, strings.Repeat("x", 200)), Timestamp: ts(i)})
			b.RecordSources = append(b.RecordSources, "stdin")
		}
		if _, err := db.Commit(ctx, &b); err != nil {
			t.Fatal(err)
		}
	}
	const n = 3000
	commitAt(0, n, func(i int) int64 { return baseTs + int64(i)*2000 })
	var checked bool
	s := &Sealer{DB: db, Hook: func(st Step) {
		if st != StepSwitched {
			return
		}
		commitAt(n, 2*n, func(i int) int64 { return baseTs + int64(i-n)*2000 + 1000 }) // between the sealed rows
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		var got []int64
		err := Scan(sctx, db.Path, vibekit.Filter{}, ReadOptions{TempDir: t.TempDir()}, func(r *vibekit.Record) error {
			got = append(got, r.Timestamp)
			return nil
		})
		if err != nil {
			t.Fatalf("scan during the seal: %v", err)
		}
		if len(got) != 2*n {
			t.Fatalf("scan during the seal: %d rows, want %d", len(got), 2*n)
		}
		for i, ts := range got {
			if ts != baseTs+int64(i)*1000 {
				t.Fatalf("scan during the seal: row %d at %d, want %d", i, ts, baseTs+int64(i)*1000)
			}
		}
		checked = true
	}}
	if _, err := s.Seal(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if !checked {
		t.Fatal("the seal never reached its switch")
	}
}
