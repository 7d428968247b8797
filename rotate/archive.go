// Package rotate keeps the telemetry database to its size and age: it seals
// the database into a zstd-compressed archive beside it when it grows past
// maxSizeMB, crash-safely, deletes rows and archives older than pruneDays,
// and reads archives back, guarded against bad files, so that queries can
// span the live database and its archives.
package rotate

import (
	"bytes"
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
)

// DirName is the directory beside the database that holds its archives.
const DirName = "archives"

// Dir returns the archives directory of the database at dbPath.
func Dir(dbPath string) string { return filepath.Join(filepath.Dir(dbPath), DirName) }

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

// Archive names are <base>-<oldest row>-<newest row>-<seal id>.db.zst,
// e.g. telemetry-20261127T140102.000Z-20261127T150312.999Z-000003.db.zst:
// sorted by name they are in time order (of their oldest row), and a time
// filter can skip an archive without opening it.
var nameRE = regexp.MustCompile(`^(.+)-(\d{8}T\d{6}\.\d{3}Z)-(\d{8}T\d{6}\.\d{3}Z)-(\d{6,})\.db\.zst$`)

// Name returns the archive name of seal id of the database at dbPath,
// holding rows from minTs to maxTs (Unix ms).
func Name(dbPath string, minTs, maxTs, id int64) string {
	f := func(ms int64) string { return time.UnixMilli(ms).UTC().Format(timeLayout) }
	return fmt.Sprintf("%s-%s-%s-%06d.db.zst", base(dbPath), f(minTs), f(maxTs), id)
}

// Archive is one archive file of a database.
type Archive struct {
	Name     string
	Path     string
	From, To time.Time // the oldest and newest row, from the name
	Seq      int64     // the seal id
	Size     int64     // bytes on disk
	Err      error     // why the entry cannot be read (a symlink, ...); nil if it can be tried
}

// ParseName reads an archive name. It accepts a plain file name only: no
// directory, no "..", so that a name from the command line cannot reach
// outside archives/.
func ParseName(name string) (Archive, error) {
	if name == "" || name != filepath.Base(name) || strings.ContainsAny(name, `/\`) || strings.Contains(name, "..") {
		return Archive{}, fmt.Errorf("%q is not an archive name (a file name in %s/, like telemetry-20261127T140102.000Z-20261127T150312.999Z-000003.db.zst)", name, DirName)
	}
	m := nameRE.FindStringSubmatch(name)
	if m == nil {
		return Archive{}, fmt.Errorf("%q is not an archive name (<db>-<from>-<to>-<seq>.db.zst)", name)
	}
	from, err1 := time.Parse(timeLayout, m[2])
	to, err2 := time.Parse(timeLayout, m[3])
	seq, err3 := strconv.ParseInt(m[4], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Archive{}, fmt.Errorf("%q is not an archive name: %w", name, err)
	}
	return Archive{Name: name, From: from, To: to, Seq: seq}, nil
}

// BadArchiveError is an archive that cannot be read safely: it names the
// file and says why.
type BadArchiveError struct {
	Path string
	Err  error
}

func (e *BadArchiveError) Error() string { return fmt.Sprintf("archive %s: %v", e.Path, e.Err) }
func (e *BadArchiveError) Unwrap() error { return e.Err }

// List returns the archives of the database at dbPath in time order. Files
// whose names are not archive names of this database are left out. An entry
// with an archive's name that is not a regular file (a symlink, a
// directory) is listed with Err set, so that callers can report it or, if a
// time filter excludes it, pass it by; nothing follows it.
func List(dbPath string) ([]Archive, error) {
	dir := Dir(dbPath)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list archives: %w", err)
	}
	var out []Archive
	for _, e := range entries {
		m := nameRE.FindStringSubmatch(e.Name())
		if m == nil || m[1] != base(dbPath) {
			continue
		}
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

// Find returns the archive called name of the database at dbPath, checking
// the name first.
func Find(dbPath, name string) (Archive, error) {
	a, err := ParseName(name)
	if err != nil {
		return a, err
	}
	a.Path = filepath.Join(Dir(dbPath), a.Name)
	fi, err := os.Lstat(a.Path)
	if err != nil {
		return a, &BadArchiveError{a.Path, err}
	}
	if !fi.Mode().IsRegular() {
		return a, &BadArchiveError{a.Path, fmt.Errorf("not a regular file (%s); refusing to follow it", describeMode(fi.Mode()))}
	}
	a.Size = fi.Size()
	return a, nil
}

// Meta describes an archive's contents. It is stored at the start of the
// archive in a zstd skippable frame, which zstd tools pass over, so that
// listing archives reads a few hundred bytes of each, not the whole file.
type Meta struct {
	Format      int    `json:"format"`
	DB          string `json:"db"` // the file name of the database it was sealed from
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

// Meta reads the archive's metadata.
func (a *Archive) Meta() (Meta, error) {
	if a.Err != nil {
		return Meta{}, a.Err
	}
	m, err := ReadMeta(a.Path)
	if errors.Is(err, errNoMeta) {
		return m, &BadArchiveError{a.Path, errors.New("no metadata frame: not written by vibekit-pipe")}
	}
	return m, err
}
