package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/reader"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

// pathList is a flag that may repeat, one path or glob each time. Unlike
// stringList it does not split on commas, which paths may hold.
type pathList []string

func (l *pathList) String() string { return strings.Join(*l, " ") }

func (l *pathList) Set(v string) error {
	if v == "" {
		return errors.New("empty path")
	}
	*l = append(*l, v)
	return nil
}

// inputs are the sources of one run: stdin, followed files and FIFOs, read
// side by side. Each keeps its own lines in order.
type inputs struct {
	stdin  *reader.Stream
	follow *reader.Follower
	fifos  []*reader.FIFO
}

// newInputs sets up the sources o names. Without --follow or --fifo, stdin
// is the input. With them, stdin is read too if it holds data (a pipe or a
// file, not a terminal or /dev/null), and its end ends the run.
func newInputs(ctx context.Context, o *pipeOptions, db *sqlite.DB, stdin *os.File, stdout, stderr io.Writer) (*inputs, error) {
	in := &inputs{}
	if len(o.follow) == 0 && len(o.fifos) == 0 || holdsData(stdin) {
		in.stdin = &reader.Stream{File: stdin, Name: "stdin", MaxLine: o.maxLine}
		if !o.quiet {
			in.stdin.Tee = stdout
		}
	}
	for _, pattern := range o.follow {
		// A mistyped path would otherwise be followed in silence.
		if m, err := filepath.Glob(pattern); err == nil && len(m) == 0 {
			fmt.Fprintf(stderr, "vibekit-pipe: --follow %s matches no file yet; waiting for one to appear\n", pattern)
		}
	}
	if len(o.follow) > 0 {
		states, err := db.Sources(ctx)
		if err != nil {
			return nil, err
		}
		var known []vibekit.Checkpoint
		for _, s := range states {
			if s.Kind == "file" {
				known = append(known, s.Checkpoint)
			}
		}
		in.follow = &reader.Follower{
			Patterns: o.follow, MaxLine: o.maxLine, FromEnd: o.fromEnd,
			Poll: o.poll, PollInterval: o.pollInterval, RotateWait: o.rotateWait,
			Known: known,
			// A glob over the database's directory must not read the
			// database itself.
			Exclude: []string{o.db, o.db + "-wal", o.db + "-shm", o.db + "-journal"},
			Warn:    func(err error) { fmt.Fprintf(stderr, "vibekit-pipe: %v\n", err) },
		}
	}
	for _, path := range o.fifos {
		in.fifos = append(in.fifos, &reader.FIFO{Path: path, MaxLine: o.maxLine})
	}
	return in, nil
}

// holdsData reports whether f is a pipe, socket or file: input someone
// redirected, rather than a terminal or /dev/null.
func holdsData(f *os.File) bool {
	if f == nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	m := fi.Mode()
	return m.IsRegular() || m&(os.ModeNamedPipe|os.ModeSocket) != 0
}

// Run reads all the sources until they end or ctx does. The end of stdin
// ends the run: followed files are read to their end, FIFOs stop. A failing
// source, or a closed output, stops all of them.
func (in *inputs) Run(ctx context.Context, emit func(reader.Line) error) error {
	ctx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	fifoCtx, stopFIFOs := context.WithCancel(ctx)
	defer stopFIFOs()
	finish := make(chan struct{})
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	start := func(run func() error, ended func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := run()
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				stopAll()
				return
			}
			if ended != nil {
				ended()
			}
		}()
	}
	if in.stdin != nil {
		start(func() error { return in.stdin.Run(ctx, emit) }, func() {
			close(finish)
			stopFIFOs()
		})
	}
	if in.follow != nil {
		in.follow.Finish = finish
		start(func() error { return in.follow.Run(ctx, emit) }, nil)
	}
	for _, f := range in.fifos {
		start(func() error { return f.Run(fifoCtx, emit) }, nil)
	}
	wg.Wait()
	// A closed output is a graceful stop, unless something failed as well.
	for _, err := range errs {
		if !errors.Is(err, reader.ErrOutputClosed) {
			return err
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}
