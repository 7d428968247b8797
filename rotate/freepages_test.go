package rotate

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/vibekit/vibekit-pipe/sqlite"
)

// TestZeroFreePages: after a seal's switch frees pages, clearing them in a
// copy leaves every free page zero (holes or written zeros), and the copy
// a sound database with the same rows.
func TestZeroFreePages(t *testing.T) {
	db := MustOpen(t)
	commitRows(t, db, 0, 2000)
	if _, err := db.SQL().Exec(`DELETE FROM telemetry WHERE id <= 1500`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	var free int64
	db.SQL().QueryRow(`PRAGMA freelist_count`).Scan(&free)
	if free < 100 {
		t.Fatalf("%d free pages: the fixture frees too few", free)
	}
	for _, c := range []struct {
		name  string
		punch func(*os.File, int64, int64) error
	}{
		{"holes", punchHole},
		{"zeros", func(*os.File, int64, int64) error { return errors.ErrUnsupported }},
	} {
		t.Run(c.name, func(t *testing.T) {
			snap := filepath.Join(t.TempDir(), "snap.db")
			if err := sqlite.Snapshot(context.Background(), db.Path, snap); err != nil {
				t.Fatal(err)
			}
			n, err := clearFreePages(snap, c.punch)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(snap)
			pageSize := int64(binary.BigEndian.Uint16(b[16:18]))
			trunks, leaves := freeList(t, b, pageSize)
			if n != int64(len(leaves)) || int64(len(leaves)+len(trunks)) != free {
				t.Errorf("cleared %d pages; the free list has %d leaves and %d trunks, freelist_count %d", n, len(leaves), len(trunks), free)
			}
			zero := make([]byte, pageSize)
			for _, p := range leaves {
				if !bytes.Equal(b[(p-1)*pageSize:p*pageSize], zero) {
					t.Fatalf("free page %d is not zero", p)
				}
			}
			ro, err := sqlite.OpenPrivate(snap)
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			if p, err := ro.IntegrityCheck(context.Background()); err != nil || len(p) > 0 {
				t.Errorf("integrity_check: %v %v", p, err)
			}
			if rows, _ := rowsOf(t, snap); len(rows) != 500 || rows[0] != 1500 {
				t.Errorf("rows after clearing: %d from %v", len(rows), rows[:min(1, len(rows))])
			}
		})
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
