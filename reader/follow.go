package reader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// FingerprintSize is how many of a file's first bytes identify it beside its
// device and inode: a different file at a reused inode shows different
// first bytes. A shorter file is identified by all of its bytes.
const FingerprintSize = 1024

// copyMinFingerprint is the fewest first bytes a new file must share with a
// known one to be taken for its copy (as logrotate's copytruncate makes),
// whose lines were read already.
const copyMinFingerprint = 64

// turnBytes is how much is read from one file before the others get a
// turn, and before events are looked at again: one file that floods must
// not keep another's new line waiting.
const turnBytes = 256 << 10

// claimRetry is how often a file another process holds is asked for again,
// so that it is taken over once that process is gone.
const claimRetry = 5 * time.Second

// bornMargin allows for the coarse clock that file systems stamp birth
// times with: a file born this long before a look may still be after it.
const bornMargin = 100 * time.Millisecond

// fullLookEvery is how often, with fsnotify, every file is looked at anyway,
// in case an event was missed (a file written through a link from a
// directory nobody watches).
const fullLookEvery = 5 * time.Second

// Follower reads the files that paths and globs name, like `tail -F`: what
// they hold, then what is appended, across rotation by rename, copytruncate,
// truncation, deletion and re-creation, and files and directories that appear
// later. Each line carries its file's identity and the offset after it, and a
// file resumes at its committed checkpoint (Known): committed with the rows,
// that makes every line stored exactly once.
//
// A file is identified by device and inode, its birth time where the file
// system keeps one, and a fingerprint of its first bytes. A rotated or
// deleted file is read to its end and kept open for RotateWait after it last
// grew, for late writes; then an unfinished last line is emitted as it is and
// the file is let go. Partial lines of files still followed are held until
// completed, so checkpoints fall on line boundaries.
//
// Where exactly once cannot be kept (bytes truncated before they were read, a
// NUL hole, a file gone while stopped, a file read again whose checkpoint was
// deleted, a file another process claims) a Mark line with Warn set says so,
// to be committed with the position it concerns: never a silent loss or
// repeat.
type Follower struct {
	Patterns []string // paths or globs; relative ones are taken from the working directory
	MaxLine  int      // DefaultMaxLine if <= 0
	// FromEnd starts files found at start that have no checkpoint at their
	// end (after their last complete line), to read only what comes next.
	FromEnd bool
	// Poll looks at the files every PollInterval instead of watching them
	// with fsnotify. Polling is also the fallback when watches cannot be added.
	Poll         bool
	PollInterval time.Duration // default 250ms
	RotateWait   time.Duration // default 5s
	// Known are the committed checkpoints of files (kind "file").
	Known []vibekit.Checkpoint
	// Exclude are paths never read even if a pattern matches them: the
	// database and its journal files, which would feed on themselves.
	Exclude []string
	// Finish, when closed, makes Run read every file to its current end and
	// return, as when stdin ends.
	Finish <-chan struct{}
	// Warn is told of trouble that does not stop following: a file that
	// cannot be read, the fallback to polling. Each message is told once.
	// (Gaps, re-reads and refused claims are Lines with Warn set, committed
	// with the checkpoint they concern.)
	Warn func(error)
	// Forgotten are checkpoints deleted from the store: a file read again
	// from 0 that one of them was about is reported as a re-read.
	Forgotten []vibekit.ForgottenSource
	// Claim, when set, is asked before a file is read: an error wrapping
	// vibekit.ErrClaimed means another process reads it, and it is skipped
	// (and asked for again every claimRetry). It returns the file's
	// committed checkpoints, which another process may have moved, and, if
	// a stale claim was taken over, whose it was.
	Claim func(path string, dev, ino uint64) ([]vibekit.Checkpoint, string, error)
	// Unclaim is told when a claimed file is let go unread. (A file read
	// is let go with its last position: Line.Release.)
	Unclaim func(dev, ino uint64)

	newWatcher func() (Watcher, error) // tests
}

