package rotate

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// sealedTwice makes a database with two archives (rows 0-99 and 100-199)
// and rows 200-299 live; it returns the database path and the archives.
func sealedTwice(t *testing.T) (string, []Archive) {
	t.Helper()
	db := MustOpen(t)
	s := &Sealer{DB: db}
	for i := range 2 {
		commitRows(t, db, i*100, i*100+100)
		if _, err := s.Seal(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
	}
	commitRows(t, db, 200, 300)
	as, err := List(db.Path)
	if err != nil || len(as) != 2 {
		t.Fatalf("archives %v, %v", as, err)
	}
	return db.Path, as
}

// zstdFrame starts a frame with no content size and a window of 128 KiB.
func zstdFrame() []byte {
	return []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38}
}

// rleBlocks appends n blocks, each 128 KiB of the byte c: 4 bytes apiece.
func rleBlocks(b []byte, n int, c byte) []byte {
	for i := range n {
		h := uint32(128<<10)<<3 | 1<<1
		if i == n-1 {
			h |= 1
		}
		b = append(b, byte(h), byte(h>>8), byte(h>>16), c)
	}
	return b
}

// rawBlock appends a raw (stored) block holding p.
func rawBlock(b, p []byte) []byte {
	h := uint32(len(p)) << 3
	return append(append(b, byte(h), byte(h>>8), byte(h>>16)), p...)
}

// sqliteHeader is a 100-byte SQLite header stating a 2-page database of
// 4 KiB pages (or, with valid false, a page count that is not to be trusted).
func sqliteHeader(valid bool) []byte {
	h := make([]byte, 100)
	copy(h, "SQLite format 3\x00")
	binary.BigEndian.PutUint16(h[16:], 4096)
	binary.BigEndian.PutUint32(h[24:], 7)
	binary.BigEndian.PutUint32(h[28:], 2)
	if valid {
		binary.BigEndian.PutUint32(h[92:], 7)
	}
	return h
}

func TestBadArchives(t *testing.T) {
	compressed := func(p []byte) []byte {
		enc, _ := zstd.NewWriter(nil)
		return enc.EncodeAll(p, nil)
	}
	const gib = 8192 // 128 KiB blocks in 1 GiB
	cases := []struct {
		name   string
		damage func(t *testing.T, path string)
		want   string
	}{
		{"truncated", func(t *testing.T, path string) { truncate(t, path) }, "truncated"},
		{"corrupted", func(t *testing.T, path string) {
			b, _ := os.ReadFile(path)
			for i := len(b) / 2; i < len(b)/2+64; i++ {
				b[i] ^= 0x5a
			}
			os.WriteFile(path, b, 0o600)
		}, ""},
		{"bomb of zeros", func(t *testing.T, path string) {
			os.WriteFile(path, rleBlocks(zstdFrame(), 4*gib, 0), 0o600)
		}, "not a SQLite database inside"},
		{"bomb behind a SQLite header", func(t *testing.T, path string) {
			b := rawBlock(zstdFrame(), sqliteHeader(true))
			os.WriteFile(path, rleBlocks(b, 4*gib, 0), 0o600)
		}, "more than the 8192 bytes its SQLite header states"},
		{"bomb behind a header of no size", func(t *testing.T, path string) {
			b := rawBlock(zstdFrame(), sqliteHeader(false))
			os.WriteFile(path, rleBlocks(b, 4*gib, 0), 0o600)
		}, "unpacks to more than 8388608 bytes"},
		{"content size over the limit", func(t *testing.T, path string) {
			b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xc0, 0x38}
			b = binary.LittleEndian.AppendUint64(b, 1<<40)
			os.WriteFile(path, rleBlocks(b, 1, 0), 0o600)
		}, "unpacks to 1099511627776 bytes, over the limit"},
		{"huge window", func(t *testing.T, path string) {
			b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 20 << 3} // 1 GiB window
			os.WriteFile(path, rleBlocks(b, 1, 0), 0o600)
		}, "window"},
		{"not SQLite inside", func(t *testing.T, path string) {
			os.WriteFile(path, compressed(bytes.Repeat([]byte("not a database\n"), 1000)), 0o600)
		}, "not a SQLite database inside"},
		{"not zstd", func(t *testing.T, path string) {
			os.WriteFile(path, []byte("plain text, not zstd at all"), 0o600)
		}, "not a zstd file"},
		{"symlink", func(t *testing.T, path string) {
			// To a good archive elsewhere: still refused, not followed.
			moved := filepath.Join(t.TempDir(), "elsewhere.db.zst")
			os.Rename(path, moved)
			os.Symlink(moved, path)
		}, "symlink"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dbPath, as := sealedTwice(t)
			bad, good := as[1], as[0]
			c.damage(t, bad.Path)
			tmp := t.TempDir()
			lim := Limits{MaxBytes: 8 << 20}

			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			out, _, err := Unpack(context.Background(), bad.Path, tmp, lim)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if err == nil {
				os.Remove(out)
				if _, err = Verify(context.Background(), bad.Path, tmp, lim); err == nil {
					t.Fatal("a bad archive was read without an error")
				}
			}
			var be *BadArchiveError
			if !errors.As(err, &be) || be.Path != bad.Path || !strings.Contains(err.Error(), bad.Path) {
				t.Errorf("err = %v, want a BadArchiveError naming %s", err, bad.Path)
			}
			if c.want != "" && !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to say %q", err, c.want)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
				t.Errorf("reading it allocated %d MiB", grew>>20)
			}
			assertEmpty(t, tmp)

			// Reading everything fails, naming the file; the data set
			// without it (a time filter that excludes it) reads, and the
			// temp files are gone either way.
			ro := ReadOptions{Limits: lim, TempDir: t.TempDir()}
			err = Scan(context.Background(), dbPath, vibekit.Filter{}, ro, func(*vibekit.Record) error { return nil })
			if err == nil || !strings.Contains(err.Error(), bad.Path) {
				t.Errorf("Scan: err = %v, want one naming %s", err, bad.Path)
			}
			assertEmpty(t, ro.TempDir)
			n := 0
			f := vibekit.Filter{To: good.To}
			if err := Scan(context.Background(), dbPath, f, ro, func(*vibekit.Record) error { n++; return nil }); err != nil {
				t.Fatalf("Scan of the other archive: %v", err)
			}
			if n != 100 {
				t.Errorf("read %d rows of the good archive, want 100", n)
			}
			if _, err := Verify(context.Background(), good.Path, tmp, Limits{}); err != nil {
				t.Errorf("the good archive: %v", err)
			}
			assertEmpty(t, ro.TempDir)
			assertEmpty(t, tmp)
		})
	}
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		t.Errorf("%s left in %s", e.Name(), dir)
	}
}

