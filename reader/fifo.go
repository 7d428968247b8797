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

// FIFO reads a named pipe that writers connect to one after another. When
// the last writer closes, its unfinished last line is a line of its own, and
// the FIFO waits for the next writer: an open that blocks in the kernel, so
// an idle FIFO costs no CPU. Lines of all writers form one source, numbered
// on from one writer to the next.
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
	var (
		offset, num int64
		prev        *os.File
	)
	defer func() {
		if prev != nil {
			prev.Close()
		}
	}()
	for ctx.Err() == nil {
		// The last writer's descriptor stays open until the next is in
		// place: a writer that connects meanwhile finds a reader, where it
		// would otherwise write into a pipe nobody reads (EPIPE).
		f, err := openFIFO(ctx, r.Path)
		if prev != nil {
			prev.Close()
			prev = nil
		}
		if err != nil {
			return err
		}
		if f == nil {
			return nil // ctx ended while waiting for a writer
		}
		offset, num, err = r.drain(ctx, f, offset, num, emit)
		prev = f
		if err != nil {
			return err
		}
	}
	return nil
}

// drain reads one series of writers, until the last closes or ctx ends.
func (r *FIFO) drain(ctx context.Context, f *os.File, offset, num int64, emit func(Line) error) (int64, int64, error) {
	// Opened with os.OpenFile, a FIFO is served by Go's poller: a deadline
	// interrupts a read that waits for data.
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
	defer stop()
	origin := Origin{Key: r.Path, Kind: "fifo"}
	sp := NewSplitter(f, r.Path, r.MaxLine, offset, num)
	for {
		line, err := sp.Next()
		if err == nil {
			line.Origin = origin
			if err := emit(line); err != nil {
				return sp.Offset(), sp.Lines(), err
			}
			continue
		}
		if line, ok := sp.Partial(); ok {
			line.Origin = origin
			if err := emit(line); err != nil {
				return sp.Offset(), sp.Lines(), err
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, os.ErrDeadlineExceeded) {
			return sp.Offset(), sp.Lines(), nil
		}
		return sp.Offset(), sp.Lines(), fmt.Errorf("read %s: %w", r.Path, err)
	}
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

// openFIFO opens path for reading, waiting for a writer to connect. If ctx
// ends first it returns nil: a writer's open of our own wakes the waiting one.
func openFIFO(ctx context.Context, path string) (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	done := make(chan result, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_RDONLY, 0)
		done <- result{f, err}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			return nil, fmt.Errorf("open FIFO %s: %w", path, res.err)
		}
		return res.f, nil
	case <-ctx.Done():
	}
	// The open blocks in the kernel until a writer comes: be that writer. It
	// fails (ENXIO) until the open above is under way, so try again.
	wake := time.NewTicker(10 * time.Millisecond)
	defer wake.Stop()
	for {
		if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		select {
		case res := <-done:
			if res.f != nil {
				res.f.Close()
			}
			return nil, nil
		case <-wake.C:
		}
	}
}
