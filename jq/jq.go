// Package jq runs jq programs (gojq) over records: each program is compiled
// once and run per value, with a time limit per value so that no program can
// hang a command.
package jq

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/itchyny/gojq"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// DefaultTimeout is how long a program may run on one input value.
const DefaultTimeout = 10 * time.Second

// CompileError is a jq program that does not parse or compile. It shows
// where in the program the error is.
type CompileError struct {
	Src    string
	Offset int // byte offset of the error in Src; -1 if unknown
	Err    error
}

func (e *CompileError) Error() string {
	if e.Offset < 0 {
		return fmt.Sprintf("jq: compile error: %v", e.Err)
	}
	// Show the line holding the error and a caret under the offending token.
	lineStart := strings.LastIndexByte(e.Src[:e.Offset], '\n') + 1
	lineEnd := strings.IndexByte(e.Src[e.Offset:], '\n')
	if lineEnd < 0 {
		lineEnd = len(e.Src)
	} else {
		lineEnd += e.Offset
	}
	lineNo := strings.Count(e.Src[:e.Offset], "\n") + 1
	col := e.Offset - lineStart
	return fmt.Sprintf("jq: syntax error at line %d, column %d: %v\n    %s\n    %s^",
		lineNo, col+1, e.Err, e.Src[lineStart:lineEnd], strings.Repeat(" ", col))
}

func (e *CompileError) Unwrap() error { return e.Err }

// Program is a compiled jq program.
type Program struct {
	src  string
	code *gojq.Code
	// Timeout is how long a run on one input value may take: DefaultTimeout
	// if zero, no limit if negative. A limit costs a little on every step
	// of the program; programs known to end (the presets) go without. The
	// watchdog looks at least every millisecond, so a shorter timeout stops
	// any run still going when it looks.
	Timeout time.Duration
	// MemoryLimit stops a run once the Go heap (objects, garbage not yet
	// collected, and goroutine stacks) passes this many bytes; 0 means no
	// limit. The heap is the whole process's: a program sets it where jq
	// runs are what can grow it, with a soft limit (debug.SetMemoryLimit)
	// below it so that garbage is collected first. It needs a watchdog, so
	// a negative Timeout turns it off too.
	MemoryLimit int64
	// Abort, if set, is called (from the watchdog's goroutine) when the heap
	// passes AbortFactor times MemoryLimit during a run: one step of the
	// program (a built-in such as join or match on a huge input) is growing
	// memory, and cancelling cannot stop it before the step ends. A command
	// that must stay bounded exits in it; the run goes on if it returns.
	Abort func(error)
}

// AbortFactor times a program's MemoryLimit is the heap at which its Abort
// is called.
const AbortFactor = 1.25

// Compile parses and compiles src. vars names the variables (with their $)
// that the program may use; each run passes their values in that order.
// The steps that could make a huge value at once are checked against the
// limits in limits.go (MaxString and the rest); going over one is a jq
// error that `try` can catch.
func Compile(src string, vars ...string) (*Program, error) { return compile(src, true, vars) }

// compile is Compile; guarded false leaves out the limits' checks, for
// programs known to build nothing big (the presets), which then run faster.
func compile(src string, guarded bool, vars []string) (*Program, error) {
	q, err := gojq.Parse(src)
	if err != nil {
		var pe *gojq.ParseError
		if errors.As(err, &pe) {
			// Offset is just past the offending token; point at its start.
			off := max(0, min(pe.Offset-len(pe.Token), len(src)))
			return nil, &CompileError{Src: src, Offset: off, Err: err}
		}
		return nil, &CompileError{Src: src, Offset: -1, Err: err}
	}
	opts := []gojq.CompilerOption{gojq.WithEnvironLoader(func() []string { return nil }), gojq.WithVariables(vars)}
	if guarded {
		if err := guard(q); err != nil {
			return nil, &CompileError{Src: src, Offset: -1, Err: err}
		}
		opts = append(opts, limitFuncs...)
	}
	code, err := gojq.Compile(q, opts...)
	if err != nil {
		return nil, &CompileError{Src: src, Offset: -1, Err: err}
	}
	return &Program{src: src, code: code}, nil
}

