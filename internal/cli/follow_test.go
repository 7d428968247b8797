package cli

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vibekit/vibekit-pipe/sqlite"
)

// The follow tests run vibekit-pipe in-process against real files and a real
// database, and count the stored rows per line content: "exactly once" means
// the multiset of stored lines equals the multiset written. Each runs with
// the fsnotify watcher and with polling.

// forEachWatcher runs test once with fsnotify and once with --poll.
func forEachWatcher(t *testing.T, test func(t *testing.T, w watcherCase)) {
	t.Run("fsnotify", func(t *testing.T) { test(t, watcherCase{}) })
	t.Run("poll", func(t *testing.T) { test(t, watcherCase{poll: true}) })
}

type watcherCase struct{ poll bool }

// args are the flags of a test run: quick commits, quick polls, and the
// watcher under test.
func (w watcherCase) args(db string, extra ...string) []string {
	args := []string{"--db", db, "--quiet", "--session", "s", "--stream-flush-interval-ms", "10",
		"--poll-interval", "20ms", "--rotate-wait", "300ms"}
	if w.poll {
		args = append(args, "--poll")
	}
	return append(args, extra...)
}

// syncBuffer is a Writer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// pipeRun is vibekit-pipe running in-process.
type pipeRun struct {
	t      *testing.T
	cancel context.CancelFunc
	exited chan struct{} // closed when it returns, with code set
	code   int
	stderr *syncBuffer
}

