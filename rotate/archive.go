// Package rotate keeps the telemetry database to its size and age: it seals
// the database into a zstd-compressed archive beside it when it grows past
// maxSizeMB, crash-safely, deletes rows and archives older than pruneDays,
// and reads archives back, guarded against bad files, so that queries can
// span the live database and its archives.
package rotate

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vibekit/vibekit-pipe/sqlite"
)

// DirSuffix ends the name of a database's archives directory, which is
// beside it and named after its whole file name: telemetry.db keeps its
// archives in telemetry.db.archives/, so that t.db and t.sqlite in one
// directory, or /tmp/x.db and /tmp/y.db, never share one.
const DirSuffix = ".archives"

// Dir returns the archives directory of the database at dbPath.
func Dir(dbPath string) string {
	return filepath.Join(filepath.Dir(dbPath), filepath.Base(dbPath)+DirSuffix)
}

// ErrUnsafeDir means the archives directory is not one that only this user
// can have made and can write: a symlink, not a directory, another user's,
// or open to group or others. Nothing in it is read or written.
var ErrUnsafeDir = errors.New("unsafe archives directory")

// checkDir checks the archives directory dir without following a symlink;
// with create, a missing one is made (0700). It returns fs.ErrNotExist
// (wrapped) when dir is missing and create is false.
func checkDir(dir string, create bool) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create archives directory %s: %w", dir, err)
		}
		fi, err = os.Lstat(dir)
	}
	if err != nil {
		return fmt.Errorf("archives directory %s: %w", dir, err)
	}
	unsafe := func(why string, args ...any) error {
		return fmt.Errorf("archives directory %s: %w: %s", dir, ErrUnsafeDir, fmt.Sprintf(why, args...))
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return unsafe("it is a symlink; refusing to follow it (make it a directory of its own, mode 0700)")
	case !fi.IsDir():
		return unsafe("it is not a directory (%s)", describeMode(fi.Mode()))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return unsafe("it is owned by uid %d, not by this user (uid %d)", st.Uid, os.Getuid())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return unsafe("it is open to group or others (mode %04o); chmod 700 it if its files are yours", perm)
	}
	return nil
}

// base is the archive name prefix of a database: its file name less the
// extension (telemetry.db -> telemetry).
func base(dbPath string) string {
	b := filepath.Base(dbPath)
	if ext := filepath.Ext(b); ext != "" && ext != b {
		b = strings.TrimSuffix(b, ext)
	}
	return b
}

// timeLayout is the time in archive names: UTC, to the millisecond, so
// that names sort by time and carry the exact range of their rows.
const timeLayout = "20060102T150405.000Z"

// ownerLen is how much of the database's identity an archive's name holds:
// enough that the archives of two databases do not share a name.
const ownerLen = 8

// Archive names are <base>-<oldest row>-<newest row>-<seal id>-<owner>.db.zst,
// e.g. telemetry-20261127T140102.000Z-20261127T150312.999Z-000003-1f2e3d4c.db.zst,
// where owner is the start of the sealing database's identity: sorted by
// name they are in time order (of their oldest row), a time filter can
// skip an archive without opening it, and two databases' seals never
// choose one name.
// Names without the owner part are those of earlier versions: they are
// listed, so that readers can say why they leave them out.
var nameRE = regexp.MustCompile(`^(.+)-(\d{8}T\d{6}\.\d{3}Z)-(\d{8}T\d{6}\.\d{3}Z)-(\d{6,})(?:-([0-9a-f]{8}))?\.db\.zst$`)

// exampleName is an archive name, for messages and help.
const exampleName = "telemetry-20261127T140102.000Z-20261127T150312.999Z-000003-1f2e3d4c.db.zst"

// Name returns the archive name of seal id of the database at dbPath, whose
// identity is owner, holding rows from minTs to maxTs (Unix ms).
func Name(dbPath, owner string, minTs, maxTs, id int64) string {
	f := func(ms int64) string { return time.UnixMilli(ms).UTC().Format(timeLayout) }
	return fmt.Sprintf("%s-%s-%s-%06d-%s.db.zst", base(dbPath), f(minTs), f(maxTs), id, owner[:min(len(owner), ownerLen)])
}