// Run follows the files until ctx ends, or Finish is closed and the files are
// read to their end, emitting their lines in order per file. It returns nil
// then; an error means emit failed.
func (f *Follower) Run(ctx context.Context, emit func(Line) error) error {
	st, err := f.newState(ctx, emit)
	if err != nil {
		return err
	}
	defer st.close()
	if err := st.scan(); err != nil {
		return err
	}
	if err := st.lookMarked(); err != nil {
		return err
	}
	if err := st.findMissing(); err != nil {
		return err
	}
	st.startup = false
	tick := time.NewTicker(st.pollInterval)
	defer tick.Stop()
	lastFull := time.Now()
	finish := f.Finish
	for {
		busy, err := st.readRound()
		if err != nil || ctx.Err() != nil {
			return err
		}
		if st.finishing && !busy {
			return nil
		}
		if err := st.release(); err != nil {
			return err
		}
		// While files hold unread bytes, events are taken as they come but
		// not waited for: reading goes on after a look.
		var more chan struct{}
		if busy {
			more = closedChan
		}
		select {
		case <-more:
		case <-ctx.Done():
			return nil
		case <-finish:
			// Read to the end of what the files hold now.
			st.finishing = true
			st.lookAll = true
		case ev := <-st.w.Events():
			st.note(ev)
			for more := true; more; { // take what else is waiting
				select {
				case ev := <-st.w.Events():
					st.note(ev)
				default:
					more = false
				}
			}
		case now := <-tick.C:
			// Rotated files in their grace and new files not yet told from
			// copies are looked at on every tick; they are few.
			for _, t := range st.order {
				if !t.current || t.s == nil {
					t.look = true
				}
			}
			if !st.polling && now.Sub(lastFull) >= fullLookEvery {
				st.lookAll = true
			}
		}
		if st.lookAll {
			st.needScan, lastFull = true, time.Now()
		}
		if err := st.scan(); err != nil {
			return err
		}
		if err := st.lookMarked(); err != nil {
			return err
		}
	}
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// fileID is a file's identity in the file system.
type fileID struct{ dev, ino uint64 }

// stream is what has been read of one file's content, wherever it is now.
// Usually one file holds it; a copy of the file (copytruncate) may hold it
// too, and reading from either moves the same offset, so no line is read twice.
type stream struct {
	key, name    string
	fp           []byte // replaced, never modified: lines share it
	offset, line int64  // after the last line emitted
	size         int64  // the file's size when last looked at
	id           fileID // the file that last held it
	birth        int64  // the file's birth time, Unix ns; 0 if unknown
	holders      int
	deleted      bool // its file was deleted: no later file is its copy
	// truncated: its file was truncated (or found shorter than what was
	// read), so a copy of it may appear, as logrotate's copytruncate makes.
	truncated bool
	gone      bool // its file can no longer be found, and that was reported
	latest    bool // a checkpoint at start, the last of its name
	// lostAt and lostEnd: its file was truncated with bytes up to lostEnd
	// unread; unless a copy holds them, they are reported as a gap once
	// RotateWait has passed.
	lostAt  time.Time
	lostEnd int64
}

// tail is one open file.
type tail struct {
	id      fileID
	f       *os.File
	path    string // where it was last found
	real    string // path with links resolved: events name it
	s       *stream
	sp      *Splitter
	readPos int64 // the file position: bytes read into sp
	size    int64 // at the last look

	current  bool      // found at a followed path by the last scan
	gone     time.Time // when it stopped being current
	grew     time.Time // when it last grew (or was found)
	dirty    bool      // may hold unread bytes
	look     bool      // to be looked at (an event or a tick named it)
	startup  bool      // found by the first scan
	startLen int64     // its size then, for FromEnd
	scanned  bool      // seen by the scan in progress
	seenAt   time.Time // when a scan last found it at its path
	lookedAt time.Time // when it was last looked at
	birth    int64     // Unix ns; 0 if unknown

	claimed   bool      // this process holds its claim
	refused   bool      // another process holds its claim: not read
	claimedAt time.Time // when the claim was last asked for
	reported  bool      // the refusal was reported
}

// Read reads from the file, counting the position.
func (t *tail) Read(p []byte) (int, error) {
	n, err := t.f.Read(p)
	t.readPos += int64(n)
	return n, err
}

type followState struct {
	f    *Follower
	ctx  context.Context
	emit func(Line) error
	now  func() time.Time

	w            Watcher
	polling      bool
	pollInterval time.Duration
	rotateWait   time.Duration
	patterns     []string
	exclude      map[string]bool
	watched      []string

	tails   map[fileID]*tail
	order   []*tail // tails in the order found: reading goes round them
	byPath  map[string]*tail
	streams []*stream // every stream known: candidates for copies
	byID    map[fileID][]*stream
	free    []*Splitter
	warned  map[string]bool
	seq     int64
	forgot  []vibekit.ForgottenSource
	losing  []*stream // truncated with unread bytes: see truncatedStream

	startup, finishing, needScan, lookAll bool
}

func (f *Follower) newState(ctx context.Context, emit func(Line) error) (*followState, error) {
	st := &followState{
		f: f, ctx: ctx, emit: emit, now: time.Now,
		pollInterval: f.PollInterval, rotateWait: f.RotateWait,
		tails: map[fileID]*tail{}, byPath: map[string]*tail{}, byID: map[fileID][]*stream{},
		warned: map[string]bool{}, startup: true, exclude: map[string]bool{},
		forgot: slices.Clone(f.Forgotten),
	}
	for _, p := range f.Exclude {
		if abs, err := filepath.Abs(p); err == nil {
			st.exclude[abs] = true
		}
	}
	if st.pollInterval <= 0 {
		st.pollInterval = 250 * time.Millisecond
	}
	if st.rotateWait <= 0 {
		st.rotateWait = 5 * time.Second
	}
	for _, p := range f.Patterns {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("follow %s: %w", p, err)
		}
		if _, err := filepath.Match(abs, ""); err != nil {
			return nil, fmt.Errorf("follow %s: %w", p, err)
		}
		st.patterns = append(st.patterns, abs)
	}
	last := map[string]*stream{}
	for _, c := range f.Known {
		if c.Kind != "file" {
			continue
		}
		s := &stream{key: c.SourceKey(), name: c.Source, fp: c.Fingerprint, offset: c.Offset, line: c.Line,
			size: c.Size, id: fileID{c.Dev, c.Ino}, birth: c.Birth, gone: c.Gone}
		st.addStream(s)
		last[s.name] = s // Known is oldest first within a name
	}
	for _, s := range last {
		s.latest = true
	}
	if !f.Poll {
		newWatcher := f.newWatcher
		if newWatcher == nil {
			newWatcher = newNotifyWatcher
		}
		w, err := newWatcher()
		if err != nil {
			st.warn(fmt.Errorf("%w; polling instead", err))
		} else {
			st.w = w
		}
	}
	if st.w == nil {
		st.w, st.polling = newPollWatcher(st.pollInterval), true
	}
	return st, nil
}