// startPipe runs vibekit-pipe with args and o's hooks; stdin nil means
// /dev/null, which a follower does not read.
func startPipe(t *testing.T, o *pipeOptions, stdin *os.File, args ...string) *pipeRun {
	t.Helper()
	if o == nil {
		o = &pipeOptions{}
	}
	if stdin == nil {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		stdin = f
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &pipeRun{t: t, cancel: cancel, exited: make(chan struct{}), stderr: &syncBuffer{}}
	go func() {
		r.code = runPipeWith(ctx, args, o, stdin, io.Discard, r.stderr)
		close(r.exited)
	}()
	t.Cleanup(r.stop)
	return r
}

// stop ends the run as SIGTERM does and checks that it exits 0.
func (r *pipeRun) stop() {
	r.t.Helper()
	r.cancel()
	r.wait()
}

// wait waits for the run to end and checks that it exits 0.
func (r *pipeRun) wait() {
	r.t.Helper()
	select {
	case <-r.exited:
		if r.code != 0 {
			r.t.Errorf("vibekit-pipe exited %d; stderr:\n%s", r.code, r.stderr.String())
		}
	case <-time.After(60 * time.Second):
		r.t.Fatalf("vibekit-pipe did not stop; stderr:\n%s", r.stderr.String())
	}
}

// running reports whether the run has not ended.
func (r *pipeRun) running() bool {
	select {
	case <-r.exited:
		return false
	default:
		return true
	}
}

// deadline is how long a test waits for a condition: generous, for a loaded
// two-core machine.
const deadline = 30 * time.Second

// waitUntil polls cond until it holds or the deadline passes; then it fails
// with what (called at the end, so it can say what was seen).
func waitUntil(t *testing.T, what func() string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// query runs q on a read-only view of the database; no rows if it does not
// exist yet.
func query(t *testing.T, db, q string, args ...any) [][]any {
	t.Helper()
	if _, err := os.Stat(db); err != nil {
		return nil
	}
	store, err := sqlite.OpenReadOnly(db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rows, err := store.SQL().Query(q, args...)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil
		}
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// stored is the multiset of stored stream rows' data.
func stored(t *testing.T, db string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, r := range query(t, db, `SELECT streamData FROM telemetry WHERE eventType = 'stream'`) {
		s, _ := r[0].(string)
		got[s]++
	}
	return got
}

// multiset counts lines.
func multiset(lines ...string) map[string]int {
	m := map[string]int{}
	for _, l := range lines {
		m[l]++
	}
	return m
}

// waitStored waits until the stored lines are exactly want.
func waitStored(t *testing.T, db string, want map[string]int) {
	t.Helper()
	var got map[string]int
	waitUntil(t, func() string { return "stored lines " + diffSets(got, want) }, func() bool {
		got = stored(t, db)
		return maps.Equal(got, want)
	})
}

// diffSets describes how got differs from want.
func diffSets(got, want map[string]int) string {
	var missing, extra []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got[k] < want[k] {
			missing = append(missing, fmt.Sprintf("%q×%d", k, want[k]-got[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if got[k] > want[k] {
			extra = append(extra, fmt.Sprintf("%q×%d", k, got[k]-want[k]))
		}
	}
	trim := func(s []string) string {
		if len(s) > 20 {
			return strings.Join(s[:20], " ") + fmt.Sprintf(" ... (%d)", len(s))
		}
		return strings.Join(s, " ")
	}
	return fmt.Sprintf("(missing: %s; extra: %s)", trim(missing), trim(extra))
}

// lines returns n lines named prefix-1 ... prefix-n.
func lines(prefix string, from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, from+i)
	}
	return out
}

// writeLines appends each line and a newline to w.
func writeLines(t *testing.T, w io.Writer, ls ...string) {
	t.Helper()
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		t.Fatal(err)
	}
}

// appendTo appends data to the file at path, creating it.
func appendTo(t *testing.T, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
}

func appendLines(t *testing.T, path string, ls ...string) {
	t.Helper()
	appendTo(t, path, strings.Join(ls, "\n")+"\n")
}

func openAppend(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func concat(parts ...[]string) []string { return slices.Concat(parts...) }

// 1. Rename rotation while writing: every line once, the old file drained.
func TestFollow_RenameRotation(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, w watcherCase) {
		dir := t.TempDir()
		db, path := filepath.Join(dir, "t.db"), filepath.Join(dir, "app.log")
		old := openAppend(t, path)
		writeLines(t, old, lines("old", 1, 100)...)
		startPipe(t, nil, nil, w.args(db, "--follow", path)...)
		// A file renamed away before the follower ever saw it is out of
		// reach: rotate once it is followed.
		waitStored(t, db, multiset(lines("old", 1, 100)...))
		writeLines(t, old, lines("old", 101, 100)...)
		if err := os.Rename(path, filepath.Join(dir, "app.log.1")); err != nil {
			t.Fatal(err)
		}
		cur := openAppend(t, path)
		// The writer goes on with the old file for a while, as a program
		// does until it reopens its log.
		for i := range 10 {
			writeLines(t, old, lines("old", 201+10*i, 10)...)
			writeLines(t, cur, lines("new", 1+10*i, 10)...)
		}
		waitStored(t, db, multiset(concat(lines("old", 1, 300), lines("new", 1, 100))...))
	})
}

// 2. Two rotations in quick succession: every line once.
func TestFollow_TwoQuickRotations(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, w watcherCase) {
		dir := t.TempDir()
		db, path := filepath.Join(dir, "t.db"), filepath.Join(dir, "app.log")
		appendLines(t, path, lines("first", 1, 50)...)
		startPipe(t, nil, nil, w.args(db, "--follow", path+"*")...)
		waitStored(t, db, multiset(lines("first", 1, 50)...))
		appendLines(t, path, lines("first", 51, 50)...)
		os.Rename(path, path+".1")
		appendLines(t, path, lines("second", 1, 50)...)
		os.Rename(path+".1", path+".2")
		os.Rename(path, path+".1")
		appendLines(t, path, lines("third", 1, 50)...)
		appendLines(t, path+".1", lines("second", 51, 10)...)
		waitStored(t, db, multiset(concat(lines("first", 1, 100), lines("second", 1, 60), lines("third", 1, 50))...))
	})
}

