package rotate

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/vibekit/vibekit-pipe/sqlite"
)

// Step is a point in a seal, named for the test hook that kills the process
// there (see Sealer.Hook).
type Step string

// The steps of a seal, in order. A crash after any of them leaves either the
// old state (every row live) or the new one (the rows in a verified archive,
// the seal recorded done), or a pending seal that Recover completes or
// rolls back.
const (
	StepLocked     Step = "locked"     // the seal lock is held
	StepSwitched   Step = "switched"   // the rows are in the sealing table, the seal pending, the file pinned
	StepCompressed Step = "compressed" // the archive is in a temp file, fsynced
	StepRenamed    Step = "renamed"    // the archive has its name, the directory fsynced
	StepVerified   Step = "verified"   // the archive unpacks to the pinned database
	StepFinished   Step = "finished"   // the sealing table is dropped, the seal done
)

// Steps lists the steps in order.
var Steps = []Step{StepLocked, StepSwitched, StepCompressed, StepRenamed, StepVerified, StepFinished}

// ErrLocked means another process (or sealer) holds the seal lock of the
// database: it is sealing, so this one does not.
var ErrLocked = errors.New("another process is sealing this database")

// ErrNothingToSeal means there was nothing to seal: the database is below
// its limit after all (another process sealed it), or holds no rows.
var ErrNothingToSeal = sqlite.ErrNothingToSeal

// ErrArchiveExists means a file had the name a seal chose for its archive:
// the seal was rolled back (its rows are live), and nothing was replaced.
var ErrArchiveExists = errors.New("a file has the archive's name already")

// Sealer seals a live database into its archives directory (Dir).
type Sealer struct {
	DB     *sqlite.DB // the live database, open for writing
	Limits Limits     // for verifying archives in Recover
	// Level and Concurrency are the zstd encoder's: SpeedDefault is zstd's
	// level 3; one goroutine leaves the other core to ingest.
	Level       zstd.EncoderLevel
	Concurrency int
	// Hook, when set, is called after each step. It is for tests, which kill
	// the process there to prove the seal crash-safe.
	Hook func(Step)

	exclusive bool // within Exclusive
}

func (s *Sealer) hook(st Step) {
	if s.Hook != nil {
		s.Hook(st)
	}
}

func (s *Sealer) dir() string { return Dir(s.DB.Path) }

// Result is what a seal did.
type Result struct {
	Seal     sqlite.Seal
	Path     string        // the archive
	Size     int64         // its bytes on disk
	Switch   time.Duration // how long the switch held writers (its transaction, from taking the write lock)
	Compress time.Duration
	Verify   time.Duration
	Finish   time.Duration // how long the finish held writers
}