func (st *followState) close() {
	st.w.Close()
	for _, t := range st.order {
		st.closeTail(t)
	}
}

// closeTail closes t's file. Its claim is given up with its last position
// (see release), or here if it has none; when the run ends the store lets
// go of the rest.
func (st *followState) closeTail(t *tail) {
	t.f.Close()
	if t.claimed && t.s == nil && st.f.Unclaim != nil && st.ctx.Err() == nil {
		st.f.Unclaim(t.id.dev, t.id.ino)
	}
	t.claimed = false
}

// report emits a warning, with the position of the stream it concerns (s
// nil: none), to be committed together.
func (st *followState) report(s *stream, kind, path string, offset, n int64, detail string) error {
	w := &vibekit.Warning{Kind: kind, Source: path, Offset: offset, Bytes: n, Detail: detail, Time: st.now().UnixMilli()}
	l := Line{Source: path, Mark: true, Warn: w}
	if s != nil {
		w.Key = s.key
		l.Source, l.Origin, l.Num, l.Offset, l.End = s.name, st.streamOrigin(s), s.line, s.offset, s.offset
	}
	return st.emit(l)
}

// streamOrigin is the origin of s's lines when no file holds it.
func (st *followState) streamOrigin(s *stream) Origin {
	return Origin{Key: s.key, Kind: "file", Dev: s.id.dev, Ino: s.id.ino, Fingerprint: s.fp, Size: max(s.size, s.offset), Birth: s.birth, Gone: s.gone}
}

func (st *followState) warn(err error) {
	if st.f.Warn == nil || st.warned[err.Error()] {
		return
	}
	st.warned[err.Error()] = true
	st.f.Warn(err)
}

func (st *followState) addStream(s *stream) {
	st.streams = append(st.streams, s)
	st.byID[s.id] = append(st.byID[s.id], s)
}

// newStream starts a stream for the file t holds, at offset.
func (st *followState) newStream(t *tail, name string, offset int64) *stream {
	st.seq++
	s := &stream{
		key:  name + "@" + strconv.FormatUint(t.id.dev, 10) + ":" + strconv.FormatUint(t.id.ino, 10) + ":" + strconv.FormatInt(st.now().UnixNano(), 36) + strconv.FormatInt(st.seq, 36),
		name: name, offset: offset, size: t.size, id: t.id, birth: t.birth,
	}
	st.addStream(s)
	return s
}

// hold makes t read s.
func (st *followState) hold(t *tail, s *stream) {
	t.s = s
	s.holders++
	if s.id != t.id {
		st.byID[t.id] = append(st.byID[t.id], s)
		s.id = t.id
	}
	s.birth = t.birth
	st.dropSplitter(t)
}

// unhold detaches t from its stream.
func (st *followState) unhold(t *tail) {
	if t.s != nil {
		t.s.holders--
		t.s = nil
	}
	st.dropSplitter(t)
}

func (st *followState) dropSplitter(t *tail) {
	if t.sp != nil {
		st.free = append(st.free, t.sp)
		t.sp = nil
	}
}

// scan rescans while a scan asks for another (it added watches, and files
// may have appeared before they were in place), a few times at most.
func (st *followState) scan() error {
	for i := 0; i < 3 && (st.needScan || st.startup && i == 0); i++ {
		if err := st.rescan(); err != nil {
			return err
		}
	}
	return nil
}

// rescan matches the patterns again: it opens new files, notes which files
// are no longer at a followed path, and updates the watched directories.
func (st *followState) rescan() error {
	st.needScan = false
	var dirs []string
	for _, p := range st.patterns {
		matches, d := walkPattern(p)
		dirs = append(dirs, d...)
		for _, path := range matches {
			if err := st.found(path); err != nil {
				return err
			}
		}
	}
	clear(st.byPath)
	now := st.now()
	var rotated []*tail
	for _, t := range st.order {
		if t.scanned {
			st.byPath[t.path] = t
			if t.real != t.path {
				st.byPath[t.real] = t
				dirs = append(dirs, filepath.Dir(t.real)) // writes through a link land there
			}
		} else if t.current {
			t.current, t.gone, t.look = false, now, true
			if t.s != nil {
				rotated = append(rotated, t)
			}
		}
		t.scanned = false
	}
	for _, t := range rotated {
		st.findRotated(t, t.seenAt)
	}
	if st.lookAll {
		// The scan compared the sizes of the files it found; look at the
		// others (rotated, deleted) and at those not yet told from copies.
		st.lookAll = false
		for _, t := range st.order {
			if !t.current || t.s == nil {
				t.look = true
			}
		}
	}
	return st.watch(dirs)
}

