package reader

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher tells a Follower when to look at its files again. There are two:
// fsnotify (inotify on Linux), which costs nothing while files are idle, and
// polling, the fallback where watches cannot be added. The Follower treats
// both alike, and the same tests run against both.
type Watcher interface {
	// Watch makes dirs the set of directories whose entries are watched.
	Watch(dirs []string) error
	// Events delivers what changed.
	Events() <-chan Event
	Close() error
}

// Event is a change a Watcher saw.
type Event struct {
	// Path is the file or directory that changed; "" means anything may
	// have changed (a poll, or lost events): look at everything.
	Path string
	// Entries means names were created, removed or renamed: the patterns
	// must be matched again.
	Entries bool
}

// ErrWatchLimit means the system would not add a watch (inotify's watch or
// instance limit, or out of descriptors): the Follower polls instead.
var ErrWatchLimit = errors.New("cannot add a file system watch")

// notifyWatcher watches directories with fsnotify: one watch per directory,
// whatever the number of files in it.
type notifyWatcher struct {
	w      *fsnotify.Watcher
	events chan Event
	done   chan struct{}
	wg     sync.WaitGroup

	mu   sync.Mutex
	dirs map[string]bool // watched; a removed directory is forgotten
}

func newNotifyWatcher() (Watcher, error) {
	w, err := fsnotify.NewBufferedWatcher(1024)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWatchLimit, err)
	}
	n := &notifyWatcher{w: w, events: make(chan Event, 1024), done: make(chan struct{}), dirs: map[string]bool{}}
	n.wg.Add(1)
	go n.run()
	return n, nil
}

func (n *notifyWatcher) run() {
	defer n.wg.Done()
	for {
		var ev Event
		select {
		case e, ok := <-n.w.Events:
			if !ok {
				return
			}
			ev = Event{Path: e.Name, Entries: e.Has(fsnotify.Create) || e.Has(fsnotify.Remove) || e.Has(fsnotify.Rename)}
			if e.Has(fsnotify.Remove) || e.Has(fsnotify.Rename) {
				// A watched directory that goes away loses its watch; forget
				// it, so that Watch adds it again when it is re-created.
				n.mu.Lock()
				delete(n.dirs, e.Name)
				n.mu.Unlock()
			}
		case _, ok := <-n.w.Errors:
			if !ok {
				return
			}
			ev = Event{} // an overflow lost events: look at everything
		case <-n.done:
			return
		}
		// Blocking here when the follower is busy lets the kernel's queue
		// fill; its overflow comes back as a look at everything.
		select {
		case n.events <- ev:
		case <-n.done:
			return
		}
	}
}

func (n *notifyWatcher) Watch(dirs []string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	want := make(map[string]bool, len(dirs))
	for _, d := range dirs {
		want[d] = true
		if n.dirs[d] {
			continue
		}
		if err := n.w.Add(d); err != nil {
			if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				return fmt.Errorf("%w: watch %s: %v", ErrWatchLimit, d, err)
			}
			// Gone or unreadable: the next scan of the patterns sees to it.
			continue
		}
		n.dirs[d] = true
	}
	for d := range n.dirs {
		if !want[d] {
			n.w.Remove(d)
			delete(n.dirs, d)
		}
	}
	return nil
}

func (n *notifyWatcher) Events() <-chan Event { return n.events }

func (n *notifyWatcher) Close() error {
	close(n.done)
	err := n.w.Close()
	n.wg.Wait()
	return err
}

// pollWatcher asks the Follower to look at everything every interval.
type pollWatcher struct {
	events chan Event
	done   chan struct{}
	wg     sync.WaitGroup
}

func newPollWatcher(interval time.Duration) Watcher {
	p := &pollWatcher{events: make(chan Event, 1), done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				select {
				case p.events <- Event{}:
				default: // the last one is not taken yet
				}
			case <-p.done:
				return
			}
		}
	}()
	return p
}

func (p *pollWatcher) Watch([]string) error { return nil }
func (p *pollWatcher) Events() <-chan Event { return p.events }

func (p *pollWatcher) Close() error {
	close(p.done)
	p.wg.Wait()
	return nil
}
