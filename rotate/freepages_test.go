package rotate

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/vibekit/vibekit-pipe/sqlite"
)

// TestImage: the image of a pinned database that a seal compresses is the
// database as the pin saw it, whatever writers and checkpoints do after the
// switch: a sound database with the sealed rows, in rollback-journal mode,
// its page count stated, and every free page (left by deleted rows) zero.
func TestImage(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	commitRows(t, db, 0, 2000)
	if _, err := db.SQL().Exec(`DELETE FROM telemetry WHERE id <= 1500`); err != nil {
		t.Fatal(err)
	}
	commitRows(t, db, 2000, 2100) // in the WAL at the switch
	_, pin, err := db.Switch(ctx, func(int64, sqlite.Contents) string { return "a" })
	if err != nil {
		t.Fatal(err)
	}
	defer pin.Close()
	// Writers and checkpoints go on while the pin holds.
	for i := 2100; i < 4000; i += 100 {
		commitRows(t, db, i, i+100)
		if _, err := db.SQL().Exec(`PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
			t.Fatal(err)
		}
	}
	f, err := db.File()
	if err != nil {
		t.Fatal(err)
	}
	r, err := newImageReader(f, pin.Pages, pin.PageSize)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != pin.Pages*pin.PageSize {
		t.Fatalf("image of %d bytes, want %d pages of %d", len(b), pin.Pages, pin.PageSize)
	}
	if b[18] != 1 || b[19] != 1 || sqliteSize(b[:100]) != int64(len(b)) {
		t.Errorf("header: versions %d/%d, states %d bytes; want 1/1 and %d", b[18], b[19], sqliteSize(b[:100]), len(b))
	}
	trunks, leaves := freeList(t, b, pin.PageSize)
	if free := int64(binary.BigEndian.Uint32(b[36:40])); len(leaves) < 100 || int64(len(leaves)+len(trunks)) != free {
		t.Errorf("the free list has %d leaves and %d trunks, the header says %d free pages (want 100 or more)", len(leaves), len(trunks), free)
	}
	zero := make([]byte, pin.PageSize)
	for _, p := range leaves {
		if !bytes.Equal(b[(p-1)*pin.PageSize:p*pin.PageSize], zero) {
			t.Fatalf("free page %d is not zero", p)
		}
	}
	for _, p := range trunks {
		page := b[(p-1)*pin.PageSize : p*pin.PageSize]
		used := 8 + 4*int64(binary.BigEndian.Uint32(page[4:8]))
		if !bytes.Equal(page[used:], zero[used:]) {
			t.Fatalf("the unused tail of free-list trunk page %d is not zero", p)
		}
	}
	img := filepath.Join(t.TempDir(), "image.db")
	if err := os.WriteFile(img, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ro, err := sqlite.OpenPrivate(img)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if p, err := ro.IntegrityCheck(ctx); err != nil || len(p) > 0 {
		t.Errorf("integrity_check: %v %v", p, err)
	}
	rows, _ := rowsOf(t, img)
	if len(rows) != 600 || rows[0] != 1500 || rows[599] != 2099 {
		t.Errorf("the image holds %d rows, want rows 1500..2099", len(rows))
	}
}

// freeList reads the free-list trunk and leaf page numbers of a database image.
func freeList(t *testing.T, b []byte, pageSize int64) (trunks, leaves []int64) {
	t.Helper()
	for trunk := int64(binary.BigEndian.Uint32(b[32:36])); trunk != 0; {
		page := b[(trunk-1)*pageSize : trunk*pageSize]
		trunks = append(trunks, trunk)
		n := int64(binary.BigEndian.Uint32(page[4:8]))
		for i := range n {
			leaves = append(leaves, int64(binary.BigEndian.Uint32(page[8+4*i:])))
		}
		trunk = int64(binary.BigEndian.Uint32(page[0:4]))
	}
	return trunks, leaves
}