// findRotated looks beside a file that left its followed path, or was
// truncated, for files the patterns may not name: when files rotate faster
// than they are looked at, the file that came after t may have been renamed
// away (out of the patterns) already; a copytruncate copy holds what t held
// unread. Such a file is unknown, named after t's path (app.log.1,
// app.log-20260101) and born after since, when t was last seen as it was;
// it is read like a rotated file, or as the copy it is. (One deleted
// already is out of reach: nothing tells that it existed.)
func (st *followState) findRotated(t *tail, seen time.Time) {
	dir, base := filepath.Dir(t.path), filepath.Base(t.path)
	since := seen.Add(-bornMargin).UnixNano()
	for _, name := range readNames(dir) {
		if len(name) <= len(base) || !strings.HasPrefix(name, base) || compressed(name) {
			continue
		}
		path := filepath.Join(dir, name)
		fi, err := os.Lstat(path)
		if err != nil || !fi.Mode().IsRegular() || st.exclude[path] || st.tails[idOf(fi)] != nil || len(st.byID[idOf(fi)]) > 0 {
			continue
		}
		if b := birthAt(path); b == 0 || b < since {
			continue
		}
		if _, err := st.openTail(path, false); err != nil {
			st.warn(fmt.Errorf("follow %s: %w", path, err))
		}
	}
}

// compressed reports whether a rotated file's name says it is compressed:
// its bytes are not lines.
func compressed(name string) bool {
	for _, ext := range []string{".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip", ".Z"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// findMissing looks, at start, for the files of checkpoints that no
// followed path holds now: a file renamed out of the patterns while the pipe
// was stopped is found by its identity in its directory and read on from its
// checkpoint. One that cannot be found is reported as a gap, once: the bytes
// known to be unread, or an unknown amount for the file that was at its path
// when the pipe stopped (what was written to it after that is not known).
func (st *followState) findMissing() error {
	byDir := map[string]map[fileID]string{}
	for _, s := range slices.Clone(st.streams) {
		if s.holders > 0 || s.gone || s.truncated || s.deleted || !st.followed(s.name) {
			continue
		}
		if !s.latest && s.size <= s.offset {
			continue // read to its end and let go
		}
		dir := filepath.Dir(s.name)
		ids, ok := byDir[dir]
		if !ok {
			ids = map[fileID]string{}
			for _, name := range readNames(dir) {
				path := filepath.Join(dir, name)
				if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() {
					ids[idOf(fi)] = path
				}
			}
			byDir[dir] = ids
		}
		if st.tails[s.id] != nil {
			continue // open: another process's to read, or told from it
		}
		if path, ok := ids[s.id]; ok && !st.exclude[path] {
			t, err := st.openTail(path, false)
			if err != nil {
				st.warn(fmt.Errorf("follow %s: %w", path, err))
				continue
			}
			if err := st.match(t); err != nil {
				return err
			}
			if t.refused || t.s != nil {
				continue
			}
			// Another file at that inode, or the same one truncated: not
			// one the patterns name, so not read.
			st.dropTail(t)
		}
		if s.holders > 0 || s.truncated {
			continue
		}
		n := int64(-1)
		detail := fmt.Sprintf("the file read as %s until the last stop is no longer found; what was written to it after byte %d was not read", s.name, s.offset)
		if s.size > s.offset {
			n = s.size - s.offset
			detail = fmt.Sprintf("the file read as %s is no longer found; at least %d bytes of it after byte %d were not read", s.name, n, s.offset)
		} else if !s.latest {
			continue
		}
		s.gone = true
		if err := st.report(s, vibekit.WarnGap, s.name, s.offset, n, detail); err != nil {
			return err
		}
	}
	return nil
}

// dropTail closes a tail that is not to be read.
func (st *followState) dropTail(t *tail) {
	st.unhold(t)
	st.closeTail(t)
	delete(st.tails, t.id)
	if i := slices.Index(st.order, t); i >= 0 {
		st.order = slices.Delete(st.order, i, i+1)
	}
}

// followed reports whether a pattern matches path.
func (st *followState) followed(path string) bool {
	for _, p := range st.patterns {
		if ok, _ := filepath.Match(p, path); ok {
			return true
		}
	}
	return false
}

// watch sets the watched directories, falling back to polling when the
// system will not add more watches.
func (st *followState) watch(dirs []string) error {
	if st.polling {
		return nil
	}
	dirs = sortedUnique(dirs)
	if slices.Equal(dirs, st.watched) {
		return nil
	}
	if err := st.w.Watch(dirs); err != nil {
		if !errors.Is(err, ErrWatchLimit) {
			return err
		}
		st.warn(fmt.Errorf("%w; polling instead", err))
		st.w.Close()
		st.w, st.polling = newPollWatcher(st.pollInterval), true
		return nil
	}
	// Files created before the watch was in place have sent no event.
	st.needScan = true
	st.watched = dirs
	return nil
}

// found handles a path that matches a pattern.
func (st *followState) found(path string) error {
	if st.exclude[path] {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil // gone already, or a dangling link
	}
	if !fi.Mode().IsRegular() {
		if fi.Mode()&os.ModeNamedPipe != 0 {
			st.warn(fmt.Errorf("follow %s: a FIFO (use --fifo to read it)", path))
		}
		return nil
	}
	if t := st.tails[idOf(fi)]; t != nil {
		st.seen(t, path)
		if fi.Size() != t.size {
			t.look = true
		}
		return nil
	}
	t, err := st.openTail(path, true)
	if err != nil {
		st.warn(fmt.Errorf("follow %s: %w", path, err))
		return nil
	}
	st.seen(t, path)
	return nil
}

// openTail opens the file at path as a new tail, current if a followed
// path names it. Its stream is found when it is looked at (see lookMarked).
func (st *followState) openTail(path string, current bool) (*tail, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, err
	}
	id := idOf(fi)
	if t := st.tails[id]; t != nil { // it was replaced between the two looks
		file.Close()
		return t, nil
	}
	now := st.now()
	t := &tail{id: id, f: file, path: path, real: path, size: fi.Size(), grew: now,
		startup: st.startup, startLen: fi.Size(), birth: birthOf(file), look: true}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		t.real = real
	}
	if !current {
		t.gone = now
	}
	st.tails[id] = t
	st.order = append(st.order, t)
	return t, nil
}

