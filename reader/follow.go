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

// turnBytes is how much is read from one file before the others get a turn.
const turnBytes = 4 << 20

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
// A file is identified by device and inode plus a fingerprint of its first
// bytes. A rotated or deleted file is read to its end and kept open for
// RotateWait after it last grew, for late writes; then an unfinished last
// line is emitted as it is and the file is let go. Partial lines of files
// still followed are held until completed, so checkpoints fall on line
// boundaries.
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
	Warn func(error)

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
	st.startup = false
	tick := time.NewTicker(st.pollInterval)
	defer tick.Stop()
	lastFull := time.Now()
	finish := f.Finish
	for {
		if err := st.readAll(); err != nil || ctx.Err() != nil {
			return err
		}
		if st.finishing {
			return nil
		}
		if err := st.release(); err != nil {
			return err
		}
		select {
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
	holders      int
	deleted      bool // its file was deleted: no later file is its copy
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

	startup, finishing, needScan, lookAll bool
}

func (f *Follower) newState(ctx context.Context, emit func(Line) error) (*followState, error) {
	st := &followState{
		f: f, ctx: ctx, emit: emit, now: time.Now,
		pollInterval: f.PollInterval, rotateWait: f.RotateWait,
		tails: map[fileID]*tail{}, byPath: map[string]*tail{}, byID: map[fileID][]*stream{},
		warned: map[string]bool{}, startup: true, exclude: map[string]bool{},
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
	for _, c := range f.Known {
		if c.Kind != "file" {
			continue
		}
		s := &stream{key: c.SourceKey(), name: c.Source, fp: c.Fingerprint, offset: c.Offset, line: c.Line,
			size: c.Size, id: fileID{c.Dev, c.Ino}}
		st.addStream(s)
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
		t.f.Close()
	}
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
		name: name, offset: offset, size: t.size, id: t.id,
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
	for _, t := range st.order {
		if t.scanned {
			st.byPath[t.path] = t
			if t.real != t.path {
				st.byPath[t.real] = t
				dirs = append(dirs, filepath.Dir(t.real)) // writes through a link land there
			}
		} else if t.current {
			t.current, t.gone, t.look = false, now, true
		}
		t.scanned = false
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
	file, err := os.Open(path)
	if err != nil {
		st.warn(fmt.Errorf("follow %s: %w", path, err))
		return nil
	}
	if fi, err = file.Stat(); err != nil {
		file.Close()
		st.warn(fmt.Errorf("follow %s: %w", path, err))
		return nil
	}
	id := idOf(fi)
	if t := st.tails[id]; t != nil { // it was replaced between the two looks
		file.Close()
		st.seen(t, path)
		return nil
	}
	now := st.now()
	t := &tail{id: id, f: file, path: path, real: path, size: fi.Size(), grew: now,
		startup: st.startup, startLen: fi.Size()}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		t.real = real
	}
	st.tails[id] = t
	st.order = append(st.order, t)
	st.seen(t, path)
	if s := st.knownStream(t); s != nil {
		st.hold(t, s)
		t.dirty = t.size > s.offset
		s.size = t.size
		return nil
	}
	return st.decide(t)
}

// seen notes that the scan in progress found t at path (the first path, if
// links give it several).
func (st *followState) seen(t *tail, path string) {
	if t.scanned {
		return
	}
	t.scanned = true
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
// inode, not shorter than it was, and beginning with the same bytes.
func (st *followState) knownStream(t *tail) *stream {
	cands := st.byID[t.id]
	for i := len(cands) - 1; i >= 0; i-- {
		s := cands[i]
		if s.holders > 0 || s.id != t.id || t.size < s.size || t.size < s.offset {
			continue
		}
		head, err := st.head(t, len(s.fp))
		if err == nil && bytes.Equal(head, s.fp) {
			return s
		}
	}
	return nil
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
// or a new one. While the file's content is still a prefix of a known
// file's first bytes, it may be a copy being written; then it waits, up to
// RotateWait after it last grew.
func (st *followState) decide(t *tail) error {
	head, err := st.head(t, FingerprintSize)
	if err != nil {
		st.warn(fmt.Errorf("follow %s: %w", t.path, err))
		return nil
	}
	var best *stream
	maybe := false
	for _, s := range st.streams {
		// Copies are made beside the original (app.log.1 next to app.log).
		if len(s.fp) < copyMinFingerprint || s.deleted || filepath.Dir(s.name) != filepath.Dir(t.path) {
			continue
		}
		if len(head) < len(s.fp) {
			if bytes.HasPrefix(s.fp, head) {
				maybe = true
			}
			continue
		}
		if !bytes.HasPrefix(head, s.fp) {
			continue
		}
		if s.holders == 0 && t.size < s.offset {
			continue // not a copy of what was read
		}
		if st.deletedHolder(s) {
			continue // deleted, then created again: a new file
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
	case maybe && t.current && !st.finishing && st.now().Sub(t.grew) < st.rotateWait:
		return nil
	}
	offset := int64(0)
	if t.startup && st.f.FromEnd {
		if offset, err = lastLineEnd(t.f, t.startLen); err != nil {
			st.warn(fmt.Errorf("follow %s: %w", t.path, err))
			return nil
		}
	}
	s := st.newStream(t, t.path, offset)
	s.fp = head
	st.hold(t, s)
	t.dirty = t.size > offset
	if offset > 0 {
		return st.mark(t)
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
	return Origin{Key: t.s.key, Kind: "file", Dev: t.id.dev, Ino: t.id.ino, Fingerprint: t.s.fp, Size: max(t.size, t.readPos)}
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

// lookMarked looks at the files events or ticks named.
func (st *followState) lookMarked() error {
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
	if nlinkOf(fi) == 0 && t.s != nil {
		t.s.deleted = true
	}
	if size > t.size {
		t.grew = now
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
	t.size = size
	if truncated {
		// What was not read is gone (or in a copy, which may take over the
		// old stream). The file starts a stream of its own, at 0.
		name := s.name
		st.unhold(t)
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

// readAll reads the files that may hold unread bytes, a turn each, until
// none does.
func (st *followState) readAll() error {
	for {
		busy := false
		for _, t := range st.order {
			if !t.dirty || t.s == nil {
				continue
			}
			if err := st.read(t); err != nil {
				return err
			}
			if st.ctx.Err() != nil {
				return nil
			}
			busy = busy || t.dirty
		}
		if !busy {
			return nil
		}
	}
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
// completed now; it is emitted as it is.
func (st *followState) release() error {
	now := st.now()
	kept := st.order[:0]
	for _, t := range st.order {
		idle := now.Sub(t.grew) >= st.rotateWait && now.Sub(t.gone) >= st.rotateWait
		if t.current || t.dirty || !idle {
			kept = append(kept, t)
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
		if t.sp != nil {
			if line, ok := t.sp.Partial(); ok {
				s := t.s
				line.Source, line.Origin = s.name, st.origin(t)
				s.offset, s.line = line.End, line.Num
				if err := st.emit(line); err != nil {
					return err
				}
			}
		}
		st.unhold(t)
		t.f.Close()
		delete(st.tails, t.id)
	}
	clear(st.order[len(kept):])
	st.order = kept
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
