package rotate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// zeroFreePages overwrites the free-list leaf pages of the database file at
// path with zeros. After a seal the live database keeps the pages of the
// rows it deleted, and new rows fill only some of them before the next
// seal; SQLite never reads a free leaf page, so zeroing them in the
// snapshot changes nothing for SQLite but spares the archive the stale
// bytes: it compresses faster and smaller. The file must not be open in
// SQLite meanwhile. It returns the number of pages zeroed.
func zeroFreePages(path string) (int64, error) {
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
	zeros := make([]byte, pageSize)
	var zeroed, seen int64
	for trunk != 0 {
		if trunk > pages || seen > free {
			return zeroed, errors.New("free list out of bounds") // leave the rest
		}
		if _, err := f.ReadAt(page, (trunk-1)*pageSize); err != nil && err != io.EOF {
			return zeroed, err
		}
		next := int64(binary.BigEndian.Uint32(page[0:4]))
		n := int64(binary.BigEndian.Uint32(page[4:8]))
		if 8+4*n > pageSize {
			return zeroed, errors.New("free-list trunk page out of bounds")
		}
		seen += 1 + n
		for i := range n {
			leaf := int64(binary.BigEndian.Uint32(page[8+4*i:]))
			if leaf < 2 || leaf > pages {
				return zeroed, errors.New("free-list leaf out of bounds")
			}
			if _, err := f.WriteAt(zeros, (leaf-1)*pageSize); err != nil {
				return zeroed, err
			}
			zeroed++
		}
		// The trunk's unused tail is stale too.
		if _, err := f.WriteAt(zeros[:pageSize-8-4*n], (trunk-1)*pageSize+8+4*n); err != nil {
			return zeroed, err
		}
		trunk = next
	}
	return zeroed, nil
}