// seen notes that the scan in progress found t at path (the first path, if
// links give it several).
func (st *followState) seen(t *tail, path string) {
	if t.scanned {
		return
	}
	t.scanned, t.seenAt = true, st.now()
	if t.path != path { // renamed within the followed paths
		t.path, t.real = path, path
		if real, err := filepath.EvalSymlinks(path); err == nil {
			t.real = real
		}
	}
	if !t.current {
		t.current, t.gone, t.look = true, time.Time{}, true
	}
}

// knownStream is the stream that t's file held before: same device and
// inode, the same birth time where the file system keeps one, not shorter
// than it was, and beginning with the same bytes. A stream whose file was
// deleted is not taken back: its inode may be reused by a new file. A
// stream whose file is now shorter is noted as truncated.
func (st *followState) knownStream(t *tail) *stream {
	cands := st.byID[t.id]
	for i := len(cands) - 1; i >= 0; i-- {
		s := cands[i]
		if s.holders > 0 || s.id != t.id || s.deleted || s.birth != 0 && t.birth != 0 && s.birth != t.birth {
			continue
		}
		head, err := st.head(t, len(s.fp))
		if err != nil {
			continue
		}
		if bytes.Equal(head, s.fp) && t.size >= s.size && t.size >= s.offset {
			return s
		}
		// The same file, shorter or holding other bytes: truncated.
		st.truncatedStream(s, s.size)
	}
	return nil
}

// truncatedStream notes that s's file was truncated when it held size
// bytes: a copy may take s over; bytes not read by then are reported.
func (st *followState) truncatedStream(s *stream, size int64) {
	s.truncated = true
	if size > s.offset && s.lostAt.IsZero() {
		s.lostAt, s.lostEnd = st.now(), size
		st.losing = append(st.losing, s)
	}
}

// match gives a new tail its stream: first its claim, then the stream its
// file held before, if any. The rest is decided when it is looked at.
func (st *followState) match(t *tail) error {
	if t.refused || t.s != nil {
		return nil
	}
	if ok, err := st.claim(t); err != nil || !ok {
		return err
	}
	if s := st.knownStream(t); s != nil {
		st.hold(t, s)
		t.dirty = t.size > s.offset
		s.size = t.size
	}
	return nil
}

// claim asks for t's claim, if claims are kept; false means another process
// reads the file (reported once) or asking failed (told; asked again).
func (st *followState) claim(t *tail) (bool, error) {
	if st.f.Claim == nil || t.claimed {
		return true, nil
	}
	t.claimedAt = st.now()
	cps, from, err := st.f.Claim(t.path, t.id.dev, t.id.ino)
	if err != nil {
		t.refused = true
		if !errors.Is(err, vibekit.ErrClaimed) {
			st.warn(fmt.Errorf("follow %s: %w", t.path, err))
			return false, nil
		}
		if t.reported {
			return false, nil
		}
		t.reported = true
		return false, st.report(nil, vibekit.WarnClaim, t.path, 0, -1,
			fmt.Sprintf("%s not read: %v; it is asked for again every %v", t.path, err, claimRetry))
	}
	t.claimed, t.refused = true, false
	if from != "" {
		st.warn(fmt.Errorf("follow %s: took over the claim of %s", t.path, from))
	}
	// Another process may have read on since this one started.
	for _, c := range cps {
		key := c.SourceKey()
		i := slices.IndexFunc(st.streams, func(s *stream) bool { return s.key == key })
		if i < 0 {
			st.addStream(&stream{key: key, name: c.Source, fp: c.Fingerprint, offset: c.Offset, line: c.Line,
				size: c.Size, id: fileID{c.Dev, c.Ino}, birth: c.Birth, gone: c.Gone})
			continue
		}
		if s := st.streams[i]; s.holders == 0 && s.id == (fileID{c.Dev, c.Ino}) {
			s.fp, s.offset, s.line, s.size, s.birth, s.gone = c.Fingerprint, c.Offset, c.Line, c.Size, c.Birth, c.Gone
		}
	}
	return true, nil
}