// Runner runs a program over many values, one after another. A watchdog
// cancels a run that takes longer than the program's Timeout, or while the
// heap is over its MemoryLimit.
type Runner struct {
	p       *Program
	started atomic.Int64 // UnixNano when the current run began; 0 when idle
	stop    chan struct{}
	heap    []metrics.Sample // what the watchdog reads of the heap

	// The context runs use. It lives across runs (making one per value
	// costs more than some programs do) and is replaced after the watchdog
	// cancels it or when a run brings another parent.
	mu     sync.Mutex
	parent context.Context
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// NewRunner starts a runner; Close stops its watchdog.
func (p *Program) NewRunner() *Runner {
	r := &Runner{p: p, stop: make(chan struct{})}
	if p.Timeout >= 0 {
		go r.watch()
	}
	return r
}

func (r *Runner) timeout() time.Duration {
	if r.p.Timeout > 0 {
		return r.p.Timeout
	}
	return DefaultTimeout
}

// memoryTick is how often the watchdog looks at the heap during a run: a
// program that doubles a string each step must be stopped within a step or
// two of passing the limit.
const memoryTick = 2 * time.Millisecond

func (r *Runner) watch() {
	// At least every millisecond: a tick of 0 would panic.
	every := max(time.Millisecond, min(r.timeout()/4, 250*time.Millisecond))
	if r.p.MemoryLimit > 0 {
		every = min(every, memoryTick)
		r.heap = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-r.stop:
			return
		case now := <-tick.C:
			s := r.started.Load()
			if s == 0 {
				continue
			}
			if now.UnixNano()-s > int64(r.timeout()) {
				r.cancelRun(ErrTimeout)
			}
			// Past its timeout too: a step that cannot be stopped may be
			// what keeps the run going.
			if r.heap != nil {
				h := r.heapBytes()
				if h > r.p.MemoryLimit {
					r.cancelRun(ErrMemory)
				}
				if r.p.Abort != nil && float64(h) > AbortFactor*float64(r.p.MemoryLimit) {
					r.p.Abort(fmt.Errorf("%w (limit %d MiB): one step passed %d MiB, and it cannot be stopped midway",
						ErrMemory, r.p.MemoryLimit>>20, h>>20))
				}
			}
		}
	}
}

// heapBytes is the heap's size as MemoryLimit counts it.
func (r *Runner) heapBytes() int64 {
	metrics.Read(r.heap)
	var n uint64
	for _, s := range r.heap {
		if s.Value.Kind() == metrics.KindUint64 {
			n += s.Value.Uint64()
		}
	}
	return int64(n)
}

func (r *Runner) cancelRun(cause error) {
	r.mu.Lock()
	if r.cancel != nil {
		r.cancel(cause)
	}
	r.mu.Unlock()
}

// Close stops the watchdog.
func (r *Runner) Close() {
	close(r.stop)
	r.cancelRun(context.Canceled)
}

// runContext returns the context for a run under parent.
func (r *Runner) runContext(parent context.Context) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil || r.parent != parent || r.ctx.Err() != nil {
		if r.cancel != nil {
			r.cancel(context.Canceled)
		}
		r.parent = parent
		r.ctx, r.cancel = context.WithCancelCause(parent)
	}
	return r.ctx
}

// ErrTimeout is returned when a program runs too long on one value, and
// ErrMemory when the heap passed the program's MemoryLimit during a run.
var (
	ErrTimeout = errors.New("jq: program ran too long on one value")
	ErrMemory  = errors.New("jq: program used too much memory on one value")
)

// Run runs the program on v and calls emit with each output. A jq error
// (`error("x")`, a type error) is returned as an error.
func (r *Runner) Run(ctx context.Context, v any, emit func(any) error) error {
	return r.RunWith(ctx, v, nil, emit)
}

// RunWith is Run with the values of the variables the program was compiled
// with, in their order.
func (r *Runner) RunWith(parent context.Context, v any, vars []any, emit func(any) error) error {
	ctx := parent
	if r.p.Timeout >= 0 {
		ctx = r.runContext(parent)
		r.started.Store(time.Now().UnixNano())
		defer r.started.Store(0)
	}
	iter := r.p.code.RunWithContext(ctx, v, vars...)
	for {
		out, ok := iter.Next()
		if !ok {
			return nil
		}
		if err, ok := out.(error); ok {
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				if parent.Err() != nil {
					return context.Cause(parent)
				}
				if errors.Is(context.Cause(ctx), ErrMemory) {
					// Collect what the run left now, so that the next run
					// does not start over the limit.
					iter = nil
					runtime.GC()
					return fmt.Errorf("%w (limit %d MiB)", ErrMemory, r.p.MemoryLimit>>20)
				}
				return fmt.Errorf("%w (limit %v)", ErrTimeout, r.timeout())
			}
			var he *gojq.HaltError
			if errors.As(err, &he) && he.Value() == nil {
				return nil // halt: stop without output
			}
			return fmt.Errorf("jq: %w", err)
		}
		if err := emit(out); err != nil {
			return err
		}
	}
}

// RecordValue turns a record into the value a jq program sees: an object with
// the guide's field names, null for empty optional fields, and metadata as a
// JSON value (numbers kept exact).
func RecordValue(r *vibekit.Record) map[string]any {
	m := make(map[string]any, 11)
	m["id"] = int(r.ID)
	m["sessionId"] = r.SessionID
	m["eventType"] = string(r.EventType)
	m["agentType"] = r.AgentType
	m["mode"] = optional(r.Mode)
	m["prompt"] = optional(r.Prompt)
	m["streamData"] = optional(r.StreamData)
	m["sandboxId"] = optional(r.SandboxID)
	m["repoUrl"] = optional(r.RepoURL)
	m["timestamp"] = int(r.Timestamp)
	m["metadata"] = nil
	if len(r.Metadata) > 0 {
		v, err := vibekit.DecodeValue(r.Metadata)
		if err != nil {
			m["metadata"] = string(r.Metadata) // not JSON: as the text it is
		} else {
			m["metadata"] = v
		}
	}
	return m
}

func optional(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// AppendValue appends v, a value a program emitted, as compact JSON in jq's
// style (object keys sorted).
func AppendValue(dst []byte, v any) []byte {
	b, _ := gojq.Marshal(v) // never fails for values gojq emits
	return append(dst, b...)
}
