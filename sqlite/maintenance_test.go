package sqlite

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

func commitN(t *testing.T, db *DB, n int, ts int64) {
	t.Helper()
	var b vibekit.Batch
	for i := range n {
		b.Records = append(b.Records, vibekit.Record{SessionID: "s", EventType: vibekit.EventStream, StreamData: fmt.Sprintf("row %d %0500d", i, 0), Timestamp: ts + int64(i)})
	}
	if _, err := db.Commit(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
}

func TestMaintenance(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	commitN(t, db, 2000, 1000)
	full, err := db.UsedBytes(ctx)
	if err != nil || full < 1<<20 {
		t.Fatalf("UsedBytes = %d, %v; want over 1 MiB", full, err)
	}
	rows, _, err := db.Prune(ctx, time.UnixMilli(1000+1500))
	if err != nil || rows != 1500 {
		t.Fatalf("Prune = %d, %v; want 1500 rows", rows, err)
	}
	// Deleted rows free their pages: the data shrinks before the file does.
	if used, _ := db.UsedBytes(ctx); used > full/2 {
		t.Errorf("UsedBytes after pruning 3/4 = %d of %d", used, full)
	}
	if err := db.Reindex(ctx); err != nil {
		t.Fatal(err)
	}
	size := func() int64 { // the file and its WAL
		var n int64
		for _, p := range []string{db.Path, db.Path + "-wal"} {
			if fi, err := os.Stat(p); err == nil {
				n += fi.Size()
			}
		}
		return n
	}
	// Prune rebuilt the file (deleted means unreadable); rows deleted by
	// hand leave it as large as it was, for Vacuum.
	if after := size(); after > full {
		t.Errorf("%d bytes after pruning 3/4 of %d", after, full)
	}
	commitN(t, db, 2000, 1_000_000)
	if _, err := db.SQL().Exec(`DELETE FROM telemetry WHERE timestamp >= 1000000`); err != nil {
		t.Fatal(err)
	}
	before := size()
	if err := db.Vacuum(ctx); err != nil {
		t.Fatal(err)
	}
	if after := size(); after >= before/2 {
		t.Errorf("vacuum: %d bytes before, %d after", before, after)
	}
	if problems, err := db.IntegrityCheck(ctx); err != nil || len(problems) > 0 {
		t.Fatalf("IntegrityCheck of a sound database = %v, %v", problems, err)
	}
}

func TestIntegrityCheck_Damaged(t *testing.T) {
	db := MustOpen(t)
	commitN(t, db, 2000, 1000)
	db.Close()
	// Overwrite pages in the middle of the file.
	f, err := os.OpenFile(db.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	junk := make([]byte, 3*4096)
	for i := range junk {
		junk[i] = byte(i * 7)
	}
	f.WriteAt(junk, fi.Size()/2/4096*4096)
	f.Close()
	ro, err := OpenReadOnly(db.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	problems, err := ro.IntegrityCheck(context.Background())
	if err == nil && len(problems) == 0 {
		t.Fatal("IntegrityCheck found nothing wrong with a damaged database")
	}
}