// head reads the first n bytes of t's file (fewer if it is shorter).
func (st *followState) head(t *tail, n int) ([]byte, error) {
	buf := make([]byte, n)
	k, err := t.f.ReadAt(buf, 0)
	if err == io.EOF {
		err = nil
	}
	return buf[:k], err
}

// decide gives a new file its stream: the stream of a file it is a copy of,
// or a new one. A copy is told by its first bytes and by what happened to
// the original: a file truncated (as copytruncate does after copying) may
// have a copy, a file still there as it was has none, whatever a new file
// begins with. While the new file's content is still a prefix of such a
// file's first bytes, or the original is not truncated yet, it may be a copy
// being made; then it waits, up to RotateWait after it last grew.
func (st *followState) decide(t *tail) error {
	head, err := st.head(t, FingerprintSize)
	if err != nil {
		st.warn(fmt.Errorf("follow %s: %w", t.path, err))
		return nil
	}
	var best, unsure *stream
	maybe := false
	for _, s := range st.streams {
		// Copies are made beside the original (app.log.1 next to app.log).
		if len(s.fp) == 0 || s.deleted || s.gone || filepath.Dir(s.name) != filepath.Dir(t.path) {
			continue
		}
		o := st.tails[s.id]
		othersCopy := o != nil && o.refused
		if len(head) < len(s.fp) {
			if bytes.HasPrefix(s.fp, head) && (s.holders > 0 || s.truncated || othersCopy) {
				maybe = true
			}
			continue
		}
		if !bytes.HasPrefix(head, s.fp) {
			continue
		}
		if othersCopy {
			// A copy of a file another process reads is that process's:
			// it is asked for again later, as the original is.
			if t.claimed && st.f.Unclaim != nil {
				st.f.Unclaim(t.id.dev, t.id.ino)
			}
			t.claimed, t.refused, t.claimedAt = false, true, st.now()
			return nil
		}
		if s.holders > 0 {
			// Its file is still followed, not truncated (yet): t is another
			// file, unless the original is truncated soon.
			if !st.deletedHolder(s) {
				maybe = true
			}
			continue
		}
		if t.size < s.offset {
			continue // not a copy of what was read
		}
		if !s.truncated {
			// The original was let go, or is not found. At start, the file
			// last read at that path may have been copied and deleted while
			// the pipe was stopped: t is read, and the re-read reported.
			if t.startup && s.latest && len(s.fp) >= copyMinFingerprint {
				unsure = s
			}
			continue
		}
		if best == nil || len(s.fp) > len(best.fp) || len(s.fp) == len(best.fp) && s.offset > best.offset {
			best = s
		}
	}
	switch {
	case best != nil:
		// A copy: its lines up to the stream's offset were read from the
		// original. Record where the stream is now held.
		st.hold(t, best)
		t.dirty = t.size > best.offset
		return st.mark(t)
	case maybe && !st.finishing && st.now().Sub(t.grew) < st.rotateWait:
		return nil
	}
	offset := int64(0)
	if t.startup && st.f.FromEnd && unsure == nil {
		if offset, err = lastLineEnd(t.f, t.startLen); err != nil {
			st.warn(fmt.Errorf("follow %s: %w", t.path, err))
			return nil
		}
	}
	s := st.newStream(t, t.path, offset)
	s.fp = head
	st.hold(t, s)
	t.dirty = t.size > offset
	if unsure != nil {
		return st.report(s, vibekit.WarnReread, t.path, 0, min(unsure.offset, t.size),
			fmt.Sprintf("%s begins as %s did, which is no longer found: it may be its copy; read from its start, its first %d bytes may be stored twice", t.path, unsure.name, min(unsure.offset, t.size)))
	}
	if offset > 0 {
		return st.mark(t)
	}
	return st.forgotten(t, s, head)
}

// forgotten reports a file read from its start whose checkpoint was deleted
// from the store: its lines up to that checkpoint are stored again.
func (st *followState) forgotten(t *tail, s *stream, head []byte) error {
	for i, f := range st.forgot {
		if f.Dev != t.id.dev || f.Ino != t.id.ino || f.Birth != 0 && t.birth != 0 && f.Birth != t.birth ||
			!bytes.HasPrefix(head, f.Fingerprint) && !bytes.HasPrefix(f.Fingerprint, head) {
			continue
		}
		st.forgot = slices.Delete(st.forgot, i, i+1)
		n := min(f.Offset, t.size)
		w := &vibekit.Warning{Kind: vibekit.WarnReread, Source: t.path, Key: s.key, Bytes: n, Time: st.now().UnixMilli(), Forgotten: f.ID,
			Detail: fmt.Sprintf("%s is read again from 0 although rows from it exist in the store: its checkpoint (%d lines, %d bytes) was deleted", t.path, f.Line, f.Offset)}
		return st.emit(Line{Source: s.name, Origin: st.origin(t), Mark: true, Warn: w})
	}
	return nil
}

