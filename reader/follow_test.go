package reader

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// forEachWatcher runs test once with fsnotify and once with polling.
func forEachWatcher(t *testing.T, test func(t *testing.T, poll bool)) {
	t.Run("fsnotify", func(t *testing.T) { test(t, false) })
	t.Run("poll", func(t *testing.T) { test(t, true) })
}

// sink collects emitted lines; every line counts as committed at once, and
// its checkpoint is the latest per key.
type sink struct {
	// gate, when set, may hold a line back until the channel it returns is
	// closed: the follower stops there, with lines read and not emitted.
	gate func(Line) <-chan struct{}

	mu    sync.Mutex
	lines []Line
	cps   map[string]vibekit.Checkpoint
	warns []vibekit.Warning
}

func (s *sink) emit(l Line) error {
	if s.gate != nil {
		if wait := s.gate(l); wait != nil {
			<-wait
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !l.Mark {
		s.lines = append(s.lines, l)
	}
	if l.Warn != nil {
		s.warns = append(s.warns, *l.Warn)
	}
	if l.Kind == "" {
		return nil // a report about no position
	}
	if s.cps == nil {
		s.cps = map[string]vibekit.Checkpoint{}
	}
	s.cps[l.Key] = vibekit.Checkpoint{Source: l.Source, Key: l.Key, Kind: l.Kind, Dev: l.Dev, Ino: l.Ino,
		Fingerprint: l.Fingerprint, Offset: l.End, Line: l.Num, Size: l.Size, Birth: l.Birth, Gone: l.Gone}
	return nil
}

// data returns the lines emitted so far.
func (s *sink) data() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.lines {
		out = append(out, string(l.Data))
	}
	return out
}

// fromInode counts the lines read from the file with inode ino.
func (s *sink) fromInode(ino uint64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.lines {
		if l.Ino == ino {
			n++
		}
	}
	return n
}

func (s *sink) known() []vibekit.Checkpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []vibekit.Checkpoint
	for _, c := range s.cps {
		out = append(out, c)
	}
	return out
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline; what describes the condition and, when it is called again at the
// end, what was seen instead.
func waitFor(t *testing.T, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitLines waits until the sink holds exactly want (in any order).
func waitLines(t *testing.T, s *sink, want ...string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	var got []string
	waitFor(t, func() string { return fmt.Sprintf("lines %q; got %q", want, got) }, func() bool {
		got = slices.Sorted(slices.Values(s.data()))
		return slices.Equal(got, want)
	})
}

type runner interface {
	Run(ctx context.Context, emit func(Line) error) error
}

// start runs f until the test ends or stop is called.
func start(t *testing.T, f runner, s *sink) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, s.emit) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func follower(poll bool, patterns ...string) *Follower {
	return &Follower{Patterns: patterns, Poll: poll, PollInterval: 20 * time.Millisecond, RotateWait: 200 * time.Millisecond}
}

func appendFile(t *testing.T, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFollower_GlobAppendsAndNewFiles(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, poll bool) {
		dir := t.TempDir()
		appendFile(t, filepath.Join(dir, "a.log"), "a1\na2\n")
		appendFile(t, filepath.Join(dir, "skip.txt"), "not followed\n")
		s := &sink{}
		start(t, follower(poll, filepath.Join(dir, "*.log")), s)
		waitLines(t, s, "a1", "a2")
		appendFile(t, filepath.Join(dir, "a.log"), "a3\n")
		appendFile(t, filepath.Join(dir, "b.log"), "b1\n")
		waitLines(t, s, "a1", "a2", "a3", "b1")
		for _, l := range s.lines {
			if l.Kind != "file" || l.Key == "" || l.Ino == 0 || !strings.HasPrefix(l.Source, dir) {
				t.Errorf("line %q: origin %+v, source %q", l.Data, l.Origin, l.Source)
			}
		}
	})
}