// 3. Delete the file and re-create it at the same path: both files' lines once.
func TestFollow_DeleteAndRecreate(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, w watcherCase) {
		dir := t.TempDir()
		db, path := filepath.Join(dir, "t.db"), filepath.Join(dir, "app.log")
		appendLines(t, path, lines("old", 1, 20)...)
		startPipe(t, nil, nil, w.args(db, "--follow", path)...)
		waitStored(t, db, multiset(lines("old", 1, 20)...))
		appendLines(t, path, lines("old", 21, 20)...)
		os.Remove(path)
		appendLines(t, path, lines("new", 1, 20)...)
		waitStored(t, db, multiset(concat(lines("old", 1, 40), lines("new", 1, 20))...))
	})
}

// openFDsTo lists this process's descriptors open on path (deleted or not).
func openFDsTo(t *testing.T, path string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	var out []string
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && (target == path || target == path+" (deleted)") {
			out = append(out, e.Name()+" -> "+target)
		}
	}
	return out
}

// 4. A file deleted with unread lines: the rest is read, then the descriptor
// is released.
func TestFollow_DeletedWithUnreadLines(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, w watcherCase) {
		dir := t.TempDir()
		db, path := filepath.Join(dir, "t.db"), filepath.Join(dir, "app.log")
		appendLines(t, path, "first")
		startPipe(t, nil, nil, w.args(db, "--follow", path)...)
		waitStored(t, db, multiset("first"))
		if len(openFDsTo(t, path)) != 1 {
			t.Fatalf("descriptors on %s: %q, want one", path, openFDsTo(t, path))
		}
		appendLines(t, path, lines("unread", 1, 5000)...)
		os.Remove(path)
		waitStored(t, db, multiset(concat([]string{"first"}, lines("unread", 1, 5000))...))
		var fds []string
		waitUntil(t, func() string { return fmt.Sprintf("the deleted file's descriptor to close: %q", fds) }, func() bool {
			fds = openFDsTo(t, path)
			return len(fds) == 0
		})
	})
}

// 5. Inode reuse while stopped: a different file at the same path and inode
// is read from byte 0. The files are shorter than the fingerprint.
func TestFollow_InodeReuseWhileStopped(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, w watcherCase) {
		dir := t.TempDir()
		db, path := filepath.Join(dir, "t.db"), filepath.Join(dir, "app.log")
		appendLines(t, path, "old-1", "old-2")
		r := startPipe(t, nil, nil, w.args(db, "--follow", path)...)
		waitStored(t, db, multiset("old-1", "old-2"))
		r.stop()
		ino := inode(t, path)
		// A new file at the same inode, as when a file is deleted and the
		// file system hands its inode to the next one created. Rewriting in
		// place makes it so for certain; the new content is longer than the
		// old offset, so only the fingerprint tells the files apart.
		if err := os.WriteFile(path, []byte("new-1\nnew-2\nnew-3\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if inode(t, path) != ino {
			t.Fatal("rewriting the file changed its inode")
		}
		startPipe(t, nil, nil, w.args(db, "--follow", path)...)
		waitStored(t, db, multiset("old-1", "old-2", "new-1", "new-2", "new-3"))
	})
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// 6. A symlink repointed to a new target: lines from both targets.
func TestFollow_SymlinkRepointed(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, w watcherCase) {
		dir := t.TempDir()
		targets := filepath.Join(dir, "targets")
		os.Mkdir(targets, 0o755)
		db, link := filepath.Join(dir, "t.db"), filepath.Join(dir, "app.log")
		a, b := filepath.Join(targets, "a.log"), filepath.Join(targets, "b.log")
		appendLines(t, a, "a-1")
		appendLines(t, b, "b-1")
		if err := os.Symlink(a, link); err != nil {
			t.Fatal(err)
		}
		startPipe(t, nil, nil, w.args(db, "--follow", link)...)
		waitStored(t, db, multiset("a-1"))
		appendLines(t, a, "a-2") // written through the link's target directory
		waitStored(t, db, multiset("a-1", "a-2"))
		// Repoint atomically, as deployment tools do.
		os.Symlink(b, link+".tmp")
		if err := os.Rename(link+".tmp", link); err != nil {
			t.Fatal(err)
		}
		appendLines(t, a, "a-3") // a late write to the old target
		appendLines(t, b, "b-2")
		waitStored(t, db, multiset("a-1", "a-2", "a-3", "b-1", "b-2"))
	})
}

