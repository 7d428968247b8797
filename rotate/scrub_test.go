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

	got, err := s.DeleteRows(ctx, sqlite.UserFilter("userId", "u7"), time.Second)
	if err != nil {
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
	// Nothing left to delete: nothing rewritten.
	if again, err := s.DeleteRows(ctx, sqlite.UserFilter("userId", "u7"), time.Second); err != nil || again.Rows != 0 || len(again.Archives) != 0 {
		t.Errorf("second DeleteRows = %+v, %v", again, err)
	}
	assertNoTempFiles(t, Dir(db.Path))
}

// TestDeleteRows_WaitsForASeal: while another sealer holds the seal lock,
// DeleteRows waits for it, and gives up with ErrLocked after its wait.
func TestDeleteRows_WaitsForASeal(t *testing.T) {
	dbPath, _ := sealedTwice(t)
	db := MustOpenPath(t, dbPath)
	holder := &Sealer{DB: db}
	unlock, err := holder.lock()
	if err != nil {
		t.Fatal(err)
	}
	s := &Sealer{DB: db}
	began := time.Now()
	if _, err := s.DeleteRows(context.Background(), sqlite.UserFilter("userId", "x"), 200*time.Millisecond); err != ErrLocked {
		t.Errorf("DeleteRows with the lock held elsewhere: %v, want ErrLocked", err)
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
	if _, err := s.DeleteRows(context.Background(), sqlite.UserFilter("userId", "x"), time.Minute); err != nil {
		t.Errorf("DeleteRows after the lock is released: %v", err)
	}
	<-released
}