// deletedHolder reports whether a file that holds s has been deleted (the
// scan that finds its successor may come before the look that would tell).
func (st *followState) deletedHolder(s *stream) bool {
	for _, t := range st.order {
		if t.s != s {
			continue
		}
		if fi, err := t.f.Stat(); err == nil && nlinkOf(fi) == 0 {
			s.deleted = true
			return true
		}
	}
	return false
}

// mark emits t's stream position, to be committed without a line.
func (st *followState) mark(t *tail) error {
	s := t.s
	return st.emit(Line{Source: s.name, Origin: st.origin(t), Mark: true, Num: s.line, Offset: s.offset, End: s.offset})
}

func (st *followState) origin(t *tail) Origin {
	return Origin{Key: t.s.key, Kind: "file", Dev: t.id.dev, Ino: t.id.ino, Fingerprint: t.s.fp, Size: max(t.size, t.readPos), Birth: t.birth, Gone: t.s.gone}
}

// note records what an event asks to look at.
func (st *followState) note(ev Event) {
	if ev.Path == "" {
		st.lookAll, st.needScan = true, true
		return
	}
	t := st.byPath[ev.Path]
	if t != nil {
		t.look = true
	}
	if ev.Entries && t != nil {
		st.needScan = true
		return
	}
	if t == nil {
		for _, p := range st.patterns {
			if mayMatch(p, ev.Path) {
				st.needScan = true
				return
			}
		}
	}
}

// lookMarked looks at the files events or ticks named. New files are
// matched by identity first, all of them, so that a file that held a stream
// takes it back before any other file can be taken for its copy.
func (st *followState) lookMarked() error {
	for _, t := range st.order {
		if t.look && t.s == nil && !t.refused {
			if err := st.match(t); err != nil {
				return err
			}
		}
	}
	for _, t := range st.order {
		if t.look {
			t.look = false
			if err := st.lookAt(t); err != nil {
				return err
			}
		}
	}
	return nil
}

// lookAt checks t's file for growth, truncation and deletion.
func (st *followState) lookAt(t *tail) error {
	fi, err := t.f.Stat()
	if err != nil {
		st.warn(fmt.Errorf("follow %s: %w", t.path, err))
		return nil
	}
	size, now := fi.Size(), st.now()
	lastLook := t.lookedAt
	t.lookedAt = now
	if nlinkOf(fi) == 0 && t.s != nil {
		t.s.deleted = true
	}
	if size > t.size {
		t.grew = now
	}
	if t.refused {
		t.size = size
		if now.Sub(t.claimedAt) < claimRetry {
			return nil
		}
		t.refused = false
		if err := st.match(t); err != nil || t.refused || t.s != nil {
			return err
		}
	}
	if t.s == nil {
		t.size = size
		return st.decide(t)
	}
	s := t.s
	truncated := size < t.size
	if !truncated && size != t.size && len(s.fp) > 0 {
		// Truncated and written again between two looks: the first bytes differ.
		head, err := st.head(t, FingerprintSize)
		if err != nil {
			st.warn(fmt.Errorf("follow %s: %w", t.path, err))
			return nil
		}
		if !bytes.HasPrefix(head, s.fp) {
			truncated = true
		} else if len(head) > len(s.fp) {
			s.fp = head
		}
	}
	old := max(t.size, t.readPos)
	t.size = size
	if truncated {
		// What was not read is gone (or in a copy, which may take over the
		// old stream; else it is reported). The file starts a stream of
		// its own, at 0.
		name := s.name
		st.unhold(t)
		st.truncatedStream(s, old)
		if old > s.offset && !lastLook.IsZero() {
			st.findRotated(t, lastLook) // a copy outside the patterns holds the rest
		}
		st.hold(t, st.newStream(t, name, 0))
		head, _ := st.head(t, FingerprintSize)
		t.s.fp, t.readPos, t.grew = head, 0, now
		t.dirty = size > 0
		return nil
	}
	if len(s.fp) < FingerprintSize && size > int64(len(s.fp)) {
		if head, err := st.head(t, FingerprintSize); err == nil && bytes.HasPrefix(head, s.fp) {
			s.fp = head
		}
	}
	s.size = size
	if size > s.offset && (t.sp == nil || size > t.readPos) {
		t.dirty = true
	}
	return nil
}

// readRound gives each file that may hold unread bytes one turn; busy
// reports whether some still may.
func (st *followState) readRound() (busy bool, err error) {
	for _, t := range st.order {
		if !t.dirty || t.s == nil {
			continue
		}
		if err := st.read(t); err != nil {
			return false, err
		}
		if st.ctx.Err() != nil {
			return false, nil
		}
		busy = busy || t.dirty
	}
	return busy, nil
}