func TestFollower_ResumeAndFromEnd(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, poll bool) {
		dir := t.TempDir()
		path := filepath.Join(dir, "a.log")
		appendFile(t, path, "old1\nold2\npart")
		s := &sink{}
		f := follower(poll, path)
		f.FromEnd = true
		stop := start(t, f, s)
		waitFor(t, func() string { return "the start position" }, func() bool { return len(s.known()) == 1 })
		// From the end means after the last complete line: the unfinished
		// one is read once it is completed.
		appendFile(t, path, "ial\nnew1\n")
		waitLines(t, s, "partial", "new1")
		stop()
		appendFile(t, path, "while-stopped\n")
		s2 := &sink{}
		f2 := follower(poll, path)
		f2.FromEnd, f2.Known = true, s.known()
		start(t, f2, s2)
		waitLines(t, s2, "while-stopped")
		if got := s2.lines[0].Num; got != s.lines[1].Num+1 {
			t.Errorf("line number after restart = %d, want %d", got, s.lines[1].Num+1)
		}
	})
}

func TestFollower_FinishReadsToTheEnd(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	appendFile(t, path, strings.Repeat("x\n", 1000)+"held")
	finish := make(chan struct{})
	close(finish)
	s := &sink{}
	f := follower(false, path)
	f.Finish = finish
	if err := f.Run(context.Background(), s.emit); err != nil {
		t.Fatal(err)
	}
	if got := len(s.data()); got != 1000 {
		t.Fatalf("read %d lines before finishing, want 1000 (the unfinished one held)", got)
	}
}

func TestWalkPattern(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"logs/a/x.log", "logs/b/x.log", "logs/b/y.txt", "other/x.log"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		appendFile(t, filepath.Join(dir, p), "")
	}
	matches, dirs := walkPattern(filepath.Join(dir, "logs/*/x.log"))
	if want := []string{filepath.Join(dir, "logs/a/x.log"), filepath.Join(dir, "logs/b/x.log")}; !slices.Equal(matches, want) {
		t.Errorf("matches = %q, want %q", matches, want)
	}
	slices.Sort(dirs)
	if want := []string{filepath.Join(dir, "logs"), filepath.Join(dir, "logs/a"), filepath.Join(dir, "logs/b")}; !slices.Equal(dirs, want) {
		t.Errorf("dirs = %q, want %q", dirs, want)
	}
	// A directory that does not exist yet is awaited in its deepest ancestor.
	matches, dirs = walkPattern(filepath.Join(dir, "later/deeper/*.log"))
	if len(matches) != 0 || !slices.Equal(dirs, []string{dir}) {
		t.Errorf("pattern under a missing directory: matches %q, dirs %q", matches, dirs)
	}
	if !mayMatch(filepath.Join(dir, "logs/*/x.log"), filepath.Join(dir, "logs/c")) || mayMatch(filepath.Join(dir, "logs/*/x.log"), filepath.Join(dir, "other/x.log")) {
		t.Error("mayMatch: wrong answer for a directory on the way or a path off it")
	}
}

func TestFIFO_WritersOneAfterAnother(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vk.fifo")
	s := &sink{}
	start(t, &FIFO{Path: path}, s)
	write := func(data string) {
		t.Helper()
		f, err := os.OpenFile(path, os.O_WRONLY, 0) // blocks until the reader is there
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(data); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	waitFor(t, func() string { return "the FIFO" }, func() bool { _, err := os.Stat(path); return err == nil })
	var want []string
	for w := range 100 {
		line := fmt.Sprintf("writer %d", w)
		want = append(want, line+" a", line+" b")
		write(line + " a\n" + line + " b\n")
	}
	waitLines(t, s, want...)
	// A writer that closes with an unfinished line: once the reader saw it
	// go (no writer left), the line stands alone.
	write("unfinished")
	waitLines(t, s, append(want, "unfinished")...)
	write("next\n")
	waitLines(t, s, append(want, "unfinished", "next")...)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("FIFO %v, %v; want a FIFO with mode 0600", fi.Mode(), err)
	}
	if l := s.lines[len(s.lines)-1]; l.Num != 202 || l.Kind != "fifo" || l.Source != path {
		t.Errorf("last line: num %d kind %q source %q", l.Num, l.Kind, l.Source)
	}
}

func TestFIFO_NotAFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain")
	appendFile(t, path, "x\n")
	err := (&FIFO{Path: path}).Run(context.Background(), (&sink{}).emit)
	if err == nil || !strings.Contains(err.Error(), "not a FIFO") {
		t.Fatalf("Run on a regular file: %v", err)
	}
}

