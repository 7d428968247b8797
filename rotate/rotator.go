package rotate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vibekit/vibekit-pipe/sqlite"
)

// DefaultPruneEvery is how often retention runs after the pass at start.
const DefaultPruneEvery = time.Hour

// Options configure a Rotator.
type Options struct {
	MaxBytes   int64         // seal when the data passes this many bytes; 0: never
	PruneAge   time.Duration // delete rows and archives older than this; 0: never
	PruneEvery time.Duration // how often retention runs; 0: DefaultPruneEvery
	Now        func() time.Time
	Limits     Limits
	Workers    int // compression goroutines; 0: 1, which leaves the other cores to ingest
	// Hook is Sealer.Hook: for tests only.
	Hook func(Step)
	// OnError receives the errors of background seals and prunes, which are
	// tried again later; the caller reports them.
	OnError func(error)
}

// Rotator keeps a database that a writer is filling to its size and age:
// after each commit the writer calls AfterCommit, which starts a seal in the
// background once the data passes MaxBytes; retention runs at Start and
// every PruneEvery. Seals and prunes run one at a time.
type Rotator struct {
	o      Options
	sealer *Sealer
	busy   atomic.Bool
	wg     sync.WaitGroup
	stop   chan struct{}
	ctx    context.Context // the seals' context
	cancel context.CancelFunc

	mu      sync.Mutex
	retryAt time.Time // no seal before then, after a failed or skipped one
	final   sync.Once // the seal at Close
	stats   Stats
	// Since when seals have been put off by a reader holding the WAL, and
	// whether that was reported.
	walBusySince time.Time
	walReported  bool
}

// WALBusyReport is how long seals may be put off by readers holding the WAL
// before OnError hears of it.
const WALBusyReport = time.Minute

// Stats is what a Rotator did.
type Stats struct {
	Seals      int
	Failed     int           // seals that failed and were rolled back (their rows live), to be tried again
	Last       Result        // the last seal
	MaxStall   time.Duration // the longest switch or finish: the longest wait of the writer
	TotalStall time.Duration // all switches and finishes: how long the writer waited for seals
	Pruned     sqlite.PruneResult
}

// New returns a Rotator of db, which must be open for writing.
func New(db *sqlite.DB, o Options) *Rotator {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PruneEvery <= 0 {
		o.PruneEvery = DefaultPruneEvery
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Rotator{
		o:      o,
		sealer: &Sealer{DB: db, Limits: o.Limits, Concurrency: o.Workers, Hook: o.Hook},
		stop:   make(chan struct{}),
		ctx:    ctx,
		cancel: cancel,
	}
}

// Start finishes or rolls back a seal that a crash interrupted, runs
// retention once, and starts the periodic retention.
func (r *Rotator) Start(ctx context.Context) error {
	if err := r.sealer.Recover(ctx); err != nil {
		return err
	}
	if r.o.PruneAge <= 0 {
		return nil
	}
	if err := r.prune(ctx); err != nil {
		return err
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(r.o.PruneEvery)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				if !r.busy.CompareAndSwap(false, true) {
					continue // a seal is running; the next tick prunes
				}
				if err := r.prune(context.Background()); err != nil {
					r.report(err)
				}
				r.busy.Store(false)
			}
		}
	}()
	return nil
}

func (r *Rotator) prune(ctx context.Context) error {
	now := r.o.Now()
	res, err := r.sealer.Prune(ctx, now.Add(-r.o.PruneAge), now)
	r.mu.Lock()
	p := &r.stats.Pruned
	p.Time, p.Before = res.Time, res.Before
	p.Rows += res.Rows
	p.Rejects += res.Rejects
	p.Archives = append(p.Archives, res.Archives...)
	p.ArchiveRows += res.ArchiveRows
	r.mu.Unlock()
	return err
}

func (r *Rotator) report(err error) {
	if r.o.OnError != nil {
		r.o.OnError(err)
	}
}

// AfterCommit checks the database's size after a commit and, past
// MaxBytes, starts a seal in the background. It costs three PRAGMA reads,
// and nothing while a seal or prune runs.
func (r *Rotator) AfterCommit() {
	if r.o.MaxBytes <= 0 || r.busy.Load() {
		return
	}
	r.mu.Lock()
	wait := r.o.Now().Before(r.retryAt)
	r.mu.Unlock()
	if wait {
		return
	}
	used, err := r.sealer.DB.UsedBytes(context.Background())
	if err != nil {
		r.report(err)
		return
	}
	if used < r.o.MaxBytes || !r.busy.CompareAndSwap(false, true) {
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer r.busy.Store(false)
		r.seal()
	}()
}

func (r *Rotator) seal() {
	res, err := r.sealer.Seal(r.ctx, r.o.MaxBytes)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !errors.Is(err, sqlite.ErrWALBusy) {
		r.walBusySince, r.walReported = time.Time{}, false
	}
	switch {
	case err == nil:
		r.stats.Seals++
		r.stats.Last = res
		r.stats.MaxStall = max(r.stats.MaxStall, res.Switch, res.Finish)
		r.stats.TotalStall += res.Switch + res.Finish
	case errors.Is(err, ErrLocked), errors.Is(err, ErrNothingToSeal):
		// Another process is sealing, or has: look again in a moment.
		r.retryAt = r.o.Now().Add(100 * time.Millisecond)
	case errors.Is(err, sqlite.ErrWALBusy):
		// A reader that began before the latest commits: it is done in
		// seconds, as a rule. Past WALBusyReport, once, the caller hears of
		// it: the database grows past its limit meanwhile.
		now := r.o.Now()
		r.retryAt = now.Add(500 * time.Millisecond)
		if r.walBusySince.IsZero() {
			r.walBusySince = now
		}
		if waited := now.Sub(r.walBusySince); waited >= WALBusyReport && !r.walReported {
			r.walReported = true
			r.mu.Unlock()
			r.report(fmt.Errorf("seal put off for %v, and still waiting: a reader of the database that began before the latest commits still holds the WAL, and the database grows past its limit meanwhile", waited.Round(time.Second)))
			r.mu.Lock()
		}
	default:
		r.stats.Failed++
		r.retryAt = r.o.Now().Add(10 * time.Second)
		r.mu.Unlock()
		r.report(err)
		r.mu.Lock()
	}
}

// Stats returns what the Rotator did so far.
func (r *Rotator) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Close stops retention and waits for a running seal to finish. Ingest
// does not wait for compression while it runs; at the end the seal is
// finished rather than rolled back, so that a database written by short
// runs (one agent session each) is rotated too. A hard stop (a second
// signal, a kill) interrupts it safely: the next start finishes or rolls
// it back.
func (r *Rotator) Close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	r.wg.Wait()
	// Rows that arrived while the last seal ran can leave the store over its
	// limit, and no commit will come to notice: seal once more before exit.
	r.final.Do(func() {
		if r.o.MaxBytes > 0 && r.busy.CompareAndSwap(false, true) {
			if used, err := r.sealer.DB.UsedBytes(r.ctx); err == nil && used >= r.o.MaxBytes {
				r.seal()
			}
			r.busy.Store(false)
		}
	})
	r.cancel()
}