// processAlive reports whether a process pid is running (this one included).
func processAlive(pid int64) bool {
	if pid <= 0 {
		return false
	}
	if pid == int64(os.Getpid()) {
		return true
	}
	err := syscall.Kill(int(pid), 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// lock takes the seal lock, an flock on .lock in the archives directory,
// which it creates if need be (and refuses if unsafe, see ErrUnsafeDir):
// the kernel drops it when the process dies, so a crash never leaves it
// held.
func (s *Sealer) lock() (func(), error) {
	if err := checkDir(s.dir(), true); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(s.dir(), ".lock"), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("seal lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("seal lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// Seal seals the database if its data is at least minBytes (0: whatever its
// size). The switch, one short write transaction, moves the telemetry rows
// aside into the sealing table and pins the database file as it was; the
// pinned file is compressed into the archives directory while writers go
// on into a fresh telemetry table; the archive is verified; and a last short
// transaction drops the sealed rows. Writers wait only for the two
// transactions, which touch no row. It returns ErrLocked if another process
// is sealing, and ErrNothingToSeal if there is nothing to do. If ctx ends
// before the archive is verified, the seal is rolled back (the rows go back
// to the telemetry table); after, it is finished.
func (s *Sealer) Seal(ctx context.Context, minBytes int64) (Result, error) {
	var res Result
	unlock, err := s.lock()
	if err != nil {
		return res, err
	}
	defer unlock()
	s.hook(StepLocked)
	if err := s.recover(ctx); err != nil {
		return res, err
	}
	id, err := s.DB.Identity(ctx)
	if err != nil {
		return res, err
	}
	// Checked again under the lock: another process may have sealed since.
	if minBytes > 0 {
		used, err := s.DB.UsedBytes(ctx)
		if err != nil {
			return res, err
		}
		if used < minBytes {
			return res, ErrNothingToSeal
		}
	}

	seal, pin, err := s.DB.Switch(ctx, func(seq int64, c sqlite.Contents) string {
		minTs, maxTs := c.MinTs, c.MaxTs
		if c.Rows == 0 { // only rejects
			minTs = time.Now().UnixMilli()
			maxTs = minTs
		}
		return Name(s.DB.Path, id, minTs, maxTs, seq)
	})
	if err != nil {
		return res, err
	}
	defer pin.Close()
	res.Seal, res.Switch = seal, pin.Held
	s.hook(StepSwitched)

	// From here until the archive is verified, a failure rolls back: no
	// archive, the seal forgotten, the rows back in the telemetry table.
	// Only a file this seal put in place is removed.
	final := filepath.Join(s.dir(), seal.Archive)
	placed := false
	rollback := func(err error) (Result, error) {
		pin.Close()
		if placed {
			os.Remove(final)
			syncDir(s.dir())
		}
		if aerr := s.DB.AbortSeal(context.WithoutCancel(ctx), seal.ID); aerr != nil {
			// Left pending: the next seal or start rolls it back.
			err = errors.Join(err, aerr)
		}
		return res, err
	}
	began := time.Now()
	tmp := filepath.Join(s.dir(), "."+seal.Archive+".tmp")
	defer os.Remove(tmp)
	c := seal.Contents
	meta := Meta{DB: filepath.Base(s.DB.Path), DBID: id, Seal: seal.ID, Rows: c.Rows, MaxID: c.MaxID, Rejects: c.Rejects,
		MaxRejectID: c.MaxRejectID, MinTs: c.MinTs, MaxTs: c.MaxTs, Sealed: seal.Started.UnixMilli(), Bytes: seal.Bytes}
	level := s.Level
	if level == 0 {
		level = zstd.SpeedDefault
	}
	size, want, err := s.packPinned(ctx, pin, tmp, meta, level)
	if err != nil {
		return rollback(err)
	}
	pin.Close() // checkpoints go on
	res.Compress = time.Since(began)
	s.hook(StepCompressed)
	// A link, not a rename: it fails rather than replace a file that has
	// the name (a planted one, or another database's).
	if err := os.Link(tmp, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			err = fmt.Errorf("%w: %s; the seal is rolled back, and tried again with another name", ErrArchiveExists, final)
		}
		return rollback(fmt.Errorf("put archive in place: %w", err))
	}
	placed = true
	os.Remove(tmp)
	if err := syncDir(s.dir()); err != nil {
		return rollback(fmt.Errorf("put archive in place: fsync %s: %w", s.dir(), err))
	}
	res.Path, res.Size = final, size
	s.hook(StepRenamed)

	began = time.Now()
	if err := verifyAgainst(ctx, final, want); err != nil {
		return rollback(fmt.Errorf("verify: %w", err))
	}
	res.Verify = time.Since(began)
	s.hook(StepVerified)

	// Verified: the seal is finished even if ctx ends now.
	if res.Finish, err = s.finish(context.WithoutCancel(ctx), seal.ID); err != nil {
		// The archive is complete and verified: the next start finishes it.
		return res, err
	}
	res.Seal.State = sqlite.SealDone
	s.hook(StepFinished)
	return res, nil
}

// packPinned compresses the pinned database file into dst. It reads the
// file through the descriptor the store holds: opening and closing another
// would drop the process's SQLite locks on the file (see sqlite.DB.File).
func (s *Sealer) packPinned(ctx context.Context, pin *sqlite.Pin, dst string, m Meta, level zstd.EncoderLevel) (int64, framing, error) {
	f, err := s.DB.File()
	if err != nil {
		return 0, framing{}, fmt.Errorf("compress: %w", err)
	}
	r, err := newImageReader(f, pin.Pages, pin.PageSize)
	if err != nil {
		return 0, framing{}, fmt.Errorf("compress %s: %w", s.DB.Path, err)
	}
	return packFrom(ctx, r, dst, m, level, s.Concurrency)
}

// finish ends the seal, trying again while another writer holds the lock;
// it returns how long the finish held writers.
func (s *Sealer) finish(ctx context.Context, id int64) (time.Duration, error) {
	backoff := 10 * time.Millisecond
	for {
		held, err := s.DB.FinishSeal(ctx, id)
		if err == nil || !sqlite.IsBusy(err) {
			return held, err
		}
		select {
		case <-ctx.Done():
			return 0, err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// verifyAgainst reads the archive back from disk and checks that it holds
// the database pack compressed: the frames pack wrote, each ending in the
// checksum of its content, in order and nothing else; and that they
// decompress, as a stream, to the database's size, the decoder checking
// each frame's content against its checksum. The database itself is not
// read again: the archive unpacks to it byte for byte. (No integrity_check
// runs when sealing; vibekit telemetry check --archives runs it.)
func verifyAgainst(ctx context.Context, archive string, want framing) error {
	f, err := openArchive(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	bad := func(err error) error { return &BadArchiveError{archive, err} }
	_, off, err := readMeta(f)
	if err != nil {
		return bad(err)
	}
	var sum [4]byte
	for i, fr := range want.frames {
		if _, err := f.ReadAt(sum[:], off+fr.n-4); err != nil {
			return bad(fmt.Errorf("frame %d: %w", i, err))
		}
		if binary.LittleEndian.Uint32(sum[:]) != fr.sum {
			return bad(fmt.Errorf("frame %d is not the one written", i))
		}
		off += fr.n
	}
	fi, err := f.Stat()
	if err != nil {
		return bad(err)
	}
	if fi.Size() != off {
		return bad(fmt.Errorf("%d bytes on disk where %d were written", fi.Size(), off))
	}
	_, n, err := decode(ctx, archive, Limits{MaxBytes: want.size}, io.Discard)
	if err == nil && n != want.size {
		err = bad(fmt.Errorf("unpacks to %d bytes, the sealed database has %d", n, want.size))
	}
	return err
}

// Verify unpacks the archive at path into tmpDir, opens it read-only and
// runs integrity_check, and checks that the sealed database's identity is
// the one its metadata names; it returns what the archive holds.
func Verify(ctx context.Context, path, tmpDir string, lim Limits) (sqlite.Contents, error) {
	out, m, err := Unpack(ctx, path, tmpDir, lim)
	if err != nil {
		return sqlite.Contents{}, err
	}
	defer os.Remove(out)
	db, err := sqlite.OpenPrivate(out)
	if err != nil {
		return sqlite.Contents{}, &BadArchiveError{path, err}
	}
	defer db.Close()
	problems, err := db.IntegrityCheck(ctx)
	if err == nil && len(problems) > 0 {
		err = fmt.Errorf("integrity_check: %s", strings.Join(problems, "; "))
	}
	if err == nil {
		err = sameIdentity(ctx, db, m)
	}
	if err != nil {
		return sqlite.Contents{}, &BadArchiveError{path, err}
	}
	c, err := db.Contents(ctx)
	if err != nil {
		return c, &BadArchiveError{path, err}
	}
	return c, nil
}

// sameIdentity checks that the unpacked database db holds the identity its
// archive's metadata m names (an archive without one names none).
func sameIdentity(ctx context.Context, db *sqlite.DB, m Meta) error {
	if m.DBID == "" {
		return nil
	}
	id, err := db.Identity(ctx)
	if err != nil {
		return err
	}
	if id != m.DBID {
		return fmt.Errorf("the sealed database's identity %s is not the one its metadata names (%s): altered", id, m.DBID)
	}
	return nil
}

// Recover finishes or rolls back a seal that a crash interrupted, and
// removes the temp files it left. It does nothing while another process
// holds the seal lock (that process is alive, and sealing).
func (s *Sealer) Recover(ctx context.Context) error {
	if _, err := os.Lstat(s.dir()); errors.Is(err, fs.ErrNotExist) {
		// Never sealed here: nothing to finish, and no archives directory to create.
		// A pending seal is rolled back if the process that began it is
		// gone: a live one may be another process's first seal, which
		// made the archives directory just after the look above.
		seals, err := s.DB.Seals(ctx)
		if err != nil {
			return err
		}
		for _, seal := range seals {
			if seal.State == sqlite.SealPending && !processAlive(seal.PID) {
				return s.DB.AbortSeal(ctx, seal.ID) // its archive is gone with the directory
			}
		}
		return nil
	}
	unlock, err := s.lock()
	if errors.Is(err, ErrLocked) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unlock()
	return s.recover(ctx)
}

// recover is Recover with the lock held.
func (s *Sealer) recover(ctx context.Context) error {
	seals, err := s.DB.Seals(ctx)
	if err != nil {
		return err
	}
	for _, seal := range seals {
		if seal.State != sqlite.SealPending {
			continue
		}
		if err := s.recoverSeal(ctx, seal); err != nil {
			return fmt.Errorf("recover seal %d (%s): %w", seal.ID, seal.Archive, err)
		}
	}
	// Temp files are only ever written under the lock, so those left now
	// are a crash's.
	entries, _ := os.ReadDir(s.dir())
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".tmp") {
			os.Remove(filepath.Join(s.dir(), n))
		}
	}
	return nil
}

// recoverSeal completes a pending seal whose archive is in place and holds
// exactly what the seal recorded (the crash came before the switch), and
// otherwise rolls it back: the archive, if any, is removed; the rows were
// never deleted. A file that is not this database's archive is never
// removed nor taken for the seal's: it is left alone, and the seal rolled
// back.
func (s *Sealer) recoverSeal(ctx context.Context, seal sqlite.Seal) error {
	id, err := s.DB.Identity(ctx)
	if err != nil {
		return err
	}
	if seal.Archive == "" || seal.Archive != filepath.Base(seal.Archive) {
		// Its name was not recorded, so its archive cannot be in place;
		// but after a power loss that lost the name, one with its seal
		// number may be: it goes, as the rows go back.
		as, err := Owned(s.DB.Path, id)
		if err != nil {
			return err
		}
		for _, a := range as {
			if a.Seq == seal.ID && a.Err == nil {
				if err := os.Remove(a.Path); err != nil {
					return err
				}
				syncDir(s.dir())
			}
		}
		return s.DB.AbortSeal(ctx, seal.ID)
	}
	// A seal recorded by a version that deleted the sealed rows only in its
	// last transaction has them all still in the telemetry table and no
	// sealing table: it is rolled back, its archive removed, and the rows
	// are sealed again by the next seal.
	moved, err := s.DB.Sealing(ctx)
	if err != nil {
		return err
	}
	path := filepath.Join(s.dir(), seal.Archive)
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s.DB.AbortSeal(ctx, seal.ID)
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return s.DB.AbortSeal(ctx, seal.ID) // not ours to remove
	}
	if m, err := ReadMeta(path); err != nil || foreign(m, id) != "" {
		// Not an archive this database wrote whole (one it put in place
		// was fsynced first): another's, or a planted file.
		return s.DB.AbortSeal(ctx, seal.ID)
	}
	if moved {
		tmp, err := privateTemp("")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		lim := s.Limits
		lim.MaxBytes = seal.Bytes
		c, err := Verify(ctx, path, tmp, lim)
		if err == nil && c == seal.Contents {
			_, err := s.finish(ctx, seal.ID)
			return err
		}
		var bad *BadArchiveError
		if err != nil && !errors.As(err, &bad) {
			return err // could not check it (a full temp disk?): try again later
		}
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	syncDir(s.dir())
	return s.DB.AbortSeal(ctx, seal.ID)
}
