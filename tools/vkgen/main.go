// Command vkgen writes seeded, realistic telemetry events as NDJSON on stdout:
// the input of `make bench`. Sessions interleave; each is one start row, a few
// to a few hundred stream rows, then an end row or (about 5%) an error row.
// With -format claude it writes Claude Code's stream-json output instead (see
// claude.go), for the preset figures. The same flags give the same bytes on
// every machine and Go version.
//
//	vkgen -n 1000000 -seed 1 > events.ndjson
//	vkgen -n 1000000 -seed 1 -format claude > claude.ndjson
//	vkgen -n 200000 -format claude-transcripts -dir /tmp/home/.claude
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"time"
)

func main() {
	var cfg config
	flag.IntVar(&cfg.events, "n", 1000000, "number of events (lines) to write; 0 or at least 2")
	flag.Uint64Var(&cfg.seed, "seed", 1, "random seed; the same seed gives the same bytes")
	flag.IntVar(&cfg.concurrent, "sessions", 8, "sessions in flight at once, their rows interleaved")
	flag.StringVar(&cfg.format, "format", "events", "what to write: events (telemetry records), claude (Claude Code stream-json) or claude-transcripts (Claude Code's transcript files, under -dir)")
	dir := flag.String("dir", "", "with -format claude-transcripts: the directory to write projects/<project>/<session>.jsonl in")
	verbose := flag.Bool("v", false, "print events, sessions, bytes, mean line length and speed to stderr")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "vkgen: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	gen := generate
	switch cfg.format {
	case "events":
	case "claude":
		gen = generateClaude
	case "claude-transcripts":
		gen = func(io.Writer, config) (stats, error) { return generateTranscripts(*dir, cfg) }
	default:
		fmt.Fprintf(os.Stderr, "vkgen: -format %q: use events, claude or claude-transcripts\n", cfg.format)
		os.Exit(2)
	}

	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	began := time.Now()
	st, err := gen(out, cfg)
	if err == nil {
		err = out.Flush()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vkgen: %v\n", err)
		os.Exit(1)
	}
	if *verbose {
		secs := time.Since(began).Seconds()
		mean := 0.0
		if st.events > 0 {
			mean = float64(st.bytes) / float64(st.events)
		}
		fmt.Fprintf(os.Stderr, "vkgen: %d events, %d sessions, %d bytes, mean line %.1f bytes, %.2fs, %.0f MB/s\n",
			st.events, st.sessions, st.bytes, mean, secs, float64(st.bytes)/1e6/secs)
	}
}

// config is what the flags choose.
type config struct {
	events     int    // lines to write
	seed       uint64 // PCG seed
	concurrent int    // sessions in flight at once
	format     string // events or claude
}

// stats describes what generate wrote.
type stats struct {
	events   int64
	sessions int64
	bytes    int64 // including newlines
}

// baseTime is 2026-11-01T00:00:00Z in Unix milliseconds: the first session starts then.
const baseTime = 1793491200000

// flushAt is the size at which the line buffer is handed to the writer.
const flushAt = 256 << 10

// generate writes cfg.events NDJSON lines to w.
func generate(w io.Writer, cfg config) (stats, error) {
	switch {
	case cfg.events < 0 || cfg.events == 1:
		return stats{}, fmt.Errorf("-n %d: want 0 or at least 2 (a session needs a start and an end row)", cfg.events)
	case cfg.concurrent < 1:
		return stats{}, fmt.Errorf("-sessions %d: want at least 1", cfg.concurrent)
	}
	g := &generator{
		rng:       rand.New(rand.NewPCG(cfg.seed, 0x766962656b6974)), // "vibekit"
		corpus:    newCorpus(),
		now:       baseTime,
		remaining: cfg.events,
		buf:       make([]byte, 0, flushAt+8<<10),
	}
	for range cfg.concurrent {
		if s := g.newSession(); s != nil {
			g.active = append(g.active, s)
		}
	}
	for len(g.active) > 0 {
		i := g.rng.IntN(len(g.active))
		if done := g.emit(g.active[i]); done {
			if s := g.newSession(); s != nil {
				g.active[i] = s
			} else {
				g.active[i] = g.active[len(g.active)-1]
				g.active = g.active[:len(g.active)-1]
			}
		}
		if len(g.buf) >= flushAt {
			if err := g.flush(w); err != nil {
				return g.stats, err
			}
		}
	}
	return g.stats, g.flush(w)
}

// generator holds the state of one run; nothing in it is shared.
type generator struct {
	rng       *rand.Rand
	corpus    *corpus
	now       int64 // the clock, Unix ms; every row moves it on
	remaining int   // events not yet promised to a session
	active    []*session
	buf       []byte
	stats     stats
}

// session is one agent run in flight.
type session struct {
	id        []byte // UUID text
	agent     *agent
	model     string
	mode      string
	sandboxID []byte // empty: none
	repoURL   string // empty: none
	tags      []string
	prompt    string
	streams   int  // stream rows still to write
	fails     bool // ends with an error row
	started   bool
	chunk     int
	begin     int64 // timestamp of the start row
	last      int64 // timestamp of the latest row
	tokensIn  int
	tokensOut int
}