// 7. Truncate, then write shorter content: the lines before once, then the new.
func TestFollow_Truncate(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, w watcherCase) {
		dir := t.TempDir()
		db, path := filepath.Join(dir, "t.db"), filepath.Join(dir, "app.log")
		appendLines(t, path, lines("before", 1, 10)...)
		startPipe(t, nil, nil, w.args(db, "--follow", path)...)
		waitStored(t, db, multiset(lines("before", 1, 10)...))
		if err := os.Truncate(path, 0); err != nil {
			t.Fatal(err)
		}
		appendLines(t, path, "after-1")
		waitStored(t, db, multiset(concat(lines("before", 1, 10), []string{"after-1"})...))
		// Truncated and written again at once: seen by size or by the first bytes.
		appendLines(t, path, "after-2", "after-3")
		waitStored(t, db, multiset(concat(lines("before", 1, 10), lines("after", 1, 3))...))
		if err := os.WriteFile(path, []byte("x-1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		waitStored(t, db, multiset(concat(lines("before", 1, 10), lines("after", 1, 3), []string{"x-1"})...))
	})
}

// copyTruncate does what logrotate's copytruncate does: copy the file (in
// pieces, as cp does), then truncate it.
func copyTruncate(t *testing.T, path, copyPath string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := os.Create(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	for ; len(data) > 0; data = data[min(len(data), 8192):] {
		if _, err := cp.Write(data[:min(len(data), 8192)]); err != nil {
			t.Fatal(err)
		}
	}
	if err := cp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
}

// 8. copytruncate with unread lines, the copy inside the glob: the unread
// lines once, from the copy, then the new lines. Live (where the follower
// may or may not have read the lines before the copy), and while stopped,
// where the copy must take over the committed offset. (reader's
// TestFollower_RotationWithUnreadLines holds the follower while it rotates.)
func TestFollow_CopyTruncate(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, w watcherCase) {
		dir := t.TempDir()
		db, path := filepath.Join(dir, "t.db"), filepath.Join(dir, "app.log")
		appendLines(t, path, lines("line", 1, 100)...)
		r := startPipe(t, nil, nil, w.args(db, "--follow", path+"*")...)
		waitStored(t, db, multiset(lines("line", 1, 100)...))
		appendLines(t, path, lines("line", 101, 2000)...)
		copyTruncate(t, path, path+".1")
		appendLines(t, path, lines("after-first-rotation", 1, 10)...)
		want := concat(lines("line", 1, 2100), lines("after-first-rotation", 1, 10))
		waitStored(t, db, multiset(want...))

		r.stop()
		appendLines(t, path, lines("while-stopped", 1, 50)...)
		copyTruncate(t, path, path+".2")
		appendLines(t, path, lines("after-restart", 1, 10)...)
		startPipe(t, nil, nil, w.args(db, "--follow", path+"*")...)
		want = concat(want, lines("while-stopped", 1, 50), lines("after-restart", 1, 10))
		waitStored(t, db, multiset(want...))
	})
}

// 9. A line written without its newline and completed later is one row,
// also across a restart.
func TestFollow_PartialLine(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, w watcherCase) {
		dir := t.TempDir()
		db, path := filepath.Join(dir, "t.db"), filepath.Join(dir, "app.log")
		appendTo(t, path, "first\npar")
		r := startPipe(t, nil, nil, w.args(db, "--follow", path)...)
		waitStored(t, db, multiset("first"))
		appendTo(t, path, "tial\nsecond\nunfin")
		waitStored(t, db, multiset("first", "partial", "second"))
		r.stop()
		appendTo(t, path, "ished\n")
		startPipe(t, nil, nil, w.args(db, "--follow", path)...)
		waitStored(t, db, multiset("first", "partial", "second", "unfinished"))
	})
}

