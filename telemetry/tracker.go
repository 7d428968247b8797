package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/redact"
)

// Event is what a track call records. Each call uses the fields the guide
// gives it: SessionID and AgentType always; Mode, Prompt, SandboxID and
// RepoURL for a start; StreamData for a stream; Error for an error (stored
// in the prompt column, as the guide's schema says); Metadata for any.
type Event struct {
	SessionID  string
	AgentType  string
	Mode       string
	Prompt     string
	StreamData string
	Error      string
	SandboxID  string
	RepoURL    string
	Metadata   map[string]any
	Time       time.Time // zero: the time of the call
}

// Metrics are the guide's performance metrics of a Tracker.
type Metrics struct {
	ActiveBuffers       int           `json:"activeBuffers"`       // session and agent pairs with buffered events
	TotalBufferedEvents int           `json:"totalBufferedEvents"` // stream events waiting
	TotalEventsWritten  int64         `json:"totalEventsWritten"`
	Flushes             int64         `json:"flushes"`
	AverageFlushTime    time.Duration `json:"averageFlushTime"`
	LastFlushTime       time.Duration `json:"lastFlushTime"`
	// Errors counts failed track calls and failed background flushes;
	// FailedEvents the events those lost.
	Errors       int64  `json:"errors"`
	FailedEvents int64  `json:"failedEvents"`
	LastError    string `json:"lastError,omitempty"`
}

// Tracker is the guide's TelemetryService. Its methods are safe to call
// from many goroutines for many sessions at once. Stream events wait in a
// buffer per session and agent until StreamBatchSize of them are there or
// the oldest has waited StreamFlushInterval; a start, end or error event is
// written at once, after the buffered stream events of its session, in the
// same transaction. Errors are returned and counted; no call panics.
type Tracker struct {
	store    *Store
	size     int
	interval time.Duration
	now      func() time.Time

	mu      sync.Mutex
	buffers map[string]map[string]*buffer // session -> agent -> buffer
	closed  atomic.Bool

	stop chan struct{}
	done chan struct{}

	buffered                   atomic.Int64
	written, flushes           atomic.Int64
	flushNanos, lastFlushNanos atomic.Int64
	errCount, failedEvents     atomic.Int64
	flushFailing               atomic.Bool // the last flush failed
	lastErr                    atomic.Pointer[string]
}

// buffer holds one session and agent's stream events. Its lock is held
// from taking the events until their commit ends, so that a session's rows
// are written in order.
type buffer struct {
	mu     sync.Mutex
	red    *redact.Stream // nil: nothing to redact
	recs   []Record
	oldest time.Time
	gone   bool // taken out of the tracker's map: look it up again
}

