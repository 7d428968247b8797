package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

func TestMerged_Copy(t *testing.T) {
	ctx := context.Background()
	a, b := MustOpen(t), MustOpen(t)
	recs := fixture()
	MustCommit(t, a, recs[:5])
	bat := &vibekit.Batch{Records: recs, RecordSources: []string{"x", "x", "x", "x", "x", "f", "f"}}
	if _, err := b.Commit(ctx, bat); err != nil {
		t.Fatal(err)
	}
	m, err := CreateMerged(ctx, filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	// a holds ids 1-5 and b ids 1-7 of the same rows.
	if n, err := m.Copy(ctx, a.Path, vibekit.Filter{}, CopyOptions{}); err != nil || n != 5 {
		t.Fatalf("copy a: %d, %v; want 5", n, err)
	}
	// Filters apply as on the database itself, the source filter too (its
	// tables are the attached file's).
	if n, err := m.Copy(ctx, b.Path, vibekit.Filter{Sources: []string{"f"}}, CopyOptions{}); err != nil || n != 2 {
		t.Fatalf("copy b's rows from f: %d, %v; want 2", n, err)
	}
	// A repeated id is refused, not hidden: no row may vanish from a
	// count because another with its id was merged first.
	if n, err := m.Copy(ctx, b.Path, vibekit.Filter{}, CopyOptions{}); !errors.Is(err, ErrRepeatedIDs) || !strings.Contains(err.Error(), "put back from a copy") {
		t.Fatalf("copy b again: %d rows, %v; want the repeated ids refused, saying what may have happened", n, err)
	}
	// Want marks the sessions with a row in the range; Wanted then copies
	// their rows only.
	if n, err := m.Want(ctx, t0.Add(10*time.Second), t0.Add(10*time.Second)); err != nil || n != 1 {
		t.Fatalf("want: %d, %v; want 1 session (s2)", n, err)
	}
	c := MustOpen(t)
	MustCommit(t, c, fixture()[:1]) // id 1, of s1
	if _, err := c.SQL().Exec(`UPDATE sqlite_sequence SET seq = 7 WHERE name = 'telemetry'`); err != nil {
		t.Fatal(err)
	}
	recs[5].SessionID = "s2"
	MustCommit(t, c, recs[5:6]) // id 8, of s2
	m2, err := CreateMerged(ctx, filepath.Join(t.TempDir(), "m2.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if _, err := m2.Copy(ctx, b.Path, vibekit.Filter{SessionIDs: []string{"s2"}}, CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Want(ctx, t0.Add(10*time.Second), t0.Add(11*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := m2.Copy(ctx, c.Path, vibekit.Filter{}, CopyOptions{Wanted: true}); err != nil || n != 1 {
		t.Fatalf("copy the wanted rows of c: %d, %v; want 1 (id 8, of s2; id 1 is s1's)", n, err)
	}
	m.Close()
	got, err := OpenReadOnly(m.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	evs, err := got.GetEvents(ctx, vibekit.Filter{})
	if err != nil || len(evs) != 7 {
		t.Fatalf("merged %d rows, %v; want 7", len(evs), err)
	}
	for i, e := range evs {
		if e.ID != int64(i+1) || e.SessionID != fixture()[i].SessionID {
			t.Errorf("row %d: %+v", i, e)
		}
	}

	// NoText leaves prompt and streamData out, and filters on them all the same.
	m4, err := CreateMerged(ctx, filepath.Join(t.TempDir(), "m4.db"))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := m4.Copy(ctx, b.Path, vibekit.Filter{Contains: "rate limit"}, CopyOptions{NoText: true}); err != nil || n != 1 {
		t.Fatalf("copy without text: %d, %v; want the 1 row with the text", n, err)
	}
	m4.Close()
	lean, err := OpenReadOnly(m4.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer lean.Close()
	evs, err = lean.GetEvents(ctx, vibekit.Filter{})
	if err != nil || len(evs) != 1 || evs[0].Prompt != "" || evs[0].StreamData != "" || evs[0].SessionID != "s2" || evs[0].EventType != vibekit.EventError ||
		string(evs[0].Metadata) != `{"userId":"u1"}` {
		t.Errorf("copied without text: %+v, %v", evs, err)
	}

	// A file from a newer version is refused.
	if _, err := c.SQL().Exec(`PRAGMA user_version = 999`); err != nil {
		t.Fatal(err)
	}
	m3, err := CreateMerged(ctx, filepath.Join(t.TempDir(), "m3.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer m3.Close()
	if _, err := m3.Copy(ctx, c.Path, vibekit.Filter{}, CopyOptions{}); !errors.Is(err, vibekit.ErrSchemaTooNew) {
		t.Errorf("copy from a newer file: %v, want ErrSchemaTooNew", err)
	}
}

// DropUpTo deletes the merged rows up to an id, and only those.
func TestMerged_DropUpTo(t *testing.T) {
	ctx := context.Background()
	a := MustOpen(t)
	MustCommit(t, a, fixture())
	m, err := CreateMerged(ctx, filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if n, err := m.Copy(ctx, a.Path, vibekit.Filter{}, CopyOptions{}); err != nil || n != 7 {
		t.Fatalf("copy: %d, %v; want 7", n, err)
	}
	if n, err := m.DropUpTo(ctx, 3); err != nil || n != 3 {
		t.Fatalf("drop up to 3: %d, %v; want 3", n, err)
	}
	var lo, count int64
	if err := m.conn.QueryRowContext(ctx, `SELECT min(id), count(*) FROM main.telemetry`).Scan(&lo, &count); err != nil || lo != 4 || count != 4 {
		t.Errorf("left ids from %d, %d rows, %v; want 4 rows from id 4", lo, count, err)
	}
}
