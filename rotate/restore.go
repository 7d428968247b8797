package rotate

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/vibekit/vibekit-pipe/sqlite"
)

// Restore unpacks the archive at path into a new database file dest (0600)
// for other tools: it is unpacked within lim into a private directory under
// tmpParent, checked with integrity_check and for the identity its metadata
// names (Find checks that it is the database's), and only then copied to dest
// through a temp file, fsynced and renamed. An existing dest is not
// replaced. It returns what the database holds.
func Restore(ctx context.Context, path, dest, tmpParent string, lim Limits) (sqlite.Contents, error) {
	var c sqlite.Contents
	if _, err := os.Lstat(dest); err == nil {
		return c, fmt.Errorf("restore to %s: the file exists; remove it or choose another with --to", dest)
	}
	tmp, err := privateTemp(tmpParent)
	if err != nil {
		return c, err
	}
	defer os.RemoveAll(tmp)
	out, m, err := Unpack(ctx, path, tmp, lim)
	if err != nil {
		return c, err
	}
	db, err := sqlite.OpenPrivate(out)
	if err != nil {
		return c, &BadArchiveError{path, err}
	}
	problems, err := db.IntegrityCheck(ctx)
	if err == nil && len(problems) > 0 {
		err = fmt.Errorf("integrity_check: %s", strings.Join(problems, "; "))
	}
	if err == nil {
		err = sameIdentity(ctx, db, m)
	}
	if err == nil {
		c, err = db.Contents(ctx)
	}
	db.Close()
	if err != nil {
		return c, &BadArchiveError{path, err}
	}
	if err := copyInto(out, dest); err != nil {
		return c, fmt.Errorf("restore to %s: %w", dest, err)
	}
	return c, nil
}

// copyInto copies src to a new file dst atomically: a temp file beside dst,
// fsynced, renamed, and the directory fsynced.
func copyInto(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	dir := filepath.Dir(dst)
	f, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = io.Copy(f, in)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// Link, not rename: it fails rather than replace a file created since.
	if err := os.Link(tmp, dst); err != nil {
		return err
	}
	return syncDir(dir)
}