// Archive is one archive file of a database.
type Archive struct {
	Name     string
	Path     string
	From, To time.Time // the oldest and newest row, from the name
	Seq      int64     // the seal id
	Owner    string    // the start of the sealing database's identity, from the name
	Size     int64     // bytes on disk
	// Err says why the entry cannot be read (a symlink, ...) or, from
	// Owned, why it is not the database's own (ErrForeign); nil if it can
	// be tried.
	Err error

	meta    Meta // read by claim
	hasMeta bool
}

// ParseName reads an archive name. It accepts a plain file name only: no
// directory, no "..", so that a name from the command line cannot reach
// outside the archives directory.
func ParseName(name string) (Archive, error) {
	if name == "" || name != filepath.Base(name) || strings.ContainsAny(name, `/\`) || strings.Contains(name, "..") {
		return Archive{}, fmt.Errorf("%q is not an archive name (a file name in the archives directory, like %s)", name, exampleName)
	}
	m := nameRE.FindStringSubmatch(name)
	if m == nil {
		return Archive{}, fmt.Errorf("%q is not an archive name (<db>-<from>-<to>-<seq>-<owner>.db.zst)", name)
	}
	from, err1 := time.Parse(timeLayout, m[2])
	to, err2 := time.Parse(timeLayout, m[3])
	seq, err3 := strconv.ParseInt(m[4], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Archive{}, fmt.Errorf("%q is not an archive name: %w", name, err)
	}
	return Archive{Name: name, From: from, To: to, Seq: seq, Owner: m[5]}, nil
}

// BadArchiveError is an archive that cannot be read safely: it names the
// file and says why.
type BadArchiveError struct {
	Path string
	Err  error
}

func (e *BadArchiveError) Error() string { return fmt.Sprintf("archive %s: %v", e.Path, e.Err) }
func (e *BadArchiveError) Unwrap() error { return e.Err }

// List returns the archives in the archives directory of the database at
// dbPath, in time order, whoever sealed them (Owned tells its own). Files
// whose names are not archive names are left out. An entry with an
// archive's name that is not a regular file (a symlink, a directory) is
// listed with Err set, so that callers can report it or, if a time filter
// excludes it, pass it by; nothing follows it. A missing directory is no
// archives; an unsafe one (see ErrUnsafeDir) is an error.
func List(dbPath string) ([]Archive, error) {
	dir := Dir(dbPath)
	if err := checkDir(dir, false); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("list archives: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list archives: %w", err)
	}
	var out []Archive
	for _, e := range entries {
		a, err := ParseName(e.Name())
		if err != nil {
			continue
		}
		a.Path = filepath.Join(dir, a.Name)
		fi, err := os.Lstat(a.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // deleted meanwhile
		case err != nil:
			a.Err = &BadArchiveError{a.Path, err}
		case !fi.Mode().IsRegular():
			a.Err = &BadArchiveError{a.Path, fmt.Errorf("not a regular file (%s); refusing to follow it", describeMode(fi.Mode()))}
		default:
			a.Size = fi.Size()
		}
		out = append(out, a)
	}
	sortArchives(out)
	return out, nil
}

// ErrForeign means an archive was not sealed by the database being read:
// another database's (one deleted and created again at the same path, or
// a file put there by hand), or one sealed before archives carried their
// database's identity. Readers leave it out, and say so.
var ErrForeign = errors.New("not sealed by this database")

// Identity returns the identity of the database at dbPath, read-only: ""
// with no error if there is no such file, or if it has none (a database
// written only by a version before identities): it owns no archive.
func Identity(ctx context.Context, dbPath string) (string, error) {
	if _, err := os.Lstat(dbPath); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	db, err := sqlite.OpenReadOnly(dbPath)
	if err != nil {
		return "", err
	}
	defer db.Close()
	id, err := db.Identity(ctx)
	if errors.Is(err, sqlite.ErrNoIdentity) {
		return "", nil // it owns no archive
	}
	return id, err
}

// Owned lists the archives of the database whose identity is id (List)
// and sets Err, wrapping ErrForeign, on each that the database did not
// seal: its metadata names another identity, or none. An id of "" (no
// database, or one without an identity) owns no archive. Each archive's
// metadata is read: a few hundred bytes.
func Owned(dbPath, id string) ([]Archive, error) {
	as, err := List(dbPath)
	if err != nil {
		return nil, err
	}
	for i := range as {
		as[i].claim(id)
	}
	return append(append(as, legacy(dbPath)...), strays(dbPath)...), nil
}

// strays returns the files of the archives directory that are neither an
// archive by their name nor a seal's own (its lock, a seal's temporary
// file), each with Err wrapping ErrForeign: put there by hand or by another
// program, they are reported and never read.
func strays(dbPath string) []Archive {
	dir := Dir(dbPath)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []Archive
	for _, e := range entries {
		n := e.Name()
		if _, err := ParseName(n); err == nil || n == ".lock" || strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".tmp") {
			continue
		}
		p := filepath.Join(dir, n)
		out = append(out, Archive{Name: n, Path: p,
			Err: &BadArchiveError{p, fmt.Errorf("%w: its name is not one a seal gives an archive (put there by hand?); it is not read", ErrForeign)}})
	}
	return out
}

// LegacyDir is the directory beside the database that earlier versions
// sealed every database of the directory into.
const LegacyDir = "archives"

// legacy returns the archives of the database at dbPath that an earlier
// version left in LegacyDir (by name: <base>-<from>-<to>-<seq>.db.zst),
// each with Err wrapping ErrForeign: they carry no identity, so they could
// be another database's. Only their names are read.
func legacy(dbPath string) []Archive {
	dir := filepath.Join(filepath.Dir(dbPath), LegacyDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []Archive
	for _, e := range entries {
		m := nameRE.FindStringSubmatch(e.Name())
		if m == nil || m[1] != base(dbPath) || m[5] != "" {
			continue
		}
		a, err := ParseName(e.Name())
		if err != nil {
			continue
		}
		a.Path = filepath.Join(dir, a.Name)
		a.Err = &BadArchiveError{a.Path, fmt.Errorf("%w: it was sealed by an earlier version into the shared %s/ directory, without its database's identity, and is not read (zstd -d unpacks it by hand)", ErrForeign, LegacyDir)}
		out = append(out, a)
	}
	return out
}

// claim sets a.Err if a is not the archive of the database whose identity
// is id.
func (a *Archive) claim(id string) {
	if a.Err != nil {
		return
	}
	m, err := a.Meta()
	if err != nil {
		a.Err = err
		return
	}
	a.meta, a.hasMeta = m, true
	if why := foreign(m, id); why != "" {
		a.Err = &BadArchiveError{a.Path, fmt.Errorf("%w: %s", ErrForeign, why)}
	}
}

// foreign says why an archive with metadata m is not the database id's,
// or "" if it is.
func foreign(m Meta, id string) string {
	short := func(s string) string { return s[:min(len(s), ownerLen)] }
	switch {
	case m.DBID == "":
		return "it was sealed before archives carried their database's identity, and is not read (zstd -d unpacks it by hand)"
	case id == "":
		return fmt.Sprintf("it was sealed by database %s, and the database here has no identity (it does not exist, or no vibekit-pipe of this version has opened it)", short(m.DBID))
	case m.DBID != id:
		return fmt.Sprintf("it was sealed by database %s, not by this one (%s): a database deleted and created again at this path, or a file put here", short(m.DBID), short(id))
	}
	return ""
}

func describeMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	case m.IsDir():
		return "a directory"
	}
	return m.Type().String()
}

func sortArchives(as []Archive) {
	sort.Slice(as, func(i, j int) bool {
		a, b := as[i], as[j]
		if !a.From.Equal(b.From) {
			return a.From.Before(b.From)
		}
		if !a.To.Equal(b.To) {
			return a.To.Before(b.To)
		}
		return a.Seq < b.Seq
	})
}

// Find returns the archive called name of the database at dbPath, whose
// identity is id, checking the name first; an archive the database did not
// seal is an error wrapping ErrForeign.
func Find(dbPath, id, name string) (Archive, error) {
	a, err := ParseName(name)
	if err != nil {
		return a, err
	}
	dir := Dir(dbPath)
	if err := checkDir(dir, false); err != nil {
		return a, err
	}
	a.Path = filepath.Join(dir, a.Name)
	fi, err := os.Lstat(a.Path)
	if err != nil {
		return a, &BadArchiveError{a.Path, err}
	}
	if !fi.Mode().IsRegular() {
		return a, &BadArchiveError{a.Path, fmt.Errorf("not a regular file (%s); refusing to follow it", describeMode(fi.Mode()))}
	}
	a.Size = fi.Size()
	if a.claim(id); a.Err != nil {
		return a, a.Err
	}
	return a, nil
}

// Meta describes an archive's contents. It is stored at the start of the
// archive in a zstd skippable frame, which zstd tools pass over, so that
// listing archives reads a few hundred bytes of each, not the whole file.
type Meta struct {
	Format      int    `json:"format"`
	DB          string `json:"db"`   // the file name of the database it was sealed from
	DBID        string `json:"dbId"` // that database's identity (sqlite.DB.Identity)
	Seal        int64  `json:"seal"`
	Rows        int64  `json:"rows"`
	MaxID       int64  `json:"maxId"`
	Rejects     int64  `json:"rejects"`
	MaxRejectID int64  `json:"maxRejectId"`
	MinTs       int64  `json:"minTs"`
	MaxTs       int64  `json:"maxTs"`
	Bytes       int64  `json:"bytes"`  // the unpacked database
	Sealed      int64  `json:"sealed"` // Unix ms
}

const (
	metaMagic  = 0x184D2A5E // a zstd skippable frame (0x184D2A50-5F)
	metaFormat = 1
	metaMax    = 64 << 10
)

// appendMeta appends m as a skippable frame.
func appendMeta(b []byte, m Meta) []byte {
	m.Format = metaFormat
	js, _ := json.Marshal(m)
	b = binary.LittleEndian.AppendUint32(b, metaMagic)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(js)))
	return append(b, js...)
}

// errNoMeta means the file does not start with our metadata frame (a plain
// zstd file, perhaps): it can still be read.
var errNoMeta = errors.New("no metadata frame")

// readMeta reads the metadata frame at the start of r and returns it with
// its length in bytes.
func readMeta(r io.ReaderAt) (Meta, int64, error) {
	var m Meta
	var hdr [8]byte
	if _, err := r.ReadAt(hdr[:], 0); err != nil {
		if errors.Is(err, io.EOF) {
			return m, 0, errors.New("too short to be a zstd file")
		}
		return m, 0, err
	}
	if binary.LittleEndian.Uint32(hdr[:4]) != metaMagic {
		return m, 0, errNoMeta
	}
	n := binary.LittleEndian.Uint32(hdr[4:])
	if n > metaMax {
		return m, 0, fmt.Errorf("metadata frame of %d bytes, over %d", n, metaMax)
	}
	js := make([]byte, n)
	if _, err := r.ReadAt(js, 8); err != nil {
		return m, 0, fmt.Errorf("metadata frame cut off: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	if err := dec.Decode(&m); err != nil {
		return m, 0, fmt.Errorf("metadata frame: %w", err)
	}
	if m.Format != metaFormat {
		return m, 0, fmt.Errorf("metadata format %d; this program reads %d", m.Format, metaFormat)
	}
	return m, 8 + int64(n), nil
}

// ReadMeta reads the metadata of the archive at path, without following a
// symlink.
func ReadMeta(path string) (Meta, error) {
	f, err := openArchive(path)
	if err != nil {
		return Meta{}, err
	}
	defer f.Close()
	m, _, err := readMeta(f)
	if err != nil {
		return m, &BadArchiveError{path, err}
	}
	return m, nil
}

// openArchive opens an archive for reading; a symlink is refused.
func openArchive(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			err = errors.New("is a symlink; refusing to follow it")
		}
		return nil, &BadArchiveError{path, err}
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("not a regular file (%s)", describeMode(fi.Mode()))
	}
	if err != nil {
		f.Close()
		return nil, &BadArchiveError{path, err}
	}
	return f, nil
}

// Meta reads the archive's metadata (once: Owned has read it).
func (a *Archive) Meta() (Meta, error) {
	if a.Err != nil {
		return Meta{}, a.Err
	}
	if a.hasMeta {
		return a.meta, nil
	}
	m, err := ReadMeta(a.Path)
	if errors.Is(err, errNoMeta) {
		return m, &BadArchiveError{a.Path, errors.New("no metadata frame: not written by vibekit-pipe")}
	}
	return m, err
}
