package rotate

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vibekit/vibekit-pipe/sqlite"
)

// clock is a settable clock for retention tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRotator_Retention: rows and archives older than the age go at start,
// and then periodically as time passes, and the log says what went.
func TestRotator_Retention(t *testing.T) {
	dbPath, _ := sealedTwice(t) // rows 0..299, one a second from baseTs; 0-199 archived
	db := MustOpenPath(t, dbPath)
	row := func(i int) time.Time { return time.UnixMilli(baseTs + int64(i)*1000) }
	clk := &clock{}
	// Day 1 after row 150: archive 1 (rows 0-99) is older; archive 2 is not.
	clk.Set(row(150).Add(24 * time.Hour))
	r := New(db, Options{PruneAge: 24 * time.Hour, PruneEvery: 5 * time.Millisecond, Now: clk.Now})
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	as, _ := List(dbPath)
	if len(as) != 1 || !as[0].From.Equal(row(100)) {
		t.Fatalf("after the pass at start, archives = %v, want the second only", as)
	}
	if p := r.Stats().Pruned; len(p.Archives) != 1 || p.ArchiveRows != 100 || p.Rows != 0 {
		t.Errorf("pruned %+v, want one archive of 100 rows", p)
	}
	// Time passes: row 250 is a day old. The second archive and live rows
	// 200..249 go, and the rejects of those rows.
	clk.Set(row(250).Add(24 * time.Hour))
	waitFor(t, "the periodic prune", func() bool { return r.Stats().Pruned.Rows == 50 })
	r.Close()
	if as, _ := List(dbPath); len(as) != 0 {
		t.Errorf("archives left: %v", as)
	}
	rows, _ := rowsOf(t, dbPath)
	if len(rows) != 50 || rows[0] != 250 {
		t.Errorf("live rows %d from %v, want 50 from 250", len(rows), rows[:min(1, len(rows))])
	}
	tot, err := db.Pruned(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tot.Rows != 50 || tot.Archives != 2 || tot.ArchiveRows != 200 || tot.Rejects != 5 {
		t.Errorf("prune log %+v, want 50 rows, 5 rejects, 2 archives of 200 rows", tot)
	}
}

// TestRotator_SealsPastTheLimit: AfterCommit seals in the background once
// the data passes MaxBytes, and rows keep flowing meanwhile.
func TestRotator_SealsPastTheLimit(t *testing.T) {
	db := MustOpen(t)
	r := New(db, Options{MaxBytes: 256 << 10})
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := 0
	for r.Stats().Seals < 2 {
		commitRows(t, db, n, n+100)
		n += 100
		r.AfterCommit()
		if n > 100000 {
			t.Fatal("no two seals after 100,000 rows")
		}
	}
	r.Close()
	archived, live := allRows(t, db.Path)
	checkExactly(t, archived, live, n)
}

// TestRotator_ReportsAReaderHoldingTheWAL: a reader whose snapshot is older
// than the latest commits keeps the seal off; after WALBusyReport the
// caller hears of it, once, and the seal goes through once the reader is
// done.
func TestRotator_ReportsAReaderHoldingTheWAL(t *testing.T) {
	db := MustOpen(t)
	clk := &clock{}
	clk.Set(time.UnixMilli(baseTs))
	var mu sync.Mutex
	var reports []error
	r := New(db, Options{MaxBytes: 64 << 10, Now: clk.Now, OnError: func(err error) {
		mu.Lock()
		reports = append(reports, err)
		mu.Unlock()
	}})
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	commitRows(t, db, 0, 100)
	ro, err := sqlite.OpenReadOnly(db.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	v, err := ro.View(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	commitRows(t, db, 100, 600) // past the limit, and past the reader's snapshot
	attempt := func() {
		r.AfterCommit()
		waitFor(t, "the seal attempt", func() bool { return !r.busy.Load() })
	}
	got := func() []error {
		mu.Lock()
		defer mu.Unlock()
		return append([]error(nil), reports...)
	}
	for _, at := range []time.Duration{0, 30 * time.Second, 59 * time.Second} {
		clk.Set(time.UnixMilli(baseTs).Add(at))
		attempt()
	}
	if n := len(got()); n != 0 || r.Stats().Seals != 0 {
		t.Fatalf("before a minute: %d reports, %d seals; want none", n, r.Stats().Seals)
	}
	for _, at := range []time.Duration{61 * time.Second, 90 * time.Second} {
		clk.Set(time.UnixMilli(baseTs).Add(at))
		attempt()
	}
	if rs := got(); len(rs) != 1 || !strings.Contains(rs[0].Error(), "reader") {
		t.Fatalf("after a minute: reports %v, want one about the reader", rs)
	}
	v.Close()
	clk.Set(time.UnixMilli(baseTs).Add(2 * time.Minute))
	attempt()
	if r.Stats().Seals != 1 {
		t.Errorf("%d seals once the reader is done, want 1", r.Stats().Seals)
	}
}