// gateAt makes the sink stop at the line data, once; reached is closed when
// the follower is held there, and closing release lets it go on.
func gateAt(s *sink, data string) (reached, release chan struct{}) {
	reached, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.gate = func(l Line) <-chan struct{} {
		if string(l.Data) != data {
			return nil
		}
		var wait <-chan struct{}
		once.Do(func() {
			close(reached)
			wait = release
		})
		return wait
	}
	return reached, release
}

func numbered(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

func appendLines(t *testing.T, path string, lines []string) {
	t.Helper()
	appendFile(t, path, strings.Join(lines, "\n")+"\n")
}

// The follower is held with lines read but not emitted while the file is
// rotated; those lines still come once, from wherever they are.
func TestFollower_RotationWithUnreadLines(t *testing.T) {
	rotations := map[string]func(t *testing.T, path string){
		"rename": func(t *testing.T, path string) {
			os.Rename(path, path+".1")
			appendLines(t, path+".1", numbered("late", 1, 5)) // the writer is not done with it
		},
		"copytruncate": func(t *testing.T, path string) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			cp, err := os.Create(path + ".1")
			if err != nil {
				t.Fatal(err)
			}
			for ; len(data) > 0; data = data[min(len(data), 4096):] {
				cp.Write(data[:min(len(data), 4096)])
			}
			cp.Close()
			os.Truncate(path, 0)
		},
		"delete": func(t *testing.T, path string) { os.Remove(path) },
	}
	for name, rotate := range rotations {
		t.Run(name, func(t *testing.T) {
			forEachWatcher(t, func(t *testing.T, poll bool) {
				dir := t.TempDir()
				path := filepath.Join(dir, "app.log")
				appendLines(t, path, numbered("line", 1, 100))
				s := &sink{}
				start(t, follower(poll, path+"*"), s)
				waitLines(t, s, numbered("line", 1, 100)...)
				reached, release := gateAt(s, "line-101")
				// More than the reader buffers: the rest must come from the file.
				appendLines(t, path, numbered("line", 101, 20000))
				<-reached
				rotate(t, path)
				want := numbered("line", 1, 20000)
				if name != "delete" {
					appendLines(t, path, numbered("new", 1, 10))
					want = append(want, numbered("new", 1, 10)...)
				}
				if name == "rename" {
					want = append(want, numbered("late", 1, 5)...)
				}
				close(release)
				waitLines(t, s, want...)
				if name == "copytruncate" {
					var st syscall.Stat_t
					syscall.Stat(path+".1", &st)
					if n := s.fromInode(st.Ino); n == 0 {
						t.Errorf("no line was read from the copy")
					}
				}
				if name == "delete" {
					waitFor(t, func() string { return "the deleted file to be let go" }, func() bool {
						return !fdOpenTo(path + " (deleted)")
					})
				}
			})
		})
	}
}

// fdOpenTo reports whether this process has a descriptor open on target.
func fdOpenTo(target string) bool {
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && l == target {
			return true
		}
	}
	return false
}

// failingWatcher refuses watches, as inotify does past its limits.
type failingWatcher struct{ events chan Event }

func (w *failingWatcher) Watch([]string) error {
	return fmt.Errorf("%w: watch: no space left on device", ErrWatchLimit)
}
func (w *failingWatcher) Events() <-chan Event { return w.events }
func (w *failingWatcher) Close() error         { return nil }

func TestFollower_FallsBackToPolling(t *testing.T) {
	cases := map[string]func() (Watcher, error){
		"no watcher": func() (Watcher, error) { return nil, fmt.Errorf("%w: too many open files", ErrWatchLimit) },
		"no watch":   func() (Watcher, error) { return &failingWatcher{events: make(chan Event)}, nil },
	}
	for name, newWatcher := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "a.log")
			appendFile(t, path, "a1\n")
			var mu sync.Mutex
			var warnings []string
			f := follower(false, path)
			f.newWatcher = newWatcher
			f.Warn = func(err error) {
				mu.Lock()
				defer mu.Unlock()
				warnings = append(warnings, err.Error())
			}
			s := &sink{}
			start(t, f, s)
			waitLines(t, s, "a1")
			appendFile(t, path, "a2\n")
			waitLines(t, s, "a1", "a2")
			mu.Lock()
			defer mu.Unlock()
			if len(warnings) != 1 || !strings.Contains(warnings[0], "polling instead") {
				t.Errorf("warnings = %q, want one saying it polls", warnings)
			}
		})
	}
}

