package sqlite

import (
	"context"
	"fmt"
	"os"
	"testing"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// commitSealRows commits rows from..to-1 (row i has id i+1), one reject per
// ten rows.
func commitSealRows(t *testing.T, db *DB, from, to int) {
	t.Helper()
	var b vibekit.Batch
	for i := from; i < to; i++ {
		b.Records = append(b.Records, vibekit.Record{SessionID: fmt.Sprintf("s%d", i/10), EventType: vibekit.EventStream,
			AgentType: "claude", StreamData: fmt.Sprintf("row %d", i), Metadata: []byte(fmt.Sprintf(`{"i":%d}`, i)), Timestamp: t0.UnixMilli() + int64(i)})
		b.RecordSources = append(b.RecordSources, "stdin")
		if i%10 == 0 {
			b.Rejects = append(b.Rejects, vibekit.Reject{Source: "stdin", Line: int64(i), Reason: "test", Time: t0.UnixMilli()})
		}
	}
	if _, err := db.Commit(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
}

// checkLiveRows checks that the telemetry table holds exactly rows from..to-1,
// ids and contents intact, also when read through the session index.
func checkLiveRows(t *testing.T, db *DB, from, to int) {
	t.Helper()
	ctx := context.Background()
	got, err := db.GetEvents(ctx, vibekit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != to-from {
		t.Fatalf("%d live rows, want %d", len(got), to-from)
	}
	for j, r := range got {
		i := from + j
		if r.ID != int64(i+1) || r.StreamData != fmt.Sprintf("row %d", i) || string(r.Metadata) != fmt.Sprintf(`{"i":%d}`, i) ||
			r.SessionID != fmt.Sprintf("s%d", i/10) || r.Timestamp != t0.UnixMilli()+int64(i) {
			t.Errorf("live row %d = %+v, want row %d with id %d", j, r, i, i+1)
		}
	}
	if p, err := db.IntegrityCheck(ctx); err != nil || len(p) > 0 {
		t.Errorf("integrity_check: %v %v", p, err)
	}
	s := fmt.Sprintf("s%d", (to-1)/10)
	want := 0
	for i := from; i < to; i++ {
		if fmt.Sprintf("s%d", i/10) == s {
			want++
		}
	}
	if bySession, err := db.GetEvents(ctx, vibekit.Filter{SessionIDs: []string{s}}); err != nil || len(bySession) != want {
		t.Errorf("rows of %s through its index: %d, %v; want %d", s, len(bySession), err, want)
	}
}

// TestSwitch: the switch pins the database as it was and moves its rows
// into the sealing table; rows committed after it go into a fresh telemetry
// table, with the same indexes and triggers (a user's too) and ids that go
// on counting; views that name the table read the fresh one. Finishing
// drops the sealed rows, their spans and rejects, and nothing else.
func TestSwitch(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	for _, q := range []string{
		`CREATE INDEX idx_custom ON telemetry(mode, timestamp)`,
		`CREATE TABLE audit (n INTEGER)`,
		`CREATE TRIGGER count_rows AFTER INSERT ON telemetry BEGIN INSERT INTO audit VALUES (new.id); END`,
		`CREATE VIEW recent AS SELECT id FROM telemetry`,
	} {
		if _, err := db.SQL().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	commitSealRows(t, db, 0, 100)
	seal, pin, err := db.Switch(ctx, func(id int64, c Contents) string { return fmt.Sprint("a", id, "-", c.Rows) })
	if err != nil {
		t.Fatal(err)
	}
	defer pin.Close()
	if seal.Archive != fmt.Sprint("a", seal.ID, "-100") || seal.State != SealPending {
		t.Errorf("seal = %+v", seal)
	}
	want := Contents{Rows: 100, MaxID: 100, Rejects: 10, MaxRejectID: 10, MinTs: t0.UnixMilli(), MaxTs: t0.UnixMilli() + 99}
	if seal.Contents != want || pin.Contents != want {
		t.Errorf("contents: seal %+v, pin %+v; want %+v", seal.Contents, pin.Contents, want)
	}
	fi, _ := os.Stat(db.Path)
	if pin.PageSize <= 0 || pin.Pages <= 0 || pin.Pages*pin.PageSize > fi.Size() || seal.Bytes != pin.Pages*pin.PageSize {
		t.Errorf("pin of %d pages of %d bytes, seal of %d bytes; the file has %d", pin.Pages, pin.PageSize, seal.Bytes, fi.Size())
	}
	if _, _, err := db.Switch(ctx, func(int64, Contents) string { return "b" }); err != ErrSealPending {
		t.Errorf("a second switch while one is pending: %v, want ErrSealPending", err)
	}

	commitSealRows(t, db, 100, 130)
	pin.Close()
	checkLiveRows(t, db, 100, 130)
	var sealed, audited, viewed, customs int
	db.SQL().QueryRow(`SELECT (SELECT count(*) FROM `+SealingTable+` WHERE id <= 100), (SELECT count(*) FROM audit WHERE n > 100),
		(SELECT count(*) FROM recent), (SELECT count(*) FROM sqlite_master WHERE name = 'idx_custom' AND tbl_name = 'telemetry')`).
		Scan(&sealed, &audited, &viewed, &customs)
	if sealed != 100 || audited != 30 || viewed != 30 || customs != 1 {
		t.Errorf("after the switch: %d sealed rows, %d rows by the trigger, %d in the view, custom index %d; want 100, 30, 30, 1", sealed, audited, viewed, customs)
	}
	for _, ix := range indexes {
		var tbl string
		if err := db.SQL().QueryRow(`SELECT tbl_name FROM sqlite_master WHERE type = 'index' AND name = ?`, ix.name).Scan(&tbl); err != nil || tbl != "telemetry" {
			t.Errorf("index %s on %q: %v", ix.name, tbl, err)
		}
	}

	if _, err := db.FinishSeal(ctx, seal.ID); err != nil {
		t.Fatal(err)
	}
	commitSealRows(t, db, 130, 131)
	checkLiveRows(t, db, 100, 131)
	var tables, spans, rejects, done int
	db.SQL().QueryRow(`SELECT (SELECT count(*) FROM sqlite_master WHERE name = '`+SealingTable+`'), (SELECT count(*) FROM vk_spans WHERE first_id <= 100),
		(SELECT count(*) FROM vk_rejects WHERE line < 100), (SELECT count(*) FROM vk_seals WHERE state = 'done')`).Scan(&tables, &spans, &rejects, &done)
	if tables != 0 || spans != 0 || rejects != 0 || done != 1 {
		t.Errorf("after finishing: sealing table %d, %d sealed spans, %d sealed rejects, %d seals done; want 0, 0, 0, 1", tables, spans, rejects, done)
	}
	_, next, err := db.Switch(ctx, func(int64, Contents) string { return "c" })
	if err != nil {
		t.Fatalf("the next switch: %v", err)
	}
	next.Close()
}

// TestAbortSeal: rolling back a switched seal puts its rows back beside the
// ones committed since, ids and contents intact, and forgets the seal.
func TestAbortSeal(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	commitSealRows(t, db, 0, 100)
	seal, pin, err := db.Switch(ctx, func(int64, Contents) string { return "a" })
	if err != nil {
		t.Fatal(err)
	}
	pin.Close()
	commitSealRows(t, db, 100, 120)
	if err := db.AbortSeal(ctx, seal.ID); err != nil {
		t.Fatal(err)
	}
	checkLiveRows(t, db, 0, 120)
	var tables, seals, rejects int
	db.SQL().QueryRow(`SELECT (SELECT count(*) FROM sqlite_master WHERE name = '`+SealingTable+`'), (SELECT count(*) FROM vk_seals),
		(SELECT count(*) FROM vk_rejects)`).Scan(&tables, &seals, &rejects)
	if tables != 0 || seals != 0 || rejects != 12 {
		t.Errorf("after the rollback: sealing table %d, %d seals, %d rejects; want 0, 0, 12", tables, seals, rejects)
	}
}

// TestSwitch_NothingToSeal: an empty database is not sealed.
func TestSwitch_NothingToSeal(t *testing.T) {
	db := MustOpen(t)
	if _, _, err := db.Switch(context.Background(), func(int64, Contents) string { return "a" }); err != ErrNothingToSeal {
		t.Errorf("switch of an empty database: %v, want ErrNothingToSeal", err)
	}
}

// TestSwitch_ReaderHoldsWAL: while a reader's snapshot keeps frames of the
// WAL out of the database file, the file alone is not the database: the
// switch refuses (ErrWALBusy), changing nothing, and succeeds once the
// reader is gone.
func TestSwitch_ReaderHoldsWAL(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	commitSealRows(t, db, 0, 50)
	ro, err := OpenReadOnly(db.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	v, err := ro.View(ctx) // pins the state with 50 rows
	if err != nil {
		t.Fatal(err)
	}
	commitSealRows(t, db, 50, 100) // in the WAL, past the reader's snapshot
	if _, _, err := db.Switch(ctx, func(int64, Contents) string { return "a" }); err != ErrWALBusy {
		t.Fatalf("switch with a reader holding the WAL: %v, want ErrWALBusy", err)
	}
	checkLiveRows(t, db, 0, 100)
	if seals, _ := db.Seals(ctx); len(seals) != 0 {
		t.Errorf("seals recorded: %+v", seals)
	}
	v.Close()
	_, pin, err := db.Switch(ctx, func(int64, Contents) string { return "a" })
	if err != nil {
		t.Fatal(err)
	}
	pin.Close()
	if pin.Rows != 100 {
		t.Errorf("the pin holds %d rows, want 100", pin.Rows)
	}
}

// TestSwitch_CancelledContext: a switch whose context has ended fails,
// changing nothing.
func TestSwitch_CancelledContext(t *testing.T) {
	db := MustOpen(t)
	commitSealRows(t, db, 0, 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := db.Switch(ctx, func(int64, Contents) string { return "a" }); err == nil {
		t.Fatal("switch with an ended context: no error")
	}
	checkLiveRows(t, db, 0, 10)
}

// TestClear_DuringSeal: while a seal is under way (or left pending by a
// crash), clear and its count reach the rows in the sealing table too, so a
// rolled-back seal brings none of them back.
func TestClear_DuringSeal(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	commitSealRows(t, db, 0, 100) // sessions s0..s9
	seal, pin, err := db.Switch(ctx, func(int64, Contents) string { return "a" })
	if err != nil {
		t.Fatal(err)
	}
	pin.Close()
	commitSealRows(t, db, 100, 120) // s10, s11
	f := vibekit.Filter{SessionIDs: []string{"s3", "s11"}}
	if n, err := db.CountClear(ctx, f); err != nil || n.Events != 20 {
		t.Errorf("CountClear = %+v, %v; want 20 events", n, err)
	}
	if n, err := db.Clear(ctx, f); err != nil || n.Events != 20 {
		t.Errorf("Clear = %+v, %v; want 20 events", n, err)
	}
	if err := db.AbortSeal(ctx, seal.ID); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetEvents(ctx, vibekit.Filter{SessionIDs: []string{"s3", "s11"}})
	if err != nil || len(got) != 0 {
		t.Errorf("after the rollback: %d cleared rows are back (%v)", len(got), err)
	}
	if all, _ := db.GetEvents(ctx, vibekit.Filter{}); len(all) != 100 {
		t.Errorf("%d rows after the rollback, want 100", len(all))
	}
}
