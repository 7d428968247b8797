package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// ErrUntrusted is the error of a file or directory the store will not use:
// one another user could have planted or can change under us (DESIGN
// invariant 6). Errors of this kind are *UntrustedError.
var ErrUntrusted = errors.New("untrusted file")

// UntrustedError says which file was refused, why, and what to do.
type UntrustedError struct {
	Path   string
	Reason string // "a symbolic link", "a file owned by uid 1000 (we are 0)", ...
	Hint   string
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("refusing %s, %s: %s", e.Path, e.Reason, e.Hint)
}

func (e *UntrustedError) Is(target error) bool { return target == ErrUntrusted }

// sidecars are the files SQLite keeps beside a database. Each holds or
// indexes its pages: a planted WAL or journal is replayed into the database.
var sidecars = []string{"-wal", "-shm", "-journal"}

// checkDir refuses the database's directory if another user owns it or can
// write to it: whoever can write a directory can put files (a database, its
// WAL, a link) under the names we are about to open. A directory owned by
// root is trusted as root is; one writable by all with the sticky bit (/tmp)
// is accepted, since there nobody else can remove or rename our files, and
// each file in it is checked on its own (checkFile).
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &UntrustedError{dir, "which is not a directory", "the database's directory must be one"}
	}
	uid := os.Geteuid()
	if owner := ownerOf(fi); owner != uid && owner != 0 {
		return &UntrustedError{"the directory " + dir, fmt.Sprintf("owned by uid %d (we are %d)", owner, uid),
			"another user could put files of their own in it; keep the database in a directory of yours"}
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		return &UntrustedError{"the directory " + dir, fmt.Sprintf("which other users can write to (mode %04o)", fi.Mode().Perm()),
			"they could replace the database or plant its WAL; make it private (chmod go-w " + dir + ") or keep the database elsewhere"}
	}
	return nil
}

// checkFile refuses what is at path unless it is a regular file of ours that
// no other user can write. fi is from Lstat (a link is refused, not
// followed) or from the open descriptor. A file of ours that others may
// read (a database made by the original VibeKit or the sqlite3 shell under
// a 022 umask) is the owner's choice and is used; the files we create are
// 0600.
func checkFile(path string, fi fs.FileInfo) error {
	if fi.Mode()&fs.ModeSymlink != 0 {
		return symlinkError(path)
	}
	if !fi.Mode().IsRegular() {
		return &UntrustedError{path, "which is not a regular file", "give the database a path of its own"}
	}
	uid := os.Geteuid()
	if owner := ownerOf(fi); owner != uid {
		return &UntrustedError{path, fmt.Sprintf("a file owned by uid %d (we are %d)", owner, uid),
			"another user may have planted it; if you do not know it, remove it, or use another database path"}
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return &UntrustedError{path, fmt.Sprintf("a file other users can write (mode %04o)", perm),
			"if it is yours, make it private (chmod 600 " + path + ") and run the command again"}
	}
	return nil
}

func symlinkError(path string) error {
	return &UntrustedError{path, "a symbolic link", "name the database file itself, not a link to it"}
}

// checkSidecars checks the WAL, shared-memory and journal files of the
// database at path that exist.
func checkSidecars(path string) error {
	for _, s := range sidecars {
		fi, err := os.Lstat(path + s)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := checkFile(path+s, fi); err != nil {
			return err
		}
	}
	return nil
}

// checkPath checks the database file at path (if it exists), its sidecars,
// and its directory, before anything opens them.
func checkPath(path, dir string) error {
	if err := checkDir(dir); err != nil {
		return err
	}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Nothing there, not even a dangling link (which Lstat sees): the
		// file is created with O_NOFOLLOW (holdFile), so a link planted
		// meanwhile makes the open fail rather than lead elsewhere.
	case err != nil:
		return err
	default:
		if err := checkFile(path, fi); err != nil {
			return err
		}
	}
	return checkSidecars(path)
}

func ownerOf(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
