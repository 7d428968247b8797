package rotate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// zeroFreePages overwrites the free-list leaf pages of the database file at
// path with zeros. After a seal the live database keeps the pages of the
// rows it deleted, and new rows fill only some of them before the next
// seal; SQLite never reads a free leaf page, so zeroing them in the
// snapshot changes nothing for SQLite but spares the archive the stale
// bytes: it compresses faster and smaller. The file must not be open in
// SQLite meanwhile. It returns the number of pages zeroed.
func zeroFreePages(path string) (int64, error) { return clearFreePages(path, punchHole) }

// clearFreePages is zeroFreePages with the hole puncher to try.
func clearFreePages(path string, punchHole func(*os.File, int64, int64) error) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var hdr [100]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return 0, fmt.Errorf("read header: %w", err)
	}
	pageSize := int64(binary.BigEndian.Uint16(hdr[16:18]))
	if pageSize == 1 {
		pageSize = 65536
	}
	if pageSize < 512 || pageSize&(pageSize-1) != 0 {
		return 0, fmt.Errorf("page size %d", pageSize)
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	pages := fi.Size() / pageSize
	trunk := int64(binary.BigEndian.Uint32(hdr[32:36]))
	free := int64(binary.BigEndian.Uint32(hdr[36:40]))
	page := make([]byte, pageSize)
	zeros := make([]byte, max(pageSize, 1<<20))
	var leaves []int64
	var seen int64
	for trunk != 0 {
		if trunk > pages || seen > free {
			return 0, errors.New("free list out of bounds") // leave it all
		}
		if _, err := f.ReadAt(page, (trunk-1)*pageSize); err != nil && err != io.EOF {
			return 0, err
		}
		next := int64(binary.BigEndian.Uint32(page[0:4]))
		n := int64(binary.BigEndian.Uint32(page[4:8]))
		if 8+4*n > pageSize {
			return 0, errors.New("free-list trunk page out of bounds")
		}
		seen += 1 + n
		for i := range n {
			leaf := int64(binary.BigEndian.Uint32(page[8+4*i:]))
			if leaf < 2 || leaf > pages {
				return 0, errors.New("free-list leaf out of bounds")
			}
			leaves = append(leaves, leaf)
		}
		// The trunk's unused tail is stale too.
		if _, err := f.WriteAt(zeros[:pageSize-8-4*n], (trunk-1)*pageSize+8+4*n); err != nil {
			return 0, err
		}
		trunk = next
	}
	// The pages a seal's switch freed are mostly consecutive: clear runs of
	// them at once, by punching a hole where the file system can (no zeros
	// to copy, and the pages leave the page cache), else by writing zeros.
	slices.Sort(leaves)
	var zeroed int64
	punch := true
	for i := 0; i < len(leaves); {
		j := i + 1
		for j < len(leaves) && leaves[j] == leaves[j-1]+1 && (!punch || (j-i+1)*int(pageSize) <= len(zeros)) {
			j++
		}
		off, n := (leaves[i]-1)*pageSize, int64(j-i)*pageSize
		if punch && punchHole(f, off, n) != nil {
			punch = false
			continue // this run again, with zeros
		}
		for k := int64(0); !punch && k < n; k += int64(len(zeros)) {
			if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), n-k)], off+k); err != nil {
				return zeroed, err
			}
		}
		zeroed += int64(j - i)
		i = j
	}
	return zeroed, nil
}