func TestFollower_ExcludesTheDatabase(t *testing.T) {
	dir := t.TempDir()
	appendFile(t, filepath.Join(dir, "a.log"), "a1\n")
	appendFile(t, filepath.Join(dir, "t.db"), "not to be read\n")
	finish := make(chan struct{})
	close(finish)
	s := &sink{}
	f := follower(false, filepath.Join(dir, "*"))
	f.Exclude, f.Finish = []string{filepath.Join(dir, "t.db")}, finish
	if err := f.Run(context.Background(), s.emit); err != nil {
		t.Fatal(err)
	}
	if got := s.data(); !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("read %q, want only a.log's line", got)
	}
}

// A file deleted and created again with the same first bytes (a fixed
// banner, longer than a copy needs) is a new file, not a copy of the old.
func TestFollower_RecreatedWithSameStart(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, poll bool) {
		dir := t.TempDir()
		path := filepath.Join(dir, "app.log")
		banner := "# app 1.2.3 started; format: time level message; see docs for details"
		appendFile(t, path, banner+"\n")
		s := &sink{}
		start(t, follower(poll, path), s)
		waitLines(t, s, banner)
		// Replaced in one step (written aside, renamed over it): every look
		// sees the new file at the path while the old one is deleted.
		appendFile(t, path+".tmp", banner+"\nnew-1\nnew-2\n") // longer than what was read
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
		waitLines(t, s, banner, banner, "new-1", "new-2")
	})
}

// warnings returns the reports emitted so far.
func (s *sink) warnings() []vibekit.Warning {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.warns)
}

// waitWarning waits for a report of kind about path, and returns it.
func waitWarning(t *testing.T, s *sink, kind, path string) vibekit.Warning {
	t.Helper()
	var w vibekit.Warning
	waitFor(t, func() string { return fmt.Sprintf("a %s report on %s; got %+v", kind, path, s.warnings()) }, func() bool {
		for _, x := range s.warnings() {
			if x.Kind == kind && x.Source == path {
				w = x
				return true
			}
		}
		return false
	})
	return w
}

// Files rotated twice between two looks (the follower is held meanwhile),
// the rotated names outside the pattern: the file that was at the path
// only in between is found beside it and read.
func TestFollower_RotationFasterThanLooks(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, poll bool) {
		dir := t.TempDir()
		path := filepath.Join(dir, "app.log")
		appendLines(t, path, numbered("a", 1, 10))
		s := &sink{}
		start(t, follower(poll, path), s)
		waitLines(t, s, numbered("a", 1, 10)...)
		reached, release := gateAt(s, "a-11")
		appendLines(t, path, numbered("a", 11, 20))
		<-reached
		// A -> app.log.1; B at app.log; A -> app.log.2, B -> app.log.1; C.
		os.Rename(path, path+".1")
		appendLines(t, path, numbered("b", 1, 30))
		os.Rename(path+".1", path+".2")
		os.Rename(path, path+".1")
		appendLines(t, path, numbered("c", 1, 5))
		close(release)
		waitLines(t, s, slices.Concat(numbered("a", 1, 20), numbered("b", 1, 30), numbered("c", 1, 5))...)
	})
}

// A new file that begins with the same 2 KiB as a followed one, which is
// still there as it was, is another file: all of its lines are read.
func TestFollower_SameStartIsNotACopy(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, poll bool) {
		dir := t.TempDir()
		header := numbered(strings.Repeat("h", 60), 1, 40) // 2.5 KiB
		a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
		appendLines(t, a, append(slices.Clone(header), "a-1"))
		s := &sink{}
		start(t, follower(poll, filepath.Join(dir, "*.log")), s)
		waitLines(t, s, append(slices.Clone(header), "a-1")...)
		appendLines(t, b, append(slices.Clone(header), "b-1", "b-2"))
		waitLines(t, s, slices.Concat(header, header, []string{"a-1", "b-1", "b-2"})...)
	})
}