// 10. An unfinished line, then a rotation: the fragment is not glued onto
// the new file's first line.
func TestFollow_FragmentThenRotation(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, w watcherCase) {
		dir := t.TempDir()
		db, path := filepath.Join(dir, "t.db"), filepath.Join(dir, "app.log")
		appendTo(t, path, "x-1\nfrag")
		startPipe(t, nil, nil, w.args(db, "--follow", path)...)
		waitStored(t, db, multiset("x-1"))
		os.Rename(path, filepath.Join(dir, "app.log.1"))
		appendLines(t, path, "new-1")
		// The rotated file's fragment will never be finished: once the file
		// is let go it is stored as it is.
		waitStored(t, db, multiset("x-1", "frag", "new-1"))
	})
}

// 11. An overlong line: one reject with its position, and following goes on.
func TestFollow_OverlongLine(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, w watcherCase) {
		dir := t.TempDir()
		db, path := filepath.Join(dir, "t.db"), filepath.Join(dir, "app.log")
		appendTo(t, path, "ok-1\n"+strings.Repeat("x", 5000)+"\nok-2\n")
		startPipe(t, nil, nil, w.args(db, "--follow", path, "--max-line-bytes", "100")...)
		waitStored(t, db, multiset("ok-1", "ok-2"))
		appendTo(t, path, strings.Repeat("y", 3000)) // overlong and unfinished
		appendTo(t, path, strings.Repeat("y", 3000)+"\nok-3\n")
		waitStored(t, db, multiset("ok-1", "ok-2", "ok-3"))
		got := query(t, db, `SELECT source, line, offset, length FROM vk_rejects ORDER BY id`)
		want := [][]any{{path, int64(2), int64(5), int64(5000)}, {path, int64(4), int64(5011), int64(6000)}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("rejects = %v, want %v", got, want)
		}
	})
}

// 12. BOM, invalid UTF-8 and broken JSON in a followed file: handled as on
// stdin, without aborting the batch.
func TestFollow_BadInput(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, w watcherCase) {
		dir := t.TempDir()
		db, path := filepath.Join(dir, "t.db"), filepath.Join(dir, "app.log")
		appendTo(t, path, "\xef\xbb\xbf"+`{"sessionId":"s","eventType":"stream","streamData":"bom"}`+"\n"+
			"bad \xff utf-8\n"+
			`{"sessionId": "s", "eventType":`+"\n"+
			`{"sessionId":"s","eventType":"nope"}`+"\n"+
			"after\n")
		startPipe(t, nil, nil, w.args(db, "--follow", path)...)
		waitStored(t, db, multiset("bom", "bad \uFFFD utf-8", `{"sessionId": "s", "eventType":`, "after"))
		waitUntil(t, func() string { return "one reject" }, func() bool {
			return len(query(t, db, `SELECT 1 FROM vk_rejects WHERE line = 4 AND reason LIKE '%nope%'`)) == 1
		})
	})
}