// NewTracker returns a tracker writing to the store that cfg describes (its
// database is created on first use). Close flushes and closes it.
func NewTracker(cfg Config) (*Tracker, error) {
	if cfg.ReadOnly {
		return nil, errors.New("telemetry: a tracker needs a writable store")
	}
	store, err := Open(cfg)
	if err != nil {
		return nil, err
	}
	cfg = store.cfg
	t := &Tracker{
		store:    store,
		size:     cfg.StreamBatchSize,
		interval: cfg.StreamFlushInterval,
		now:      cfg.Now,
		buffers:  map[string]map[string]*buffer{},
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go t.run(cfg.PruneDays)
	return t, nil
}

// Store is the tracker's store, for queries.
func (t *Tracker) Store() *Store { return t.store }

// TrackStart records the start of a session.
func (t *Tracker) TrackStart(ctx context.Context, e Event) (err error) {
	defer t.recover(&err)
	return t.lifecycle(ctx, EventStart, e)
}

// TrackStream buffers one piece of a session's stream.
func (t *Tracker) TrackStream(ctx context.Context, e Event) (err error) {
	defer t.recover(&err)
	return t.stream(ctx, e)
}

// TrackEnd records the end of a session, after its buffered stream events.
func (t *Tracker) TrackEnd(ctx context.Context, e Event) (err error) {
	defer t.recover(&err)
	return t.lifecycle(ctx, EventEnd, e)
}

// TrackError records an error of a session (e.Error), after its buffered
// stream events.
func (t *Tracker) TrackError(ctx context.Context, e Event) (err error) {
	defer t.recover(&err)
	return t.lifecycle(ctx, EventError, e)
}

// recover turns a panic inside the tracker into a counted error: telemetry
// must not crash the program that records it.
func (t *Tracker) recover(err *error) {
	if r := recover(); r != nil {
		*err = t.fail(fmt.Errorf("telemetry: internal error: %v", r), 0)
	}
}

// fail counts a failed call (and the events it lost) and returns err.
func (t *Tracker) fail(err error, lost int) error {
	t.errCount.Add(1)
	t.failedEvents.Add(int64(lost))
	msg := err.Error()
	t.lastErr.Store(&msg)
	return err
}

// record builds the row of a track call.
func (t *Tracker) record(kind EventType, e Event) (Record, error) {
	if e.SessionID == "" {
		return Record{}, fmt.Errorf("telemetry: track %s: sessionId is empty", kind)
	}
	if e.AgentType == "" {
		return Record{}, fmt.Errorf("telemetry: track %s: agentType is empty", kind)
	}
	r := Record{SessionID: e.SessionID, EventType: kind, AgentType: e.AgentType, Mode: e.Mode, Prompt: e.Prompt,
		StreamData: e.StreamData, SandboxID: e.SandboxID, RepoURL: e.RepoURL}
	if kind == EventError && e.Error != "" {
		r.Prompt = e.Error
	}
	if e.Metadata != nil {
		meta, err := json.Marshal(e.Metadata)
		if err != nil {
			return Record{}, fmt.Errorf("telemetry: track %s: metadata: %w", kind, err)
		}
		r.Metadata = meta
	}
	ts := e.Time
	if ts.IsZero() {
		ts = t.now()
	}
	r.Timestamp = ts.UnixMilli()
	return r, nil
}

// stream buffers e and writes its buffer when it is full.
func (t *Tracker) stream(ctx context.Context, e Event) error {
	rec, err := t.record(EventStream, e)
	if err != nil {
		return t.fail(err, 1)
	}
	if err := t.store.ensureOpen(); err != nil {
		return t.fail(err, 1)
	}
	for {
		b, err := t.buffer(e.SessionID, e.AgentType)
		if err != nil {
			return t.fail(err, 1)
		}
		b.mu.Lock()
		if b.gone {
			b.mu.Unlock()
			continue // its session ended meanwhile: a new buffer
		}
		if t.closed.Load() {
			b.mu.Unlock()
			return t.fail(ErrClosed, 1)
		}
		if len(b.recs) == 0 {
			b.oldest = t.now()
		}
		if b.red != nil {
			b.red.Record(&rec) // in order, under b.mu: a key may span events
		}
		b.recs = append(b.recs, rec)
		t.buffered.Add(1)
		if len(b.recs) >= t.size {
			err = t.flushLocked(ctx, b)
		}
		b.mu.Unlock()
		return err
	}
}

// buffer returns the buffer of session and agent, making it if need be.
func (t *Tracker) buffer(session, agent string) (*buffer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return nil, ErrClosed
	}
	agents := t.buffers[session]
	if agents == nil {
		agents = map[string]*buffer{}
		t.buffers[session] = agents
	}
	b := agents[agent]
	if b == nil {
		b = &buffer{}
		if t.store.red != nil {
			b.red = t.store.red.NewStream()
		}
		agents[agent] = b
	}
	return b, nil
}

// lifecycle writes a start, end or error row at once, after the buffered
// stream rows of its session (of every agent), in one transaction.
func (t *Tracker) lifecycle(ctx context.Context, kind EventType, e Event) error {
	rec, err := t.record(kind, e)
	if err != nil {
		return t.fail(err, 1)
	}
	if t.store.red != nil {
		t.store.red.Record(&rec)
	}
	if err := t.store.ensureOpen(); err != nil {
		return t.fail(err, 1)
	}
	t.mu.Lock()
	if t.closed.Load() {
		t.mu.Unlock()
		return t.fail(ErrClosed, 1)
	}
	agents := t.buffers[e.SessionID]
	delete(t.buffers, e.SessionID)
	t.mu.Unlock()
	// Lock in a fixed order, so two calls for one session cannot deadlock.
	names := slices.Sorted(maps.Keys(agents))
	var recs []Record
	for _, a := range names {
		b := agents[a]
		b.mu.Lock()
		defer b.mu.Unlock()
		b.gone = true
		recs = append(recs, b.recs...)
		t.buffered.Add(-int64(len(b.recs)))
		b.recs = nil
	}
	// Agents' rows interleave by time; each agent's keep their order.
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Timestamp < recs[j].Timestamp })
	return t.commit(ctx, append(recs, rec))
}

// flushLocked writes b's events; the caller holds b.mu.
func (t *Tracker) flushLocked(ctx context.Context, b *buffer) error {
	recs := b.recs
	b.recs = nil
	t.buffered.Add(-int64(len(recs)))
	return t.commit(ctx, recs)
}

