package rotate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

// commitAgentRows commits n rows of agent, row i at baseTs + i s: two
// databases given the same n seal archives of the same time range.
func commitAgentRows(tb testing.TB, db *sqlite.DB, agent string, n int) {
	tb.Helper()
	var b vibekit.Batch
	for i := range n {
		b.Records = append(b.Records, vibekit.Record{SessionID: agent, EventType: vibekit.EventStream, AgentType: agent,
			StreamData: fmt.Sprintf("row %d", i), Timestamp: baseTs + int64(i)*1000})
		b.RecordSources = append(b.RecordSources, "stdin")
	}
	if _, err := db.Commit(context.Background(), &b); err != nil {
		tb.Fatal(err)
	}
}

// agentsRead scans the database at dbPath and its archives and counts the
// rows by agent; foreign collects what OnForeign heard.
func agentsRead(t *testing.T, dbPath string) (agents map[string]int, foreign []error) {
	t.Helper()
	agents = map[string]int{}
	o := ReadOptions{TempDir: t.TempDir(), OnForeign: func(err error) { foreign = append(foreign, err) }}
	err := Scan(context.Background(), dbPath, vibekit.Filter{}, o, func(r *vibekit.Record) error {
		agents[r.AgentType]++
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", dbPath, err)
	}
	return agents, foreign
}

func mustSeal(t *testing.T, db *sqlite.DB) Result {
	t.Helper()
	res, err := (&Sealer{DB: db}).Seal(context.Background(), 0)
	if err != nil {
		t.Fatalf("seal %s: %v", db.Path, err)
	}
	return res
}

// Two databases in one directory whose names differ only in extension
// (they once shared a name stem, and so archive names) keep their archives
// apart: each reads back its own rows, and only those.
func TestArchives_TwoDatabasesOneDirectory(t *testing.T) {
	dir := t.TempDir()
	a := MustOpenPath(t, filepath.Join(dir, "t.db"))
	b := MustOpenPath(t, filepath.Join(dir, "t.sqlite"))
	commitAgentRows(t, a, "a", 100)
	mustSeal(t, a)
	commitAgentRows(t, b, "b", 100)
	mustSeal(t, b)

	if Dir(a.Path) == Dir(b.Path) {
		t.Fatalf("both databases keep their archives in %s", Dir(a.Path))
	}
	for _, c := range []struct {
		db    *sqlite.DB
		agent string
	}{{a, "a"}, {b, "b"}} {
		got, foreign := agentsRead(t, c.db.Path)
		if len(got) != 1 || got[c.agent] != 100 || len(foreign) != 0 {
			t.Errorf("%s reads %v (foreign: %v); want its own 100 rows of %s", c.db.Path, got, foreign, c.agent)
		}
	}
}

// A database deleted and created again beside its old archives gets a new
// identity; its seals never replace the old archives; readers leave the old
// ones out and say so; stats' merge counts what the scan shows; neither
// retention nor recovery deletes another database's archive.
func TestArchives_RecreatedDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "telemetry.db")
	old, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	commitAgentRows(t, old, "old", 100)
	oldRes := mustSeal(t, old)
	oldID, _ := old.Identity(ctx)
	old.Close()
	oldBytes, err := os.ReadFile(oldRes.Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}

	db := MustOpenPath(t, path)
	newID, err := db.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if newID == oldID {
		t.Fatalf("the database created again has the old identity %s", oldID)
	}
	commitAgentRows(t, db, "new", 100) // the same times: once the same archive name
	newRes := mustSeal(t, db)
	commitAgentRows(t, db, "new", 10)
	if newRes.Path == oldRes.Path {
		t.Fatalf("the new seal took the old archive's name %s", oldRes.Path)
	}
	if b, err := os.ReadFile(oldRes.Path); err != nil || !bytes.Equal(b, oldBytes) {
		t.Fatalf("the old archive %s was replaced or removed (%v)", oldRes.Path, err)
	}

	got, foreign := agentsRead(t, path)
	if len(got) != 1 || got["new"] != 110 {
		t.Errorf("the database created again reads %v, want its own 110 rows only", got)
	}
	if len(foreign) != 1 || !errors.Is(foreign[0], ErrForeign) || !strings.Contains(foreign[0].Error(), oldRes.Path) {
		t.Errorf("reported foreign archives %v, want one naming %s", foreign, oldRes.Path)
	}
	err = Scan(ctx, path, vibekit.Filter{}, ReadOptions{TempDir: t.TempDir()}, func(*vibekit.Record) error { return nil })
	if !errors.Is(err, ErrForeign) {
		t.Errorf("scan without OnForeign: err = %v, want ErrForeign", err)
	}

	for _, whole := range []bool{false, true} {
		var heard int
		o := MergeOptions{ReadOptions: ReadOptions{TempDir: t.TempDir(), OnForeign: func(error) { heard++ }}, WholeSessions: whole}
		m, err := Merge(ctx, path, vibekit.Filter{From: time.UnixMilli(baseTs)}, o)
		if err != nil {
			t.Fatal(err)
		}
		rows, _ := rowsOf(t, m.Path)
		m.Remove()
		if len(rows) != 110 || m.Rows != 110 || heard != 1 {
			t.Errorf("merge (whole sessions %v): %d rows (reported %d), %d foreign; want 110, 110, 1", whole, len(rows), m.Rows, heard)
		}
	}

	as, err := Owned(path, newID)
	if err != nil || len(as) != 2 {
		t.Fatalf("owned: %v, %v", as, err)
	}
	for _, a := range as {
		if isOld := a.Path == oldRes.Path; isOld != errors.Is(a.Err, ErrForeign) {
			t.Errorf("%s: Err = %v", a.Name, a.Err)
		}
	}

	s := &Sealer{DB: db}
	now := time.Now()
	res, err := s.Prune(ctx, now.Add(time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Archives) != 1 || res.Archives[0] != filepath.Base(newRes.Path) {
		t.Errorf("pruned %v, want the new database's archive only", res.Archives)
	}
	if _, err := os.Stat(oldRes.Path); err != nil {
		t.Errorf("retention deleted another database's archive: %v", err)
	}
}

