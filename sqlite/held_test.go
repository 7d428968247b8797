package sqlite

import (
	"os"
	"path/filepath"
	"testing"
)

// TestHoldFile: one descriptor per file, whatever the name it is opened
// by; a name that now leads to another file (the held one renamed away)
// gets that file, not the held one; and the last release closes.
func TestHoldFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "t.db")
	a, err := holdFile(p, true)
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.db")
	if err := os.Link(p, link); err != nil {
		t.Fatal(err)
	}
	b, err := holdFile(link, false)
	if err != nil {
		t.Fatal(err)
	}
	if a != b || a.refs != 2 {
		t.Fatalf("the same file by a second name: holds %p and %p, refs %d; want one hold of 2", a, b, a.refs)
	}
	// The held file is renamed away and a new one made at its name.
	if err := os.Rename(p, filepath.Join(dir, "old.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := holdFile(p, true)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if c == a || c.inode != inodeOf(fi) {
		t.Fatalf("the new file at the name got the old file's hold")
	}
	for _, h := range []*heldFile{a, b, c} {
		if err := h.release(); err != nil {
			t.Fatal(err)
		}
	}
	if len(held.byPath) != 0 || len(held.byInode) != 0 {
		t.Errorf("holds left after the last release: %v %v", held.byPath, held.byInode)
	}
	if _, err := a.f.Stat(); err == nil {
		t.Error("the descriptor is still open after the last release")
	}
}
