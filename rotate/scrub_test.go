package rotate

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

// TestDeleteRows: a user's rows are deleted from every archive that holds
// them, and from nowhere else: each rewritten archive keeps its name and
// passes integrity_check, its metadata counts the rows left, no byte of the
// deleted rows is left in it unpacked, and an archive without such rows is
// not touched.
func TestDeleteRows(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	s := &Sealer{DB: db}
	// Three archives: the user u7 has rows in the first two only.
	commit := func(from, to int, user func(i int) string) {
		t.Helper()
		var b vibekit.Batch
		for i := from; i < to; i++ {
			b.Records = append(b.Records, vibekit.Record{SessionID: "s", EventType: vibekit.EventStream, StreamData: fmt.Sprintf("row %d PRIVATE-%s", i, user(i)),
				Metadata: []byte(fmt.Sprintf(`{"userId":%q}`, user(i))), Timestamp: baseTs + int64(i)*1000})
			b.RecordSources = append(b.RecordSources, "stdin")
		}
		if _, err := db.Commit(ctx, &b); err != nil {
			t.Fatal(err)
		}
	}
	users := func(i int) string {
		if i < 200 && i%3 == 0 {
			return "u7"
		}
		return "u1"
	}
	for i := range 3 {
		commit(i*100, i*100+100, users)
		if _, err := s.Seal(ctx, 0); err != nil {
			t.Fatal(err)
		}
	}
	commit(300, 320, users)
	before, err := List(db.Path)
	if err != nil || len(before) != 3 {
		t.Fatalf("archives %v, %v", before, err)
	}
	third, _ := os.ReadFile(before[2].Path)

	var got Deleted
	if err := s.Exclusive(ctx, time.Second, func() (err error) {
		got, err = s.DeleteRows(ctx, sqlite.UserFilter("userId", "u7"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got.Rows != 67 || len(got.Archives) != 2 || got.Archives[0] != before[0].Name || got.Archives[1] != before[1].Name {
		t.Errorf("DeleteRows = %+v; want 67 rows from %s and %s", got, before[0].Name, before[1].Name)
	}
	after, _ := List(db.Path)
	if len(after) != 3 {
		t.Fatalf("archives after: %v", after)
	}
	if b, _ := os.ReadFile(after[2].Path); !bytes.Equal(b, third) {
		t.Error("the archive without the user's rows was rewritten")
	}
	tmp := t.TempDir()
	var rows int
	for i, a := range after {
		if a.Name != before[i].Name {
			t.Errorf("archive %d renamed: %s -> %s", i, before[i].Name, a.Name)
		}
		c, err := Verify(ctx, a.Path, tmp, Limits{})
		if err != nil {
			t.Fatalf("archive %s: %v", a.Name, err)
		}
		m, _ := ReadMeta(a.Path)
		if m.Rows != c.Rows || m.MinTs != c.MinTs || m.MaxTs != c.MaxTs {
			t.Errorf("archive %s: metadata %+v, holds %+v", a.Name, m, c)
		}
		out, _, err := Unpack(ctx, a.Path, tmp, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(out)
		if bytes.Contains(b, []byte("PRIVATE-u7")) || bytes.Contains(b, []byte(`"u7"`)) {
			t.Errorf("archive %s still holds bytes of the deleted rows", a.Name)
		}
		n, _ := rowsOf(t, out)
		rows += len(n)
	}
	if rows != 300-67 {
		t.Errorf("%d rows left in the archives, want %d", rows, 300-67)
	}
	// Nothing left to delete: nothing rewritten. And only within Exclusive.
	var again Deleted
	err = s.Exclusive(ctx, time.Second, func() (err error) {
		again, err = s.DeleteRows(ctx, sqlite.UserFilter("userId", "u7"))
		return err
	})
	if err != nil || again.Rows != 0 || len(again.Archives) != 0 {
		t.Errorf("second DeleteRows = %+v, %v", again, err)
	}
	if _, err := s.DeleteRows(ctx, sqlite.UserFilter("userId", "u7")); err == nil {
		t.Error("DeleteRows outside Exclusive: no error")
	}
	assertNoTempFiles(t, Dir(db.Path))
}

// TestExclusive_WaitsForASeal: while another sealer holds the seal lock,
// Exclusive waits for it, and gives up with ErrLocked after its wait; fn
// runs only with the lock held.
func TestExclusive_WaitsForASeal(t *testing.T) {
	dbPath, _ := sealedTwice(t)
	db := MustOpenPath(t, dbPath)
	holder := &Sealer{DB: db}
	unlock, err := holder.lock()
	if err != nil {
		t.Fatal(err)
	}
	s := &Sealer{DB: db}
	ran := false
	began := time.Now()
	if err := s.Exclusive(context.Background(), 200*time.Millisecond, func() error { ran = true; return nil }); err != ErrLocked || ran {
		t.Errorf("Exclusive with the lock held elsewhere: %v, ran %v; want ErrLocked, not run", err, ran)
	}
	if waited := time.Since(began); waited < 200*time.Millisecond {
		t.Errorf("gave up after %v, before its wait of 200ms", waited)
	}
	released := make(chan struct{})
	go func() {
		time.Sleep(100 * time.Millisecond)
		unlock()
		close(released)
	}()
	err = s.Exclusive(context.Background(), time.Minute, func() error {
		ran = true
		// Held now: another sealer cannot take it.
		if _, err := (&Sealer{DB: db}).lock(); err != ErrLocked {
			t.Errorf("within Exclusive, another lock: %v, want ErrLocked", err)
		}
		return nil
	})
	if err != nil || !ran {
		t.Errorf("Exclusive after the lock is released: %v, ran %v", err, ran)
	}
	<-released
}