// commit writes recs in one transaction and keeps the metrics. Events of a
// failed write are dropped and counted, so memory stays bounded when the
// database is gone.
func (t *Tracker) commit(ctx context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	start := time.Now()
	err := t.store.commit(ctx, &vibekit.Batch{Records: recs})
	took := time.Since(start)
	if err != nil {
		t.flushFailing.Store(true)
		return t.fail(err, len(recs))
	}
	t.flushFailing.Store(false)
	t.written.Add(int64(len(recs)))
	t.flushes.Add(1)
	t.flushNanos.Add(int64(took))
	t.lastFlushNanos.Store(int64(took))
	return nil
}

// run flushes buffers whose oldest event has waited the interval, and
// prunes old events hourly when PruneDays asks, until Close.
func (t *Tracker) run(pruneDays int) {
	defer close(t.done)
	tick := time.NewTicker(max(t.interval/4, 5*time.Millisecond))
	defer tick.Stop()
	var prune <-chan time.Time
	if pruneDays > 0 {
		p := time.NewTicker(time.Hour)
		defer p.Stop()
		prune = p.C
	}
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			t.flushDue(context.Background())
		case <-prune:
			if _, err := t.store.PruneOldRecords(context.Background(), pruneDays); err != nil {
				t.fail(err, 0)
			}
		}
	}
}

// snapshot lists the buffers.
func (t *Tracker) snapshot() []*buffer {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*buffer
	for _, agents := range t.buffers {
		for _, b := range agents {
			out = append(out, b)
		}
	}
	return out
}

// flushDue writes the buffers that are due, then forgets empty ones.
func (t *Tracker) flushDue(ctx context.Context) {
	now := t.now()
	for _, b := range t.snapshot() {
		b.mu.Lock()
		if !b.gone && len(b.recs) > 0 && !now.Before(b.oldest.Add(t.interval)) {
			t.flushLocked(ctx, b) // counted by commit; nobody to return it to
		}
		b.mu.Unlock()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for session, agents := range t.buffers {
		for agent, b := range agents {
			// TryLock: a buffer being written is not idle anyway.
			if b.mu.TryLock() {
				if len(b.recs) == 0 {
					b.gone = true
					delete(agents, agent)
				}
				b.mu.Unlock()
			}
		}
		if len(agents) == 0 {
			delete(t.buffers, session)
		}
	}
}

// FlushBuffers writes every buffered event now.
func (t *Tracker) FlushBuffers(ctx context.Context) (err error) {
	defer t.recover(&err)
	var errs []error
	for _, b := range t.snapshot() {
		b.mu.Lock()
		if len(b.recs) > 0 {
			if err := t.flushLocked(ctx, b); err != nil {
				errs = append(errs, err)
			}
		}
		b.mu.Unlock()
	}
	return errors.Join(errs...)
}

// PerformanceMetrics returns the guide's performance metrics.
func (t *Tracker) PerformanceMetrics() Metrics {
	m := Metrics{
		TotalBufferedEvents: int(t.buffered.Load()),
		TotalEventsWritten:  t.written.Load(),
		Flushes:             t.flushes.Load(),
		LastFlushTime:       time.Duration(t.lastFlushNanos.Load()),
		Errors:              t.errCount.Load(),
		FailedEvents:        t.failedEvents.Load(),
	}
	if m.Flushes > 0 {
		m.AverageFlushTime = time.Duration(t.flushNanos.Load() / m.Flushes)
	}
	if p := t.lastErr.Load(); p != nil {
		m.LastError = *p
	}
	for _, b := range t.snapshot() {
		b.mu.Lock()
		if len(b.recs) > 0 {
			m.ActiveBuffers++
		}
		b.mu.Unlock()
	}
	return m
}

// HealthCheck reports whether the database is reachable, whether buffered
// events are being written, and the disk space left.
func (t *Tracker) HealthCheck(ctx context.Context) Health {
	h := t.store.HealthCheck(ctx)
	m := t.PerformanceMetrics()
	h.BufferedEvents, h.ActiveBuffers = m.TotalBufferedEvents, m.ActiveBuffers
	h.Buffer = !t.flushFailing.Load()
	if !h.Buffer {
		h.Error = strings.TrimPrefix(strings.Join([]string{h.Error, "the last write of buffered events failed: " + m.LastError}, "; "), "; ")
	}
	return h
}

// Close writes the buffered events and closes the store. Track calls after
// Close return ErrClosed.
func (t *Tracker) Close() error {
	t.mu.Lock()
	if t.closed.Swap(true) {
		t.mu.Unlock()
		return nil
	}
	t.mu.Unlock()
	close(t.stop)
	<-t.done
	err := t.FlushBuffers(context.Background())
	return errors.Join(err, t.store.Close())
}