func (g *generator) flush(w io.Writer) error {
	if len(g.buf) == 0 {
		return nil
	}
	if _, err := w.Write(g.buf); err != nil {
		return fmt.Errorf("write events: %w", err)
	}
	g.buf = g.buf[:0]
	return nil
}

// newSession plans a session that fits in the events left, or returns nil
// when none are left. It never leaves exactly one event over, so every
// session gets its start and its end.
func (g *generator) newSession() *session {
	if g.remaining < 2 {
		return nil
	}
	r := g.rng
	// Stream rows per session: log-uniform from 3 to 300.
	streams := int(math.Exp(r.Float64()*math.Log(100)) * 3)
	rows := streams + 2
	if g.remaining-rows < 2 {
		rows = g.remaining
		streams = rows - 2
	}
	g.remaining -= rows
	g.stats.sessions++

	a := g.corpus.pickAgent(r)
	s := &session{
		id:      appendUUID(nil, r),
		agent:   a,
		model:   a.models[r.IntN(len(a.models))],
		mode:    "code",
		streams: streams,
		fails:   r.IntN(100) < 5,
		prompt:  g.corpus.prompts[r.IntN(len(g.corpus.prompts))],
	}
	if r.IntN(100) < 30 {
		s.mode = "chat"
	}
	if r.IntN(100) < 85 {
		s.sandboxID = appendHex(append([]byte(nil), "sbx-"...), r.Uint64(), 12)
	}
	if r.IntN(100) < 60 {
		s.repoURL = g.corpus.repos[r.IntN(len(g.corpus.repos))]
	}
	for range 1 + r.IntN(3) {
		s.tags = append(s.tags, g.corpus.tags[r.IntN(len(g.corpus.tags))])
	}
	return s
}

// emit writes the next row of s and reports whether it was the last.
func (g *generator) emit(s *session) (done bool) {
	r := g.rng
	g.now += int64(r.IntN(250))
	ts := max(g.now, s.last+1)
	s.last = ts

	b := g.buf
	start := len(b)
	b = append(b, `{"sessionId":"`...)
	b = append(b, s.id...)
	switch {
	case !s.started:
		s.started = true
		s.begin = ts
		b = append(b, `","eventType":"start"`...)
		b = g.appendCommon(b, s)
		b = append(b, `,"prompt":"`...)
		b = appendEscaped(b, s.prompt)
		b = append(b, '"')
		b = g.appendIDs(b, s)
		b = append(b, `,"metadata":{"model":{"name":"`...)
		b = append(b, s.model...)
		b = append(b, `","provider":"`...)
		b = append(b, s.agent.provider...)
		b = append(b, `"},"cwd":"/workspace","git":{"branch":"`...)
		b = append(b, g.corpus.branches[r.IntN(len(g.corpus.branches))]...)
		b = append(b, `","dirty":`...)
		b = appendBool(b, r.IntN(2) == 0)
		b = append(b, `},"tags":`...)
		b = appendStrings(b, s.tags)
		b = append(b, '}')
	case s.streams > 0:
		s.streams--
		s.chunk++
		in, out := 5+r.IntN(200), 10+r.IntN(600)
		s.tokensIn += in
		s.tokensOut += out
		b = append(b, `","eventType":"stream"`...)
		b = g.appendCommon(b, s)
		b = append(b, `,"streamData":"`...)
		b = g.corpus.appendStreamData(b, r)
		b = append(b, '"')
		b = g.appendIDs(b, s)
		b = append(b, `,"metadata":{"chunk":`...)
		b = appendInt(b, s.chunk)
		switch k := r.IntN(10); {
		case k < 5:
			b = append(b, `,"model":{"name":"`...)
			b = append(b, s.model...)
			b = append(b, `","tokens":{"in":`...)
			b = appendInt(b, in)
			b = append(b, `,"out":`...)
			b = appendInt(b, out)
			b = append(b, `}},"tags":`...)
			b = appendStrings(b, s.tags)
		case k < 8:
			b = append(b, `,"type":"text","model":{"name":"`...)
			b = append(b, s.model...)
			b = append(b, `"}`...)
		default:
			t := g.corpus.tools[r.IntN(len(g.corpus.tools))]
			b = append(b, `,"type":"tool_use","tool":{"name":"`...)
			b = append(b, t.name...)
			b = append(b, `","input":`...)
			b = append(b, t.input...)
			b = append(b, '}')
		}
		b = append(b, '}')
	case s.fails:
		done = true
		e := g.corpus.errors[r.IntN(len(g.corpus.errors))]
		b = append(b, `","eventType":"error"`...)
		b = g.appendCommon(b, s)
		b = append(b, `,"prompt":"`...)
		b = appendEscaped(b, e.message)
		b = append(b, '"')
		b = g.appendIDs(b, s)
		b = append(b, `,"metadata":{"status":"failed","duration":`...)
		b = appendInt(b, int(ts-s.begin))
		b = append(b, `,"chunks":`...)
		b = appendInt(b, s.chunk)
		b = append(b, `,"error":{"code":"`...)
		b = append(b, e.code...)
		b = append(b, `","retryable":`...)
		b = appendBool(b, e.retryable)
		b = append(b, `}}`...)
	default:
		done = true
		b = append(b, `","eventType":"end"`...)
		b = g.appendCommon(b, s)
		b = g.appendIDs(b, s)
		b = append(b, `,"metadata":{"status":"completed","duration":`...)
		b = appendInt(b, int(ts-s.begin))
		b = append(b, `,"chunks":`...)
		b = appendInt(b, s.chunk)
		b = append(b, `,"exitCode":0,"tokens":{"in":`...)
		b = appendInt(b, s.tokensIn)
		b = append(b, `,"out":`...)
		b = appendInt(b, s.tokensOut)
		b = append(b, `}}`...)
	}
	b = append(b, `,"timestamp":`...)
	b = appendInt(b, int(ts))
	b = append(b, "}\n"...)

	g.stats.events++
	g.stats.bytes += int64(len(b) - start)
	g.buf = b
	return done
}