// A seal never replaces a file that has its archive's name: it fails with
// ErrArchiveExists, the file is untouched, the rows stay live, and the next
// seal picks another name.
func TestSeal_NeverReplacesAFile(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	commitRows(t, db, 0, 100)
	id, err := db.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(Dir(db.Path), Name(db.Path, id, baseTs, baseTs+99_000, 1))
	if err := os.Mkdir(Dir(db.Path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(planted, []byte("not yours to replace"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Sealer{DB: db}
	if _, err := s.Seal(ctx, 0); !errors.Is(err, ErrArchiveExists) {
		t.Fatalf("seal onto an existing name: err = %v, want ErrArchiveExists", err)
	}
	if b, err := os.ReadFile(planted); err != nil || string(b) != "not yours to replace" {
		t.Fatalf("the file with the archive's name was replaced or removed: %q, %v", b, err)
	}
	if rows, _ := rowsOf(t, db.Path); len(rows) != 100 {
		t.Fatalf("%d live rows after the failed seal, want 100", len(rows))
	}
	if seals, err := db.Seals(ctx); err != nil || len(seals) != 0 {
		t.Errorf("seals left after the failed seal: %+v, %v", seals, err)
	}
	res, err := s.Seal(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Path == planted || res.Seal.Rows != 100 {
		t.Errorf("second seal: %s with %d rows; want another name and 100 rows", res.Path, res.Seal.Rows)
	}
}

// The archives directory is refused, with its path and the reason, when it
// is a symlink, not a directory, open to others or another user's; nothing
// is sealed into it and every row stays live.
func TestArchivesDir_Unsafe(t *testing.T) {
	for _, c := range []struct {
		name  string
		plant func(t *testing.T, dir string)
		why   string
	}{
		{"symlink", func(t *testing.T, dir string) {
			target := t.TempDir()
			os.Chmod(target, 0o700)
			if err := os.Symlink(target, dir); err != nil {
				t.Fatal(err)
			}
		}, "symlink"},
		{"file", func(t *testing.T, dir string) {
			if err := os.WriteFile(dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a directory"},
		{"open to others", func(t *testing.T, dir string) {
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			os.Chmod(dir, 0o755) // past the umask
		}, "open to group or others"},
		{"another user's", func(t *testing.T, dir string) {
			if os.Getuid() != 0 {
				t.Skip("needs root to create a directory owned by another user")
			}
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "owned by uid 65534"},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := MustOpen(t)
			commitRows(t, db, 0, 100)
			dir := Dir(db.Path)
			c.plant(t, dir)
			_, err := (&Sealer{DB: db}).Seal(context.Background(), 0)
			if !errors.Is(err, ErrUnsafeDir) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), c.why) {
				t.Errorf("seal: err = %v, want ErrUnsafeDir naming %s and %q", err, dir, c.why)
			}
			if _, err := List(db.Path); !errors.Is(err, ErrUnsafeDir) {
				t.Errorf("list: err = %v, want ErrUnsafeDir", err)
			}
			if rows, _ := rowsOf(t, db.Path); len(rows) != 100 {
				t.Errorf("%d live rows, want 100", len(rows))
			}
		})
	}
}

// An archive is pruned once it was sealed before the cut-off, whatever
// the timestamps of its rows: one row dated in the year 3000 does not keep
// it for ever.
func TestPrune_BySealTime(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	commitRows(t, db, 0, 99)
	future := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	b := &vibekit.Batch{Records: []vibekit.Record{{SessionID: "s", EventType: vibekit.EventStream, AgentType: "claude", Timestamp: future}},
		RecordSources: []string{"stdin"}}
	if _, err := db.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	s := &Sealer{DB: db}
	sealed := mustSeal(t, db).Seal.Started
	now := time.Now()

	res, err := s.Prune(ctx, sealed.Add(-time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Archives) != 0 {
		t.Fatalf("pruned %v with a cut-off before the seal, want nothing", res.Archives)
	}
	res, err = s.Prune(ctx, sealed.Add(time.Millisecond), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Archives) != 1 || res.ArchiveRows != 100 {
		t.Errorf("pruned %v (%d rows) with a cut-off after the seal, want its archive of 100 rows", res.Archives, res.ArchiveRows)
	}
	if as, _ := List(db.Path); len(as) != 0 {
		t.Errorf("archives left: %v", as)
	}
}

// Archives of earlier versions carry no identity: those left in the shared
// archives/ directory, and one moved into the database's own directory, are
// named to OnForeign and never read.
func TestArchives_EarlierVersions(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	commitRows(t, db, 0, 100)
	snap := filepath.Join(t.TempDir(), "snap.db")
	if _, err := db.SQL().Exec(`VACUUM INTO ?`, snap); err != nil {
		t.Fatal(err)
	}
	shared := filepath.Join(filepath.Dir(db.Path), LegacyDir)
	moved := filepath.Join(Dir(db.Path), "telemetry-20241127T104000.000Z-20241127T104139.000Z-000001.db.zst")
	left := filepath.Join(shared, "telemetry-20241127T104000.000Z-20241127T104139.000Z-000002.db.zst")
	for _, p := range []string{moved, left} {
		os.MkdirAll(filepath.Dir(p), 0o700)
		if _, _, err := pack(ctx, snap, p, Meta{Seal: 1, Rows: 100, MaxID: 100}, zstd.SpeedDefault, 1); err != nil {
			t.Fatal(err)
		}
	}
	// Another database's, by its name, in the shared directory: not named.
	os.WriteFile(filepath.Join(shared, "other-20241127T104000.000Z-20241127T104139.000Z-000001.db.zst"), nil, 0o600)
	if _, err := db.SQL().Exec(`DELETE FROM telemetry`); err != nil {
		t.Fatal(err)
	}
	commitRows(t, db, 100, 110)

	got, foreign := agentsRead(t, db.Path)
	if got["claude"] != 10 {
		t.Errorf("read %v, want the 10 live rows only", got)
	}
	var named []string
	for _, err := range foreign {
		if !errors.Is(err, ErrForeign) {
			t.Errorf("reported %v, want ErrForeign", err)
		}
		named = append(named, err.Error())
	}
	joined := strings.Join(named, "\n")
	if len(foreign) != 2 || !strings.Contains(joined, moved) || !strings.Contains(joined, left) ||
		!strings.Contains(joined, "before archives carried their database's identity") || !strings.Contains(joined, "shared archives/ directory") {
		t.Errorf("reported:\n%s\nwant %s and %s, each with why", joined, moved, left)
	}
}

// A background seal that meets a file with its archive's name is rolled
// back, counted in Stats.Failed and reported to OnError.
func TestRotator_SealOntoAnExistingName(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	commitRows(t, db, 0, 100)
	id, err := db.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(Dir(db.Path), Name(db.Path, id, baseTs, baseTs+99_000, 1))
	os.Mkdir(Dir(db.Path), 0o700)
	if err := os.WriteFile(planted, []byte("planted"), 0o600); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	r := New(db, Options{MaxBytes: 1, OnError: func(err error) { errs <- err }})
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r.AfterCommit()
	waitFor(t, "the failed seal", func() bool { return r.Stats().Failed == 1 })
	r.Close()
	select {
	case err := <-errs:
		if !errors.Is(err, ErrArchiveExists) || !strings.Contains(err.Error(), planted) {
			t.Errorf("reported %v, want ErrArchiveExists naming %s", err, planted)
		}
	default:
		t.Error("the failed seal was not reported")
	}
	if b, _ := os.ReadFile(planted); string(b) != "planted" {
		t.Errorf("the planted file now holds %q", b)
	}
}