// A writer that is not in append mode goes on at its old offset after the
// file was truncated: the hole of NULs is skipped and reported, not stored.
func TestFollower_NULHoleIsAGap(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, poll bool) {
		dir := t.TempDir()
		path := filepath.Join(dir, "app.log")
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644) // not O_APPEND
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		before := strings.Join(numbered("before", 1, 10), "\n") + "\n"
		f.WriteString(before)
		s := &sink{}
		start(t, follower(poll, path), s)
		waitLines(t, s, numbered("before", 1, 10)...)
		if err := f.Truncate(0); err != nil { // as copytruncate does
			t.Fatal(err)
		}
		f.WriteString("after-1\n") // at the writer's offset: len(before)
		waitLines(t, s, append(numbered("before", 1, 10), "after-1")...)
		w := waitWarning(t, s, vibekit.WarnGap, path)
		if w.Offset != 0 || w.Bytes != int64(len(before)) {
			t.Errorf("gap at %d of %d bytes, want at 0 of %d", w.Offset, w.Bytes, len(before))
		}
	})
}

// copytruncate of a file shorter than a copy needs to be told by its first
// bytes alone: its lines are not read again from the copy.
func TestFollower_SmallFileCopyTruncate(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, poll bool) {
		dir := t.TempDir()
		path := filepath.Join(dir, "app.log")
		appendLines(t, path, []string{"x-1", "x-2"})
		s := &sink{}
		start(t, follower(poll, path+"*"), s)
		waitLines(t, s, "x-1", "x-2")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(path+".1", data, 0o644)
		os.Truncate(path, 0)
		appendLines(t, path, []string{"y-1"})
		// A line written to the copy comes after any the copy was read for.
		appendLines(t, path+".1", []string{"z-1"})
		waitLines(t, s, "x-1", "x-2", "y-1", "z-1")
	})
}

// A file deleted, let go, and a new one created at its inode with the same
// first bytes: the new file is read from its start.
func TestFollower_InodeReusedWithSameStart(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, poll bool) {
		dir := t.TempDir()
		path := filepath.Join(dir, "app.log")
		banner := "# app 1.2.3 started; format: time level message; see the docs for details"
		appendLines(t, path, []string{banner})
		s := &sink{}
		f := follower(poll, path)
		f.RotateWait = 50 * time.Millisecond
		start(t, f, s)
		waitLines(t, s, banner)
		var st syscall.Stat_t
		syscall.Stat(path, &st)
		// Without a journal, ext4 holds an inode freed in an earlier second
		// back for a while: delete, let go and reuse within one second.
		waitFor(t, func() string { return "the start of a second" }, func() bool { return time.Now().Nanosecond() < 200e6 })
		os.Remove(path)
		waitFor(t, func() string { return "the deleted file to be let go" }, func() bool { return !fdOpenTo(path + " (deleted)") })
		reuseInode(t, dir, path, st.Ino, banner+"\nnew-1\nnew-2\n")
		waitLines(t, s, banner, banner, "new-1", "new-2")
	})
}

// reuseInode creates path with data at inode ino, freed just before: ext4
// hands the lowest free inode of the directory's group to the next file, so
// creating files until one gets it does. Other processes free inodes too
// (files that get lower ones are kept until then), and without a journal
// ext4 holds a freed inode back for a few seconds (files that get higher
// ones are removed, and it is asked again a little later).
func reuseInode(t *testing.T, dir, path string, ino uint64, data string) {
	t.Helper()
	began := time.Now()
	deadline := began.Add(90 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		tmp := filepath.Join(dir, fmt.Sprintf(".reuse%d", i))
		if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(tmp, &st); err != nil {
			t.Fatal(err)
		}
		switch {
		case st.Ino == ino:
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
			t.Logf("inode %d reused after %v, %d files", ino, time.Since(began).Round(time.Millisecond), i+1)
			return
		case st.Ino > ino:
			os.Remove(tmp)
			time.Sleep(20 * time.Millisecond) // polling the file system, not a wait for the follower
		}
	}
	t.Fatalf("the file system did not hand inode %d to a new file within 90s", ino)
}