// 13. Restart: only new lines are read, including those written while stopped.
func TestFollow_Restart(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, w watcherCase) {
		dir := t.TempDir()
		db := filepath.Join(dir, "t.db")
		a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
		appendLines(t, a, lines("a", 1, 10)...)
		r := startPipe(t, nil, nil, w.args(db, "--follow", filepath.Join(dir, "*.log"))...)
		waitStored(t, db, multiset(lines("a", 1, 10)...))
		r.stop()
		appendLines(t, a, lines("a", 11, 10)...)
		appendLines(t, b, lines("b", 1, 10)...)
		r = startPipe(t, nil, nil, w.args(db, "--follow", filepath.Join(dir, "*.log"))...)
		waitStored(t, db, multiset(concat(lines("a", 1, 20), lines("b", 1, 10))...))
		appendLines(t, b, "b-11")
		waitStored(t, db, multiset(concat(lines("a", 1, 20), lines("b", 1, 11))...))
		r.stop()
		// From another working directory, by a relative path: the same file.
		wd, _ := os.Getwd()
		t.Cleanup(func() { os.Chdir(wd) })
		os.Chdir(dir)
		appendLines(t, a, "a-21")
		r = startPipe(t, nil, nil, w.args(db, "--follow", "a.log")...)
		waitStored(t, db, multiset(concat(lines("a", 1, 21), lines("b", 1, 11))...))
		r.stop()
		os.Chdir(wd)
	})
}

// 16. A directory and its file that appear after start, and a directory
// deleted and re-created: still followed.
func TestFollow_DirectoriesLater(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, w watcherCase) {
		dir := t.TempDir()
		db := filepath.Join(dir, "t.db")
		logs := filepath.Join(dir, "later", "logs")
		startPipe(t, nil, nil, w.args(db, "--follow", filepath.Join(logs, "*", "app.log"))...)
		os.MkdirAll(filepath.Join(logs, "s1"), 0o755)
		appendLines(t, filepath.Join(logs, "s1", "app.log"), "s1-1")
		waitStored(t, db, multiset("s1-1"))
		os.RemoveAll(filepath.Join(dir, "later"))
		os.MkdirAll(filepath.Join(logs, "s1"), 0o755)
		appendLines(t, filepath.Join(logs, "s1", "app.log"), "again-1")
		os.MkdirAll(filepath.Join(logs, "s2"), 0o755)
		appendLines(t, filepath.Join(logs, "s2", "app.log"), "s2-1")
		waitStored(t, db, multiset("s1-1", "again-1", "s2-1"))
	})
}

// 19. stdin's end while following: the final batch and its offsets are
// committed, and the exit is clean.
func TestFollow_StdinEOF(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, w watcherCase) {
		dir := t.TempDir()
		db, path := filepath.Join(dir, "t.db"), filepath.Join(dir, "app.log")
		appendLines(t, path, lines("file", 1, 1000)...)
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer pr.Close()
		// A long flush interval: only the stop commits.
		args := append(w.args(db, "--follow", path), "--stream-flush-interval-ms", "3600000", "--stream-batch-size", "100000")
		r := startPipe(t, nil, pr, args...)
		writeLines(t, pw, lines("stdin", 1, 10)...)
		pw.Close()
		r.wait()
		if got, want := stored(t, db), multiset(concat(lines("file", 1, 1000), lines("stdin", 1, 10))...); !maps.Equal(got, want) {
			t.Fatalf("stored %s", diffSets(got, want))
		}
		size := int64(len(strings.Join(lines("file", 1, 1000), "\n")) + 1)
		got := query(t, db, `SELECT offset, line FROM vk_sources WHERE name = ?`, path)
		if len(got) != 1 || got[0][0] != size || got[0][1] != int64(1000) {
			t.Fatalf("checkpoint of %s = %v, want offset %d, line 1000", path, got, size)
		}
	})
}

