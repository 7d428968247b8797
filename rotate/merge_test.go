package rotate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

// merged merges dbPath's rows that f selects and returns the merged
// database, open read-only, and what Merge reported.
func merged(t *testing.T, dbPath string, f vibekit.Filter, o MergeOptions) (*sqlite.DB, *Merged) {
	t.Helper()
	m, err := Merge(context.Background(), dbPath, f, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Remove() })
	db, err := sqlite.OpenReadOnly(m.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, m
}

func TestMerge(t *testing.T) {
	dbPath, as := sealedTwice(t)
	o := MergeOptions{ReadOptions: ReadOptions{TempDir: t.TempDir()}}

	db, m := merged(t, dbPath, vibekit.Filter{}, o)
	rows, ids := rowsOf(t, m.Path)
	if len(rows) != 300 || m.Rows != 300 || m.Archives != 2 {
		t.Fatalf("merged %d rows (reported %d) from %d archives, want 300 from 2", len(rows), m.Rows, m.Archives)
	}
	for i := range rows {
		if rows[i] != i || ids[i] != int64(i+1) {
			t.Fatalf("row %d is row %d with id %d: not the rows as committed", i, rows[i], ids[i])
		}
	}
	// The same table as the live database's, so that any SQL runs on it.
	want, _ := tableInfo(t, dbPath)
	if got, _ := tableInfo(t, m.Path); got != want {
		t.Errorf("merged table:\n%s\nwant the live one:\n%s", got, want)
	}
	st, err := db.Stats(context.Background(), vibekit.Filter{}, sqlite.StatsOptions{})
	if err != nil || st.TotalEvents != 300 || st.Sessions != 3 {
		t.Errorf("stats of the merged database: %+v, %v", st, err)
	}

	// A filter inside the second archive opens only it (the first is
	// damaged), and the other filters apply as on the live database.
	os.WriteFile(as[0].Path, []byte("garbage"), 0o600)
	f := vibekit.Filter{From: time.UnixMilli(baseTs + 120_000), To: time.UnixMilli(baseTs + 129_000), SessionIDs: []string{"s1"}}
	_, m = merged(t, dbPath, f, o)
	if rows, _ := rowsOf(t, m.Path); len(rows) != 10 || rows[0] != 120 || m.Archives != 1 {
		t.Errorf("rows 120..129 of s1: %v from %d archives, want 10 from 1", rows, m.Archives)
	}

	// A bad archive in range fails the merge, naming it, and leaves nothing.
	o.TempDir = t.TempDir()
	_, err = Merge(context.Background(), dbPath, vibekit.Filter{}, o)
	var bad *BadArchiveError
	if !errors.As(err, &bad) || bad.Path != as[0].Path {
		t.Errorf("merge over a damaged archive: %v, want a BadArchiveError naming %s", err, as[0].Path)
	}
	assertEmpty(t, o.TempDir)

	if _, err := Merge(context.Background(), filepath.Join(t.TempDir(), "none.db"), vibekit.Filter{}, o); err == nil ||
		!strings.Contains(err.Error(), "no such file") {
		t.Errorf("merge of nothing: %v", err)
	}
}

// tableInfo describes the telemetry table of the database at path.
func tableInfo(t *testing.T, path string) (string, error) {
	t.Helper()
	db, err := sqlite.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var s string
	err = db.SQL().QueryRow(`SELECT group_concat(name || ' ' || type || ' ' || pk, ', ') FROM pragma_table_info('telemetry')`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s, nil
}

// TestMerge_WholeSessions: with WholeSessions, the time bounds select
// sessions by their start, and such a session's rows are merged from every
// archive, so that it is summarised whole, as on a database never sealed.
func TestMerge_WholeSessions(t *testing.T) {
	db := MustOpen(t)
	ctx := context.Background()
	at := func(s string, sec int64, typ vibekit.EventType) vibekit.Record {
		return vibekit.Record{SessionID: s, EventType: typ, AgentType: "claude", Timestamp: baseTs + sec*1000}
	}
	commit := func(recs ...vibekit.Record) {
		b := &vibekit.Batch{Records: recs, RecordSources: make([]string, len(recs))}
		if _, err := db.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	s := &Sealer{DB: db}
	seal := func() {
		if _, err := s.Seal(ctx, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Session a spans both archives and the live database; b starts in the
	// second archive, c in the live one; x lives in the first archive only.
	commit(at("a", 0, vibekit.EventStart), at("x", 10, vibekit.EventStart))
	seal()
	commit(at("a", 120, vibekit.EventStream), at("b", 130, vibekit.EventStart))
	seal()
	commit(at("b", 200, vibekit.EventEnd), at("c", 210, vibekit.EventStart), at("a", 300, vibekit.EventEnd))

	// The same rows in a database never sealed.
	plain := MustOpen(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	_, m := merged(t, s.DB.Path, vibekit.Filter{}, MergeOptions{})
	copyRows(t, m.Path, plain)

	sec := func(n int64) time.Time { return time.UnixMilli(baseTs + n*1000) }
	for _, f := range []vibekit.Filter{
		{From: sec(100)},               // a started before: not listed, though it has rows after
		{To: sec(50)},                  // a and x, a with its rows of the later archive and the live database
		{From: sec(5), To: sec(150)},   // x and b, b whole
		{From: sec(125), To: sec(125)}, // none
		{From: sec(0), To: sec(0), AgentTypes: []string{"claude"}},
		{},
	} {
		want, err := plain.Sessions(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		mdb, m := merged(t, s.DB.Path, f, MergeOptions{WholeSessions: true, NoText: true})
		got, err := mdb.Sessions(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := summarise(got), summarise(want); g != w {
			t.Errorf("sessions from %v to %v: merged (%d archives opened)\n%s\nwant\n%s", f.From, f.To, m.Archives, g, w)
		}
	}
	// Bounds that no session starts in open only the archives they cover.
	_, m = merged(t, s.DB.Path, vibekit.Filter{From: sec(400)}, MergeOptions{WholeSessions: true, NoText: true})
	if m.Archives != 0 {
		t.Errorf("sessions from after the last row opened %d archives", m.Archives)
	}
}

func summarise(ss []vibekit.SessionSummary) string {
	var b strings.Builder
	for _, s := range ss {
		b.WriteString(s.SessionID + " " + s.Status + " " + time.UnixMilli(s.StartTime).UTC().Format(time.TimeOnly) + "-" +
			time.UnixMilli(s.EndTime).UTC().Format(time.TimeOnly) + " " + string(rune('0'+s.EventCount)) + "\n")
	}
	return b.String()
}

// copyRows commits the telemetry rows of the database at path into db.
func copyRows(t *testing.T, path string, db *sqlite.DB) {
	t.Helper()
	src, err := sqlite.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	recs, err := src.GetEvents(context.Background(), vibekit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	b := &vibekit.Batch{Records: recs, RecordSources: make([]string, len(recs))}
	if _, err := db.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}