// A file renamed out of the pattern while the follower was stopped is found
// by its identity and read on; one deleted meanwhile is reported as a gap.
func TestFollower_RenamedAwayWhileStopped(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, poll bool) {
		dir := t.TempDir()
		a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
		appendLines(t, a, numbered("a", 1, 5))
		appendLines(t, b, numbered("b", 1, 5))
		s := &sink{}
		stop := start(t, follower(poll, a, b), s)
		waitLines(t, s, slices.Concat(numbered("a", 1, 5), numbered("b", 1, 5))...)
		stop()
		appendLines(t, a, numbered("a", 6, 10))
		os.Rename(a, a+".1")
		appendLines(t, a, numbered("new-a", 1, 3))
		appendLines(t, b, numbered("b", 6, 10))
		os.Remove(b)
		s2 := &sink{}
		f := follower(poll, a, b)
		f.Known = s.known()
		start(t, f, s2)
		waitLines(t, s2, slices.Concat(numbered("a", 6, 10), numbered("new-a", 1, 3))...)
		if w := waitWarning(t, s2, vibekit.WarnGap, b); w.Bytes != -1 || w.Offset != int64(len(strings.Join(numbered("b", 1, 5), "\n"))+1) {
			t.Errorf("gap of b.log: %+v, want an unknown amount after its checkpoint", w)
		}
	})
}

// A file whose checkpoint was deleted from the store is read again from 0,
// and that is reported.
func TestFollower_ForgottenCheckpoint(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, poll bool) {
		dir := t.TempDir()
		path := filepath.Join(dir, "a.log")
		appendLines(t, path, numbered("a", 1, 5))
		s := &sink{}
		stop := start(t, follower(poll, path), s)
		waitLines(t, s, numbered("a", 1, 5)...)
		stop()
		cp := s.known()[0]
		s2 := &sink{}
		f := follower(poll, path)
		f.Forgotten = []vibekit.ForgottenSource{{ID: 7, Checkpoint: cp}}
		start(t, f, s2)
		waitLines(t, s2, numbered("a", 1, 5)...)
		w := waitWarning(t, s2, vibekit.WarnReread, path)
		if w.Forgotten != 7 || w.Bytes != cp.Offset {
			t.Errorf("re-read %+v, want %d bytes, settling deleted checkpoint 7", w, cp.Offset)
		}
	})
}

// A file truncated before its lines were read, with no copy: the bytes
// lost are reported as a gap.
func TestFollower_TruncatedUnreadIsAGap(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, poll bool) {
		dir := t.TempDir()
		path := filepath.Join(dir, "app.log")
		appendLines(t, path, numbered("line", 1, 10))
		s := &sink{}
		start(t, follower(poll, path), s)
		waitLines(t, s, numbered("line", 1, 10)...)
		reached, release := gateAt(s, "line-11")
		appendLines(t, path, numbered("line", 11, 20000))
		<-reached
		fi, _ := os.Stat(path)
		os.Truncate(path, 0)
		appendLines(t, path, []string{"new-1"})
		close(release)
		waitFor(t, func() string { return "new-1" }, func() bool { return slices.Contains(s.data(), "new-1") })
		w := waitWarning(t, s, vibekit.WarnGap, path)
		var read int64
		for _, l := range s.data() {
			if strings.HasPrefix(l, "line-") {
				read += int64(len(l)) + 1
			}
		}
		// The size last seen bounds what is known to be lost: the follower
		// may have looked while the lines were being appended.
		if w.Offset != read || w.Bytes <= 0 || w.Bytes > fi.Size()-read {
			t.Errorf("gap at %d of %d bytes, want at %d of at most %d", w.Offset, w.Bytes, read, fi.Size()-read)
		}
	})
}

// copytruncate with lines unread, the copy outside the pattern: the copy is
// found beside the file and the unread lines are read from it, once.
func TestFollower_CopyTruncateOutsideThePattern(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, poll bool) {
		dir := t.TempDir()
		path := filepath.Join(dir, "app.log")
		appendLines(t, path, numbered("line", 1, 100))
		s := &sink{}
		start(t, follower(poll, path), s)
		waitLines(t, s, numbered("line", 1, 100)...)
		reached, release := gateAt(s, "line-101")
		appendLines(t, path, numbered("line", 101, 20000))
		<-reached
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(path+".1", data, 0o644)
		os.Truncate(path, 0)
		appendLines(t, path, numbered("new", 1, 10))
		close(release)
		waitLines(t, s, slices.Concat(numbered("line", 1, 20000), numbered("new", 1, 10))...)
		if w := s.warnings(); len(w) != 0 {
			t.Errorf("reports %+v, want none: nothing was lost", w)
		}
	})
}