// 20. Two followed files plus stdin in one process: rows keep the order of
// each source, and every row names its source.
func TestFollow_ManySourcesOneProcess(t *testing.T) {
	forEachWatcher(t, func(t *testing.T, w watcherCase) {
		dir := t.TempDir()
		db := filepath.Join(dir, "t.db")
		a, b := filepath.Join(dir, "a.ndjson"), filepath.Join(dir, "b.ndjson")
		record := func(src string, i int) string {
			return fmt.Sprintf(`{"sessionId":"%s","eventType":"stream","streamData":"%s-%d"}`, src, src, i)
		}
		var recA, recB, recIn []string
		for i := 1; i <= 300; i++ {
			recA, recB, recIn = append(recA, record("a", i)), append(recB, record("b", i)), append(recIn, record("stdin", i))
		}
		appendLines(t, a, recA[:100]...)
		appendLines(t, b, recB[:100]...)
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer pr.Close()
		r := startPipe(t, nil, pr, w.args(db, "--follow", a, "--follow", b)...)
		for i := 0; i < 300; i += 50 {
			writeLines(t, pw, recIn[i:i+50]...)
			if i >= 100 {
				appendLines(t, a, recA[i:i+50]...)
				appendLines(t, b, recB[i:i+50]...)
			}
		}
		waitUntil(t, func() string { return "900 rows" }, func() bool {
			return len(query(t, db, `SELECT id FROM telemetry`)) == 900
		})
		pw.Close()
		r.wait()
		rows := query(t, db, `SELECT so.name, t.streamData FROM telemetry t
			JOIN vk_spans sp ON t.id BETWEEN sp.first_id AND sp.last_id
			JOIN vk_sources so ON so.id = sp.source_id ORDER BY t.id`)
		if len(rows) != 900 {
			t.Fatalf("%d of 900 rows name their source", len(rows))
		}
		next := map[string]int{}
		for _, row := range rows {
			name, data := row[0].(string), row[1].(string)
			src := map[string]string{a: "a", b: "b", "stdin": "stdin"}[name]
			next[src]++
			if want := fmt.Sprintf("%s-%d", src, next[src]); data != want {
				t.Fatalf("row from %s is %q, want %q: out of order or misattributed", name, data, want)
			}
		}
	})
}

// 18. A FIFO whose writer closes and another connects, 100 times: all lines
// stored, and the process still running.
func TestFollow_FIFOWriters(t *testing.T) {
	dir := t.TempDir()
	db, fifo := filepath.Join(dir, "t.db"), filepath.Join(dir, "vk.fifo")
	r := startPipe(t, nil, nil, "--db", db, "--quiet", "--session", "s", "--stream-flush-interval-ms", "10", "--fifo", fifo)
	waitUntil(t, func() string { return "the FIFO" }, func() bool { _, err := os.Stat(fifo); return err == nil })
	var want []string
	for i := 1; i <= 100; i++ {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		ls := lines(fmt.Sprintf("writer%d", i), 1, 3)
		writeLines(t, f, ls...)
		f.Close()
		want = append(want, ls...)
	}
	waitStored(t, db, multiset(want...))
	if !r.running() {
		t.Fatal("vibekit-pipe stopped after its FIFO's writers left")
	}
	got := query(t, db, `SELECT kind, offset, line FROM vk_sources WHERE name = ?`, fifo)
	if len(got) != 1 || got[0][0] != "fifo" || got[0][2] != int64(300) {
		t.Errorf("FIFO source = %v", got)
	}
}

// checkOffsetMatchesRows checks that the committed offset of path covers
// exactly the lines stored from it: raw are the file's lines, data what each
// is stored as (nil: the line itself).
func checkOffsetMatchesRows(t *testing.T, db, path string, raw, data []string) {
	t.Helper()
	if data == nil {
		data = raw
	}
	cps := query(t, db, `SELECT offset FROM vk_sources WHERE name = ?`, path)
	var offset int64
	if len(cps) == 1 {
		offset = cps[0][0].(int64)
	}
	n, pos := 0, int64(0)
	for pos < offset {
		pos += int64(len(raw[n])) + 1
		n++
	}
	if pos != offset {
		t.Fatalf("offset %d is not at a line boundary", offset)
	}
	if got, want := stored(t, db), multiset(data[:n]...); !maps.Equal(got, want) {
		t.Fatalf("the offset covers %d lines, but the rows differ: %s", n, diffSets(got, want))
	}
}

// dbQuery opens a read-write handle, for tests that lock the database.
func dbQuery(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=100")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
