package reader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// FIFO reads a named pipe that writers open one after another, and goes on
// waiting when the last one closes. Lines of all writers form one source,
// numbered on from one writer to the next. When the reader sees that no
// writer is left, an unfinished last line is a line of its own (if the next
// writer connected first, the kernel's pipe has no boundary to show).
//
// One non-blocking descriptor is held for the whole run and waited on with
// Go's poller: an idle FIFO costs no CPU, a writer always finds a reader,
// and nothing written between two writers is missed.
type FIFO struct {
	Path    string // created (mode 0600) if missing
	MaxLine int
}

// Run reads until ctx ends; lines already read are emitted before it
// returns nil. It fails if Path is not a FIFO or cannot be opened.
func (r *FIFO) Run(ctx context.Context, emit func(Line) error) error {
	if err := makeFIFO(r.Path); err != nil {
		return err
	}
	// Non-blocking: the open does not wait for a writer.
	f, err := os.OpenFile(r.Path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("open FIFO %s: %w", r.Path, err)
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("open FIFO %s: %w", r.Path, err)
	}
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
	defer stop()
	in := &fifoReader{rc: rc, idle: true}
	origin := Origin{Key: r.Path, Kind: "fifo"}
	sp := NewSplitter(in, r.Path, r.MaxLine, 0, 0)
	for {
		line, err := sp.Next()
		if err == nil {
			line.Origin = origin
			if err := emit(line); err != nil {
				return err
			}
			continue
		}
		if line, ok := sp.Partial(); ok {
			line.Origin = origin
			if err := emit(line); err != nil {
				return err
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			sp.Resume() // the writers left: wait for the next
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil
		default:
			return fmt.Errorf("read %s: %w", r.Path, err)
		}
	}
}

// fifoReader reads a FIFO through Go's poller. It returns io.EOF once each
// time the writers are seen gone (a read of 0 bytes), and otherwise waits
// for the poller to report data or a writer's coming and going.
type fifoReader struct {
	rc   syscall.RawConn
	idle bool // EOF was reported, or no writer came yet
}

func (r *fifoReader) Read(p []byte) (int, error) {
	var (
		n    int
		rerr error
	)
	err := r.rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), p)
		switch {
		case rerr == syscall.EAGAIN || rerr == syscall.EINTR:
			return false // writers, but no data yet: wait
		case rerr == nil && n == 0 && r.idle:
			return false // still no writer: wait for one
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, rerr
	}
	if n == 0 {
		r.idle = true
		return 0, io.EOF
	}
	r.idle = false
	return n, nil
}

// makeFIFO creates path as a FIFO readable by its owner only, unless it
// exists; an existing path must be a FIFO.
func makeFIFO(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := syscall.Mkfifo(path, 0o600); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create FIFO %s: %w", path, err)
		}
		fi, err = os.Stat(path)
	}
	if err != nil {
		return fmt.Errorf("FIFO %s: %w", path, err)
	}
	if fi.Mode()&os.ModeNamedPipe == 0 {
		return fmt.Errorf("FIFO %s: exists and is not a FIFO", path)
	}
	return nil
}