// appendCommon writes agentType and mode, after eventType.
func (g *generator) appendCommon(b []byte, s *session) []byte {
	b = append(b, `,"agentType":"`...)
	b = append(b, s.agent.name...)
	b = append(b, `","mode":"`...)
	b = append(b, s.mode...)
	return append(b, '"')
}

// appendIDs writes sandboxId and repoUrl when the session has them.
func (g *generator) appendIDs(b []byte, s *session) []byte {
	if len(s.sandboxID) > 0 {
		b = append(b, `,"sandboxId":"`...)
		b = append(b, s.sandboxID...)
		b = append(b, '"')
	}
	if s.repoURL != "" {
		b = append(b, `,"repoUrl":"`...)
		b = append(b, s.repoURL...)
		b = append(b, '"')
	}
	return b
}

// appendStreamData writes the escaped text of one stream chunk: prose and runs
// of code lines, sometimes fenced, cut to 20–2,000 characters. Most chunks are
// short, as streamed output is, with a long tail.
func (c *corpus) appendStreamData(b []byte, r *rand.Rand) []byte {
	want := 20 + int(1980*math.Pow(r.Float64(), 2.95))
	for want > 0 {
		if r.IntN(100) < 55 {
			b, want = appendFragment(b, c.prose[r.IntN(len(c.prose))], want)
			continue
		}
		lang := c.code[r.IntN(len(c.code))]
		fenced := r.IntN(100) < 30
		if fenced {
			b, want = appendFragment(b, lang.fence, want)
		}
		first, lines := r.IntN(len(lang.lines)), 1+r.IntN(6)
		for i := 0; i < lines && want > 0; i++ {
			b, want = appendFragment(b, lang.lines[(first+i)%len(lang.lines)], want)
		}
		if fenced && want > 0 {
			b, want = appendFragment(b, c.fenceEnd, want)
		}
	}
	return b
}

// appendFragment writes at most want characters of f, escaped, and returns
// how many characters are still wanted.
func appendFragment(b []byte, f fragment, want int) ([]byte, int) {
	if f.runes <= want {
		return append(b, f.escaped...), want - f.runes
	}
	n := 0
	for i := range f.raw {
		if n == want {
			return appendEscaped(b, f.raw[:i]), 0
		}
		n++
	}
	return appendEscaped(b, f.raw), want - n
}

// appendEscaped writes s as the inside of a JSON string. Non-ASCII text is
// written as is (s must be valid UTF-8); quotes, backslashes and control
// characters are escaped.
func appendEscaped(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	return append(b, s[start:]...)
}

// appendStrings writes a JSON array of strings that need no escaping.
func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, s...)
		b = append(b, '"')
	}
	return append(b, ']')
}

func appendInt(b []byte, n int) []byte { return strconv.AppendInt(b, int64(n), 10) }

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}

// appendHex writes the last digits hex digits of v.
func appendHex(b []byte, v uint64, digits int) []byte {
	const hex = "0123456789abcdef"
	for i := digits - 1; i >= 0; i-- {
		b = append(b, hex[(v>>(4*uint(i)))&0xf])
	}
	return b
}

// appendUUID writes a random (version 4) UUID.
func appendUUID(b []byte, r *rand.Rand) []byte {
	hi, lo := r.Uint64(), r.Uint64()
	hi = hi&^0xf000 | 0x4000     // version 4
	lo = lo&^(0xc<<60) | 0x8<<60 // RFC 4122 variant
	b = appendHex(b, hi>>32, 8)
	b = append(b, '-')
	b = appendHex(b, hi>>16, 4)
	b = append(b, '-')
	b = appendHex(b, hi, 4)
	b = append(b, '-')
	b = appendHex(b, lo>>48, 4)
	b = append(b, '-')
	return appendHex(b, lo, 12)
}
