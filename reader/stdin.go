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

// ErrOutputClosed means the pass-through output was closed by its reader (as
// with `| head -1`): a graceful stop, not a failure.
var ErrOutputClosed = errors.New("output closed")

// Stream reads lines from a stream that cannot be resumed: stdin, or a pipe.
// Every byte read is first copied to Tee (when set), so the stream passes
// through unchanged; an unfinished last line is a line of its own at the end,
// marked Partial if a stop, not the end of input, cut it off.
type Stream struct {
	File    *os.File
	Name    string // the source name rows record
	Tee     io.Writer
	MaxLine int
}

// Run reads until the end of the input, a failed read, a closed Tee
// (ErrOutputClosed) or ctx's end, and emits each line. When ctx ends it stops
// reading at once and still emits the lines already read, so a stop loses
// nothing that was taken from the input. It returns nil at the end of input.
func (s *Stream) Run(ctx context.Context, emit func(Line) error) error {
	f := s.File
	if pf, restore, ok := pollable(f); ok {
		// Reads of a pipe block; through the poller a deadline interrupts them.
		defer restore()
		f = pf
		stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
		defer stop()
	}
	var r io.Reader = &ctxReader{ctx: ctx, r: f}
	if s.Tee != nil {
		r = &teeReader{r: r, w: s.Tee}
	}
	sp := NewSplitter(r, s.Name, s.MaxLine, 0, 0)
	for {
		line, err := sp.Next()
		if err == nil {
			if err := emit(line); err != nil {
				return err
			}
			continue
		}
		if line, ok := sp.Partial(); ok {
			// Bytes already taken from the input are kept; a line cut off by
			// a stop (not the end of input) is marked as such.
			line.Partial = !errors.Is(err, io.EOF)
			if err := emit(line); err != nil {
				return err
			}
		}
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.Canceled):
			return nil
		case errors.Is(err, ErrOutputClosed):
			return ErrOutputClosed
		}
		return fmt.Errorf("read %s: %w", s.Name, err)
	}
}

// pollable returns a duplicate of f in non-blocking mode, which Go's poller
// serves, if f is a pipe, FIFO or socket. restore switches it back, as the
// mode belongs to the open file that other processes share. A terminal is
// left as it is, since its mode is the shell's too: a stop while a read of
// one blocks waits for the next line (or a second Ctrl-C).
func pollable(f *os.File) (*os.File, func(), bool) {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&(os.ModeNamedPipe|os.ModeSocket) == 0 {
		return nil, nil, false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, nil, false
	}
	var fd int
	var dupErr error
	if err := rc.Control(func(d uintptr) { fd, dupErr = syscall.Dup(int(d)) }); err != nil || dupErr != nil {
		return nil, nil, false
	}
	syscall.CloseOnExec(fd)
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, nil, false
	}
	// The duplicate shares the open file, and so its mode, with f.
	pf := os.NewFile(uintptr(fd), f.Name())
	return pf, func() {
		syscall.SetNonblock(fd, false)
		pf.Close()
	}, true
}

// ctxReader stops reading once ctx is done, for inputs that never block
// (regular files), where no deadline is needed.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// teeReader copies what it reads to w; a write error ends reading, after the
// bytes already read are returned.
type teeReader struct {
	r io.Reader
	w io.Writer
}

func (t *teeReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		if _, werr := t.w.Write(p[:n]); werr != nil {
			if errors.Is(werr, syscall.EPIPE) {
				return n, ErrOutputClosed
			}
			return n, fmt.Errorf("write output: %w", werr)
		}
	}
	return n, err
}