func TestParseName_Refuses(t *testing.T) {
	for _, name := range []string{
		"../telemetry-20241127T104000.000Z-20241127T104819.000Z-000001.db.zst",
		"archives/../../etc/passwd",
		"/etc/passwd",
		"..",
		"",
		"telemetry.db",
		"telemetry-20241127T104000.000Z-20241127T104819.000Z-000001.db.zst/..",
	} {
		if _, err := ParseName(name); err == nil {
			t.Errorf("ParseName(%q) accepted it", name)
		}
		if _, err := Find(filepath.Join(t.TempDir(), "telemetry.db"), "", name); err == nil {
			t.Errorf("Find(%q) accepted it", name)
		}
	}
}

func TestScan_TimeOrderAcrossArchives(t *testing.T) {
	dbPath, as := sealedTwice(t)
	ro := ReadOptions{TempDir: t.TempDir()}
	collect := func(f vibekit.Filter) []int64 {
		var ids []int64
		if err := Scan(context.Background(), dbPath, f, ro, func(r *vibekit.Record) error {
			ids = append(ids, r.ID)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	ids := collect(vibekit.Filter{})
	if len(ids) != 300 || ids[0] != 1 || ids[299] != 300 {
		t.Fatalf("read %d rows (%v...), want 300 in order", len(ids), ids[:min(len(ids), 3)])
	}
	for i := range ids {
		if ids[i] != int64(i+1) {
			t.Fatalf("row %d has id %d: not in time order", i, ids[i])
		}
	}
	desc := collect(vibekit.Filter{Order: vibekit.OrderDesc, Offset: 150, Limit: 10})
	if len(desc) != 10 || desc[0] != 150 || desc[9] != 141 {
		t.Errorf("desc page = %v, want 150..141", desc)
	}
	// A filter inside the second archive opens only it: the first is
	// damaged, and the read still succeeds.
	os.WriteFile(as[0].Path, []byte("garbage"), 0o600)
	mid := collect(vibekit.Filter{From: time.UnixMilli(baseTs + 120_000), To: time.UnixMilli(baseTs + 129_000), SessionIDs: []string{"s1"}})
	if len(mid) != 10 || mid[0] != 121 {
		t.Errorf("rows 120..129 of s1 = %v", mid)
	}
	assertEmpty(t, ro.TempDir)
}