// read emits up to turnBytes of t's complete lines.
func (st *followState) read(t *tail) error {
	s := t.s
	if t.sp == nil || t.sp.Offset() != s.offset {
		// Start, or take over from another holder of the stream.
		if _, err := t.f.Seek(s.offset, io.SeekStart); err != nil {
			st.warn(fmt.Errorf("follow %s: %w", t.path, err))
			t.dirty = false
			return nil
		}
		t.readPos = s.offset
		if t.sp == nil {
			if n := len(st.free); n > 0 {
				t.sp, st.free = st.free[n-1], st.free[:n-1]
			} else {
				t.sp = NewSplitter(nil, "", st.f.MaxLine, 0, 0)
				t.sp.SkipNUL()
			}
		}
		t.sp.Reset(t, s.name, s.offset, s.line)
	}
	for n := int64(0); n < turnBytes; {
		line, err := t.sp.Next()
		if err != nil {
			t.sp.Resume()
			t.dirty = false
			if !IsEOF(err) {
				st.warn(fmt.Errorf("follow %s: %w", t.path, err))
			}
			break
		}
		line.Source, line.Origin = s.name, st.origin(t)
		s.offset, s.line = line.End, line.Num
		n += line.End - line.Offset
		if line.Gap {
			// Not a line: a hole of NULs, as a writer that is not in append
			// mode leaves when it writes on at its old offset after a
			// truncation. Skipped, and reported.
			line.Mark, line.Gap = true, false
			line.Warn = &vibekit.Warning{Kind: vibekit.WarnGap, Source: s.name, Key: s.key, Offset: line.Offset, Bytes: line.Length,
				Time: st.now().UnixMilli(), Detail: fmt.Sprintf("%d NUL bytes at byte %d of %s skipped: a hole, as a writer leaves that goes on at its old offset after the file was truncated", line.Length, line.Offset, t.path)}
		}
		if err := st.emit(line); err != nil {
			return err
		}
		if st.ctx.Err() != nil {
			return nil
		}
	}
	if t.readPos > t.size {
		t.size, t.grew = t.readPos, st.now()
	}
	if !t.sp.Holding() {
		st.dropSplitter(t)
	}
	return nil
}

// release lets go of files that are no longer at a followed path, read to
// their end and idle for RotateWait. An unfinished last line will not be
// completed now; it is emitted as it is. It also reports the bytes that
// truncated files held unread and no copy took over.
func (st *followState) release() error {
	now := st.now()
	kept := st.order[:0]
	for _, t := range st.order {
		idle := now.Sub(t.grew) >= st.rotateWait && now.Sub(t.gone) >= st.rotateWait
		if t.current || t.dirty || !idle {
			kept = append(kept, t)
			continue
		}
		if t.refused { // another process's to read
			st.closeTail(t)
			delete(st.tails, t.id)
			continue
		}
		if t.s == nil {
			if err := st.decide(t); err != nil {
				return err
			}
		}
		if t.s == nil || t.dirty {
			kept = append(kept, t)
			continue
		}
		s := t.s
		if t.sp != nil {
			if line, ok := t.sp.Partial(); ok {
				line.Source, line.Origin = s.name, st.origin(t)
				s.offset, s.line = line.End, line.Num
				if err := st.emit(line); err != nil {
					return err
				}
			}
		}
		if s.deleted && s.holders == 1 {
			// Read to its end and deleted: gone, and not to be looked for
			// after a restart.
			s.gone = true
		}
		o := st.origin(t)
		o.Release = t.claimed
		if err := st.emit(Line{Source: s.name, Origin: o, Mark: true, Num: s.line, Offset: s.offset, End: s.offset}); err != nil {
			return err
		}
		t.claimed = false
		st.unhold(t)
		st.closeTail(t)
		delete(st.tails, t.id)
	}
	clear(st.order[len(kept):])
	st.order = kept
	return st.reportLost(now)
}

// reportLost reports, once RotateWait has passed since a file was
// truncated, the bytes it held unread that no copy has read since.
func (st *followState) reportLost(now time.Time) error {
	kept := st.losing[:0]
	for _, s := range st.losing {
		if s.holders > 0 || now.Sub(s.lostAt) < st.rotateWait {
			kept = append(kept, s)
			continue
		}
		if n := s.lostEnd - s.offset; n > 0 {
			detail := fmt.Sprintf("%s was truncated with at least %d bytes after byte %d not read, and no copy of them was found", s.name, n, s.offset)
			at := s.offset
			s.offset = s.lostEnd
			if err := st.report(s, vibekit.WarnGap, s.name, at, n, detail); err != nil {
				return err
			}
		}
		s.lostAt = time.Time{}
	}
	clear(st.losing[len(kept):])
	st.losing = kept
	return nil
}

// lastLineEnd returns the offset after the last newline in f's first size
// bytes, 0 if there is none.
func lastLineEnd(f *os.File, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		start := max(0, end-int64(len(buf)))
		n, err := f.ReadAt(buf[:end-start], start)
		if err != nil && err != io.EOF {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

func idOf(fi os.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{uint64(st.Dev), st.Ino}
	}
	return fileID{}
}

func nlinkOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

func sortedUnique(s []string) []string {
	out := append([]string(nil), s...)
	slices.Sort(out)
	j := 0
	for i, v := range out {
		if i == 0 || v != out[j-1] {
			out[j] = v
			j++
		}
	}
	return out[:j]
}
