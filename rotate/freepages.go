package rotate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// imageReader reads the first pages of a database file as the archive
// stores them. The file is a live database pinned by a read transaction
// (sqlite.Pin): its pages do not change while they are read. Two things
// differ from the bytes on disk:
//
//   - The header says rollback journal (file format versions 1, not WAL's
//     2), so the archive opens read-only with no -wal or -shm beside it;
//     and it states the page count, valid, as the file is exactly that long.
//   - Free pages read as zeros. A live database keeps the pages of the rows
//     it deleted (a dropped sealing table, pruned rows), and new rows fill
//     only some of them before the next seal; SQLite never reads a free
//     leaf page, nor the unused tail of a free-list trunk page, so clearing
//     them changes nothing for SQLite but spares the archive the stale
//     bytes: it compresses faster and smaller, and keeps no deleted row.
type imageReader struct {
	f        *os.File
	pageSize int64
	size     int64 // pages * pageSize
	off      int64
	hdr      [100]byte       // the header as the archive has it
	free     []uint64        // bit per page number: a free-list leaf
	tails    map[int64]int64 // by trunk page number: where its unused tail starts
}

func (r *imageReader) isFree(pg int64) bool { return r.free[pg/64]&(1<<(pg%64)) != 0 }

// newImageReader reads the free list of the pinned file f of pages pages.
func newImageReader(f *os.File, pages, pageSize int64) (*imageReader, error) {
	var hdr [100]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if ps := int64(binary.BigEndian.Uint16(hdr[16:18])); ps != pageSize && !(ps == 1 && pageSize == 65536) {
		return nil, fmt.Errorf("the file's page size %d is not the database's %d", ps, pageSize)
	}
	r := &imageReader{f: f, pageSize: pageSize, size: pages * pageSize, hdr: hdr,
		free: make([]uint64, pages/64+1), tails: map[int64]int64{}}
	r.hdr[18], r.hdr[19] = 1, 1                             // rollback journal
	binary.BigEndian.PutUint32(r.hdr[28:32], uint32(pages)) // the page count,
	copy(r.hdr[92:96], r.hdr[24:28])                        // valid for this change counter
	trunk := int64(binary.BigEndian.Uint32(hdr[32:36]))
	count := int64(binary.BigEndian.Uint32(hdr[36:40]))
	page := make([]byte, pageSize)
	var seen int64
	for trunk != 0 {
		if _, again := r.tails[trunk]; trunk < 2 || trunk > pages || seen > count || again {
			return nil, errors.New("free list out of bounds")
		}
		if _, err := f.ReadAt(page, (trunk-1)*pageSize); err != nil {
			return nil, err
		}
		n := int64(binary.BigEndian.Uint32(page[4:8]))
		if 8+4*n > pageSize {
			return nil, errors.New("free-list trunk page out of bounds")
		}
		r.tails[trunk] = 8 + 4*n
		seen += 1 + n
		for i := range n {
			leaf := int64(binary.BigEndian.Uint32(page[8+4*i:]))
			if leaf < 2 || leaf > pages {
				return nil, errors.New("free-list leaf out of bounds")
			}
			r.free[leaf/64] |= 1 << (leaf % 64)
		}
		trunk = int64(binary.BigEndian.Uint32(page[0:4]))
	}
	return r, nil
}

func (r *imageReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.size-r.off)]
	n, err := r.f.ReadAt(p, r.off)
	if n < len(p) {
		if err == nil || err == io.EOF {
			err = fmt.Errorf("the database file ends before its %d pages", r.size/r.pageSize)
		}
		return n, err
	}
	r.clear(p, r.off)
	r.off += int64(n)
	return n, nil
}

// clear rewrites p, the bytes of the file at off, as the archive has them.
func (r *imageReader) clear(p []byte, off int64) {
	if off < int64(len(r.hdr)) {
		copy(p, r.hdr[off:])
	}
	first := off / r.pageSize
	for i := first; i*r.pageSize < off+int64(len(p)); i++ {
		pg := i + 1
		lo := max(i*r.pageSize, off) - off
		hi := min((i+1)*r.pageSize, off+int64(len(p))) - off
		if r.isFree(pg) {
			clear(p[lo:hi])
		} else if tail, ok := r.tails[pg]; ok {
			if t := i*r.pageSize + tail - off; t < hi {
				clear(p[max(t, lo):hi])
			}
		}
	}
}