// A file another process holds is not read, and neither is its copy
// (copytruncate): the copy is that process's to read as well.
func TestFollower_CopyOfAClaimedFile(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, poll bool) {
		dir := t.TempDir()
		path := filepath.Join(dir, "a.log")
		appendLines(t, path, numbered("line", 1, 100))
		s := &sink{}
		stop := start(t, follower(poll, path), s)
		waitLines(t, s, numbered("line", 1, 100)...)
		stop()
		var held syscall.Stat_t
		syscall.Stat(path, &held)
		var mu sync.Mutex
		var unclaimed []uint64
		f := follower(poll, path+"*")
		f.Known = s.known()
		f.Claim = func(p string, dev, ino uint64) ([]vibekit.Checkpoint, string, error) {
			if ino == held.Ino {
				return nil, "", fmt.Errorf("%w: by the test", vibekit.ErrClaimed)
			}
			return nil, "", nil
		}
		f.Unclaim = func(dev, ino uint64) {
			mu.Lock()
			defer mu.Unlock()
			unclaimed = append(unclaimed, ino)
		}
		s2 := &sink{}
		start(t, f, s2)
		waitWarning(t, s2, vibekit.WarnClaim, path)
		appendLines(t, path, numbered("line", 101, 110))
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(path+".1", data, 0o644)
		os.Truncate(path, 0)
		var cp syscall.Stat_t
		syscall.Stat(path+".1", &cp)
		waitFor(t, func() string { return "the copy to be given back" }, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return slices.Contains(unclaimed, cp.Ino)
		})
		if got := s2.data(); len(got) != 0 {
			t.Errorf("read %d lines of a file another process holds", len(got))
		}
	})
}

// TestWalkPattern_DoubleStar: "**" is any number of directories, none
// included, as the agents' transcript trees need (Claude Code's subagents
// sit a level below their session's file).
func TestWalkPattern_DoubleStar(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"projects/top.jsonl", "projects/p/s.jsonl", "projects/p/s/subagents/a.jsonl", "projects/p/notes.txt", "other/x.jsonl"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		appendFile(t, filepath.Join(dir, p), "")
	}
	pattern := filepath.Join(dir, "projects/**/*.jsonl")
	matches, dirs := walkPattern(pattern)
	want := []string{filepath.Join(dir, "projects/p/s.jsonl"), filepath.Join(dir, "projects/p/s/subagents/a.jsonl"), filepath.Join(dir, "projects/top.jsonl")}
	if !slices.Equal(matches, want) {
		t.Errorf("matches = %q, want %q", matches, want)
	}
	for _, d := range []string{"projects", "projects/p", "projects/p/s", "projects/p/s/subagents"} {
		if !slices.Contains(dirs, filepath.Join(dir, d)) {
			t.Errorf("%s is not watched: dirs %q", d, dirs)
		}
	}
	for path, want := range map[string]bool{
		"projects/new/deeper":         true, // a directory on the way
		"projects/new/deeper/z.jsonl": true,
		"projects/z.jsonl":            true,
		"other/x.jsonl":               false,
		"projects/p/notes.txt":        true, // it may be a directory on the way
	} {
		if got := mayMatch(pattern, filepath.Join(dir, path)); got != want {
			t.Errorf("mayMatch(%s) = %v, want %v", path, got, want)
		}
	}
}

// TestFollower_DoubleStarFindsNewDirectories: a file made later in a new
// directory at any depth under "**" is followed.
func TestFollower_DoubleStarFindsNewDirectories(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, poll bool) {
		dir := t.TempDir()
		appendFile(t, filepath.Join(dir, "a.jsonl"), "a1\n")
		s := &sink{}
		start(t, follower(poll, filepath.Join(dir, "**", "*.jsonl")), s)
		waitLines(t, s, "a1")
		deep := filepath.Join(dir, "p", "s", "subagents")
		if err := os.MkdirAll(deep, 0o755); err != nil {
			t.Fatal(err)
		}
		appendFile(t, filepath.Join(deep, "agent-1.jsonl"), "b1\n")
		waitLines(t, s, "a1", "b1")
	})
}
