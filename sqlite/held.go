package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// SQLite locks database files with POSIX record locks, which the kernel
// drops, for the whole process, as soon as any descriptor of the file is
// closed: opening and closing a live database file beside its connections
// (to create it, or to read its pages for a seal) would let another process
// think it the last user, checkpoint under a reader and delete the WAL. So
// the package opens each database file once, before its first connection,
// and closes that descriptor only after its last DB in this process is
// closed; a seal reads the file's pages through it.
var held struct {
	sync.Mutex
	byPath  map[string]*heldFile
	byInode map[[2]uint64]*heldFile
}

type heldFile struct {
	f     *os.File
	extra []*os.File // other descriptors of the file, closed with f
	inode [2]uint64
	paths []string
	refs  int
}

// holdFile returns the held descriptor of the database file at path,
// opening it (creating it, 0600, if create) when this process holds none.
func holdFile(path string, create bool) (*heldFile, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	held.Lock()
	defer held.Unlock()
	if held.byPath == nil {
		held.byPath = map[string]*heldFile{}
		held.byInode = map[[2]uint64]*heldFile{}
	}
	fi, statErr := os.Lstat(abs)
	if h := held.byPath[abs]; h != nil {
		if statErr == nil && inodeOf(fi) == h.inode {
			h.refs++
			return h, nil
		}
		// Another file now has that name (the one held was renamed or
		// removed): the name no longer leads to the held one.
		delete(held.byPath, abs)
	}
	// The same file under another name: found by its inode, without
	// opening it again.
	if statErr == nil {
		if h := held.byInode[inodeOf(fi)]; h != nil {
			h.refs++
			h.paths = append(h.paths, abs)
			held.byPath[abs] = h
			return h, nil
		}
	}
	// O_NOFOLLOW: a link put at the name is refused, not followed to
	// create or read a file elsewhere (checkPath looked before; this closes
	// the gap between the look and the open).
	flag := os.O_RDONLY | syscall.O_NOFOLLOW
	if create {
		flag = os.O_RDWR | os.O_CREATE | syscall.O_NOFOLLOW
	}
	f, err := os.OpenFile(abs, flag, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err = f.Stat()
	if err != nil {
		f.Close() // no connection of ours has it yet
		return nil, err
	}
	if h := held.byInode[inodeOf(fi)]; h != nil {
		// It was put at this name between the look above and the open
		// (renamed from a name held): the descriptor just opened must stay
		// open while the file is in use, so it is kept with the hold.
		h.refs++
		h.extra = append(h.extra, f)
		h.paths = append(h.paths, abs)
		held.byPath[abs] = h
		return h, nil
	}
	h := &heldFile{f: f, inode: inodeOf(fi), paths: []string{abs}, refs: 1}
	held.byPath[abs] = h
	held.byInode[h.inode] = h
	return h, nil
}

// release gives up one hold; the last closes the descriptor. Call it after
// the DB's connections are closed.
func (h *heldFile) release() error {
	if h == nil {
		return nil
	}
	held.Lock()
	defer held.Unlock()
	if h.refs--; h.refs > 0 {
		return nil
	}
	for _, p := range h.paths {
		if held.byPath[p] == h {
			delete(held.byPath, p)
		}
	}
	delete(held.byInode, h.inode)
	for _, f := range h.extra {
		f.Close()
	}
	return h.f.Close()
}

func inodeOf(fi os.FileInfo) [2]uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return [2]uint64{uint64(st.Dev), uint64(st.Ino)}
	}
	return [2]uint64{}
}

// File is the database file, open for reading pages at any offset. It is
// the descriptor the package holds for the database's lifetime: the caller
// must not close it.
func (db *DB) File() (*os.File, error) {
	if db.held == nil {
		return nil, errors.New("the database file is not held")
	}
	return db.held.f, nil
}
