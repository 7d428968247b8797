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
	"time"

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
	db     *sqlite.DB // claims of followed files are kept there
}

// claimHeartbeat is how often the claims of followed files are renewed,
// well within sqlite.ClaimLease.
const claimHeartbeat = 10 * time.Second

// newInputs sets up the sources o names. Without --follow or --fifo, stdin
// is the input. With them, stdin is read too if it holds data (a pipe or a
// file, not a terminal or /dev/null), and its end ends the run.
func newInputs(ctx context.Context, o *pipeOptions, db *sqlite.DB, stdin *os.File, stdout, stderr io.Writer) (*inputs, error) {
	in := &inputs{db: db}
	if len(o.follow) == 0 && len(o.fifos) == 0 || holdsData(stdin) {
		in.stdin = &reader.Stream{File: stdin, Name: "stdin", MaxLine: o.maxLine}
		if !o.quiet {
			in.stdin.Tee = stdout
		}
	}
	for _, pattern := range o.follow {
		if o.transcriptPattern(pattern) {
			continue // an agent that is not installed, or has not run yet
		}
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
		forgotten, err := db.Forgotten(ctx)
		if err != nil {
			return nil, err
		}
		in.follow = &reader.Follower{
			Patterns: o.follow, MaxLine: o.maxLine, FromEnd: o.fromEnd,
			Poll: o.poll, PollInterval: o.pollInterval, RotateWait: o.rotateWait,
			Known: known, Forgotten: forgotten,
			// One process reads a file into a database: a second one
			// (overlapping cron runs) would store its lines twice.
			Claim: func(path string, dev, ino uint64) ([]vibekit.Checkpoint, string, error) {
				return db.Claim(ctx, path, dev, ino)
			},
			Unclaim: func(dev, ino uint64) { // a file let go unread
				if err := db.Unclaim(context.WithoutCancel(ctx), dev, ino); err != nil {
					fmt.Fprintf(stderr, "vibekit-pipe: %v\n", err)
				}
			},
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
		followDone := make(chan struct{})
		start(func() error {
			defer close(followDone)
			return in.follow.Run(ctx, emit)
		}, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			in.heartbeat(followDone)
		}()
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

// heartbeat renews the claims of followed files until done is closed.
func (in *inputs) heartbeat(done <-chan struct{}) {
	tick := time.NewTicker(claimHeartbeat)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			// A failed renewal is tried again at the next tick; the lease
			// allows for several.
			in.db.Heartbeat(context.Background())
		}
	}
}

// followCounts are the reports of following, for --stats.
type followCounts struct {
	gaps, gapBytes, unknownGaps, rereads, rereadBytes, refused int64
}

func (c *followCounts) print(w io.Writer) {
	unknown := ""
	if c.unknownGaps > 0 {
		unknown = fmt.Sprintf(", %d of unknown size", c.unknownGaps)
	}
	fmt.Fprintf(w, "vibekit-pipe: following: gaps %d (%d bytes%s), re-reads %d (%d bytes), refused claims %d (see vibekit telemetry sources --warnings)\n",
		c.gaps, c.gapBytes, unknown, c.rereads, c.rereadBytes, c.refused)
}

// followWarning reports what following could not keep exactly once: on
// stderr, in the --stats counters, and in vk_warnings, committed with the
// position it concerns.
func (p *pipe) followWarning(w *vibekit.Warning, now time.Time) {
	fmt.Fprintf(p.stderr, "vibekit-pipe: %s: %s\n", w.Kind, w.Detail)
	c := &p.m.follow
	switch w.Kind {
	case vibekit.WarnGap:
		c.gaps++
		if w.Bytes >= 0 {
			c.gapBytes += w.Bytes
		} else {
			c.unknownGaps++
		}
	case vibekit.WarnReread:
		c.rereads++
		c.rereadBytes += max(w.Bytes, 0)
	case vibekit.WarnClaim:
		c.refused++
	}
	p.b.AddWarning(*w, now)
}
