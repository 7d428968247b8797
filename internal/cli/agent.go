package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/jq"
	"github.com/vibekit/vibekit-pipe/reader"
	"github.com/vibekit/vibekit-pipe/redact"
)

// agentOptions are the flags of agent-aware ingest: a map program (--preset
// or --map), redaction, and a command to run (the arguments after --).
type agentOptions struct {
	preset         string
	mapProgram     string
	printPreset    bool
	redact         string
	redactPatterns repeated
	hashFields     repeated
	hashKey        string
	// abortMap ends the process when a --map step that cannot be stopped
	// passes the memory bound (jq.Program.Abort); set by runPipe.
	abortMap func(error)
	// transcripts follows every agent's transcript directory (--transcripts)
	transcripts bool
	roots       []transcriptRoot // the directories it follows

	agentSet bool     // --agent was given (by flag, environment or config file)
	command  []string // the command after --; empty: read stdin
}

func (a *agentOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&a.preset, "preset", "", "map each input line with this built-in jq `program`: "+strings.Join(jq.PresetNames(), ", "))
	fs.StringVar(&a.mapProgram, "map", "", "map each input JSON object to records with this jq `program` (empty drops it)")
	fs.BoolVar(&a.printPreset, "print-preset", false, "print the --preset program and exit")
	fs.BoolVar(&a.transcripts, "transcripts", false, "follow every agent's transcripts on this machine (Claude Code, Codex, Gemini CLI), each file through its agent's preset")
	fs.StringVar(&a.redact, "redact", "secrets", "redact `level`: none, secrets (API keys, tokens, private keys, URL passwords) or all (also emails and card numbers)")
	fs.Var(&a.redactPatterns, "redact-pattern", "also redact what this `NAME=REGEX` matches, as [REDACTED:NAME] (repeatable)")
	fs.Var(&a.hashFields, "hash-field", "store this `field` (metadata.userId, prompt, ...) as a keyed hash (repeatable; needs --hash-key)")
	fs.StringVar(&a.hashKey, "hash-key", "", "secret `key` of the --hash-field hashes (better set in VIBEKIT_HASH_KEY than on the command line)")
}

// parseCommand takes the arguments left after the flags as the command to
// run. They must follow "--": a stray argument is more likely a file the
// user meant to read than a program to run.
func (a *agentOptions) parseCommand(args, rest []string) error {
	if len(rest) == 0 {
		return nil
	}
	if i := len(args) - len(rest) - 1; i < 0 || args[i] != "--" {
		return usageErrorf("unexpected argument %q (input comes from stdin; a command to run follows --)", rest[0])
	}
	a.command = rest
	return nil
}

// check validates the agent flags and notes which were given.
func (a *agentOptions) check(fs *flag.FlagSet) error {
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "agent" {
			a.agentSet = true
		}
	})
	if a.preset != "" && a.mapProgram != "" {
		return usageErrorf("--preset and --map exclude each other: a preset is a map program")
	}
	if a.printPreset && a.preset == "" {
		return usageErrorf("--print-preset prints the --preset program: name one (%s)", strings.Join(jq.PresetNames(), ", "))
	}
	if _, err := redact.ParseLevel(a.redact); err != nil {
		return usageErrorf("--redact: %v", err)
	}
	if a.transcripts && (a.preset != "" || a.mapProgram != "") {
		return usageErrorf("--transcripts reads each file with its agent's preset: it does not take --preset or --map")
	}
	return nil
}

// printPresetProgram prints the --preset program, for users to read or copy
// into a --map of their own.
func printPresetProgram(w io.Writer, name string) error {
	src, ok := jq.Preset(name)
	if !ok {
		return usageErrorf("--preset: no preset %q (presets: %s)", name, strings.Join(jq.PresetNames(), ", "))
	}
	_, err := io.WriteString(w, src)
	return err
}

// agent is the state of agent-aware ingest in one run: the map program, the
// redactor and the command run. Its zero value does nothing.
type agent struct {
	mapper     *jq.Mapper                // nil: lines are not mapped
	trans      *transcripts              // --transcripts: a Mapper per followed transcript file
	maxLine    int                       // --max-line-bytes: the largest document joined
	red        *redact.Redactor          // nil: nothing to redact
	streams    map[string]*redact.Stream // by source: a private key printed over several lines
	cmd        *command                  // nil: no command runs
	dec        jq.ObjectDecoder          // for lines not decoded ahead
	pending    bool                      // the Mapper holds a start row back
	heldSource string                    // the source of the line it came from
	heldCP     *vibekit.Checkpoint       // heldSource's position, put off while the row is held
}

// newAgent compiles the map program and sets up redaction. It runs before
// the database is opened, so that a bad program or pattern leaves no file.
// It redacts the flags' values in o, so the rows the pipe makes of them are
// clean.
func newAgent(o *pipeOptions) (agent, error) {
	a := agent{maxLine: o.maxLine}
	if o.prompt == "" && len(o.command) > 0 {
		// claude -p "..." never echoes its prompt: the command line has it.
		o.prompt = agentPrompt(o.command)
	}
	level, _ := redact.ParseLevel(o.redact)
	ro := redact.Options{Level: level, HashFields: o.hashFields, HashKey: []byte(o.hashKey)}
	for _, s := range o.redactPatterns {
		p, err := redact.ParsePattern(s)
		if err != nil {
			return agent{}, usageErrorf("--redact-pattern: %v", err)
		}
		ro.Patterns = append(ro.Patterns, p)
	}
	r, err := redact.New(ro)
	switch {
	case errors.Is(err, redact.ErrNoHashKey):
		return agent{}, usageErrorf("--hash-field needs a key: set VIBEKIT_HASH_KEY (or --hash-key) to a secret kept apart from the database")
	case err != nil:
		return agent{}, usageErrorf("%v", err)
	}
	if r.Enabled() {
		a.red = r
		a.streams = map[string]*redact.Stream{}
		// The flags end up in rows: the prompt, sandbox, repo URL (which may
		// hold a password) and, for --hash-field, the session id.
		rec := vibekit.Record{SessionID: o.session, Mode: o.mode, Prompt: o.prompt, SandboxID: o.sandboxID, RepoURL: o.repoURL}
		r.Record(&rec)
		o.session, o.mode, o.prompt, o.sandboxID, o.repoURL = rec.SessionID, rec.Mode, rec.Prompt, rec.SandboxID, rec.RepoURL
	}

	var p *jq.Program
	switch {
	case o.preset != "":
		if _, ok := jq.Preset(o.preset); !ok {
			return agent{}, usageErrorf("--preset: no preset %q (presets: %s)", o.preset, strings.Join(jq.PresetNames(), ", "))
		}
		p, err = jq.CompilePreset(o.preset)
	case o.mapProgram != "":
		p, err = jq.CompileMap(o.mapProgram)
	}
	if err != nil {
		return agent{}, err // a jq.CompileError: exit 3
	}
	if p != nil {
		p.MemoryLimit = jqMemoryLimit
		if o.mapProgram != "" && o.abortMap != nil {
			// A step of the user's program that cannot be stopped midway
			// (a regex over a huge line) would grow the heap without bound.
			p.Abort = o.abortMap
		}
	}
	if !o.agentSet && o.preset != "" {
		// The preset's agent: its own rows name it anyway, and so do the
		// --session session's (plain text between, a command's start and end).
		o.agent, o.agentSet = o.preset, true
	}
	if o.transcripts {
		if a.trans, err = newTranscripts(o.roots); err != nil {
			return agent{}, err
		}
	}
	if p != nil {
		mo := jq.MapOptions{Session: o.session, Mode: o.mode, Prompt: o.prompt, SandboxID: o.sandboxID, RepoURL: o.repoURL}
		if len(o.follow) > 0 || len(o.fifos) > 0 {
			// $run scopes an agent's running totals (Claude Code's cumulative
			// results). A follower stopped and started again reads on in the
			// same files: its $run stays, so the next total counts by its
			// increase, not whole.
			h := sha256.Sum256([]byte(strings.Join(append(append([]string{o.db}, o.follow...), o.fifos...), "\x00")))
			mo.Run = "follow-" + hex.EncodeToString(h[:6])
		}
		if o.agentSet {
			mo.Agent = o.agent
		}
		a.mapper = jq.NewMapper(p, mo)
		if os.Getenv("GOGC") == "" {
			// A map program makes many short-lived values (a map per
			// line, and jq's own) and keeps few: collecting less often
			// saves a seventh of the CPU, for ~30 MiB more memory.
			debug.SetGCPercent(400)
		}
	}
	return a, nil
}

func (a agent) close() {
	if a.mapper != nil {
		a.mapper.Close()
	}
	if a.trans != nil {
		a.trans.close()
	}
}

// source is src, its lines decoded and mapped ahead of the main loop if a
// map program runs.
func (a *agent) source(src source, now func() time.Time) source {
	if a.mapper == nil && a.trans == nil {
		return src
	}
	if a.mapper != nil {
		// A pretty-printed document (gemini -o json) is one input for the program.
		src = &documents{src: src, max: a.maxLine}
	}
	return &mapAhead{src: src, a: a, now: now, decoders: sync.Pool{New: func() any { return new(jq.ObjectDecoder) }}}
}

// mapAhead runs the map program on the lines of src before the main loop
// gets them, in a pipeline: each line is decoded on the goroutine that read
// it, and mapped on a goroutine of its own, in the order the lines arrive
// (the Mapper's state needs them one at a time). The main loop then only
// redacts and batches the records: decoding and mapping are most of the
// work of a mapped line.
type mapAhead struct {
	src      source
	a        *agent
	now      func() time.Time
	decoders sync.Pool // of *jq.ObjectDecoder: src may emit from several goroutines
}

// mapped is what the map program made of a line, carried to the main loop
// in the line's Value.
type mapped struct {
	recs    []vibekit.Record
	n       int   // the records of the line itself; 0: dropped (a skip)
	err     error // the reason to reject the line
	text    bool  // not a JSON object: its rows are redacted as text
	pending bool  // after it, the Mapper holds a start row back
}

// notObject marks a line decoded ahead that is not a JSON object.
type notObject struct{}

func (m *mapAhead) Run(ctx context.Context, emit func(reader.Line) error) error {
	lines := make(chan reader.Line, 256)
	// Lines waiting here are read but not yet in the pipe's byte budget:
	// bound them too, so reading waits when mapping or the store is slow.
	budget := newByteBudget(pipeBudget)
	done := make(chan error, 1)
	go func() {
		var first error
		for l := range lines {
			budget.release(int64(len(l.Data)))
			if l.Value != nil {
				obj, _ := l.Value.(map[string]any)
				l.Value = m.a.mapLine(&l, obj, m.now())
			}
			if err := emit(l); err != nil && first == nil {
				first = err
			}
		}
		done <- first
	}()
	err := m.src.Run(ctx, func(l reader.Line) error {
		if !l.Mark && !l.Overlong && l.Source != stderrSource && len(bytes.TrimSpace(l.Data)) > 0 {
			dec := m.decoders.Get().(*jq.ObjectDecoder)
			if obj, ok := dec.Decode(l.Data); ok {
				l.Value = obj
			} else {
				l.Value = notObject{}
			}
			m.decoders.Put(dec)
		}
		budget.acquire(int64(len(l.Data)))
		lines <- l
		return nil
	})
	close(lines)
	return errors.Join(err, <-done)
}

// mapLine runs the map program on a line: obj is the line as a JSON object,
// nil if it is not one.
func (a *agent) mapLine(l *reader.Line, obj map[string]any, now time.Time) *mapped {
	m, preset := a.mapperOf(l)
	if m == nil {
		return nil // not the agent's: a plain line
	}
	res := &mapped{}
	emit := func(rec vibekit.Record) { res.recs = append(res.recs, rec) }
	switch {
	case obj != nil && preset != "" && foreignLine(preset, obj):
		res.err = fmt.Errorf("not a line of %s's transcripts: it has none of their keys", preset)
	case obj != nil:
		res.n, res.err = m.Value(obj, now, emit)
	case a.trans != nil && l.Kind == "file":
		// Every line of an agent's transcript is a JSON object: any other
		// is damage (a cut line, a foreign write), kept as a reject.
		res.err = errors.New("not a JSON object: every line of an agent's transcript is one")
	default:
		res.text = true
		res.n = m.Text(vibekit.ValidUTF8(l.Data), l.Partial, now, emit)
	}
	res.pending = m.Pending()
	return res
}

// mapperOf is the Mapper of l's lines: the map program's, or with
// --transcripts the one of l's transcript file; nil for a line no program
// maps.
func (a *agent) mapperOf(l *reader.Line) (*jq.Mapper, string) {
	if a.trans != nil && l.Kind == "file" {
		return a.trans.mapper(l.Source, lineSource(l))
	}
	return a.mapper, ""
}

// stream is the redaction state of one input's plain-text lines.
func (a *agent) stream(source string) *redact.Stream {
	s, ok := a.streams[source]
	if !ok {
		s = a.red.NewStream()
		a.streams[source] = s
	}
	return s
}

// redactRecord redacts a row that stands alone, not a line of an input: the
// start and end rows the pipe writes itself, a map program's last records.
func (a *agent) redactRecord(rec *vibekit.Record) {
	if a.red != nil {
		a.red.Record(rec)
	}
}

// redactText redacts a row made of a line of source (plain text or a
// record), in the context of the lines before it.
func (a *agent) redactText(rec *vibekit.Record, source string) {
	if a.red != nil {
		a.stream(source).Record(rec)
	}
}

// redactReject redacts a rejected line of source and the reason, which may
// quote it.
func (a *agent) redactReject(rej *vibekit.Reject, source string) {
	if a.red != nil {
		a.stream(source).Reject(rej)
	}
}

// lineSource is the name the rows of l record: its file's identity when it
// has one (see vibekit.Checkpoint.SourceKey), else its source.
func lineSource(l *reader.Line) string {
	if l.Key != "" {
		return l.Key
	}
	return l.Source
}

// takes reports whether l is the agent's to handle rather than the plain
// pipe's: every line when a map program runs, and a command's stderr.
func (a *agent) takes(l *reader.Line) bool {
	return a.mapper != nil || a.cmd != nil && l.Source == stderrSource ||
		a.trans != nil && l.Kind == "file" && a.trans.root(l.Source) != nil
}

// agentLine stores a line that the agent takes (see takes): a line of a
// command's stderr, or a line through the map program. source is the name
// its rows record.
func (p *pipe) agentLine(l *reader.Line, source string, now time.Time) {
	if len(bytes.TrimSpace(l.Data)) == 0 {
		p.b.CountLine(l.Length, true, now)
		p.m.skipped++
		return
	}
	if l.Source == stderrSource {
		p.stderrLine(l, source, now)
		return
	}
	res, ok := l.Value.(*mapped)
	if !ok || res == nil { // not mapped ahead
		obj, _ := p.ag.dec.Decode(l.Data)
		res = p.ag.mapLine(l, obj, now)
	}
	// A start row held back goes out first, ahead of this line's records:
	// it keeps the source it was read from, whose position is then committed.
	released := p.ag.pending && len(res.recs) > 0
	heldFrom := p.ag.heldSource
	if res.pending && (!p.ag.pending || len(res.recs) > 0) {
		// This line's record is the start row held back (any held before
		// it went out first).
		p.ag.heldSource = source
	}
	p.ag.pending = res.pending
	var rs *redact.Stream
	if p.ag.red != nil { // a private key may come a line per record, too
		rs = p.ag.stream(source)
	}
	for i, rec := range res.recs {
		if rs != nil {
			rs.Record(&rec)
		} else {
			p.ag.redactRecord(&rec)
		}
		src := source
		pos := linePos(l)
		if released && i == 0 {
			src, pos = heldFrom, vibekit.LinePos{}
		}
		p.b.AddRecordAt(rec, src, pos, now)
	}
	if released {
		p.releaseHeld(now)
	}
	n, err := res.n, res.err
	p.b.CountLine(l.Length, err == nil && n == 0, now)
	switch {
	case err != nil:
		p.reject(l, err.Error(), now)
	case n == 0:
		p.m.skipped++ // the program dropped it (`empty`)
	default:
		p.m.rows++
		p.m.generated += int64(len(res.recs) - 1) // held or added start rows, and a line's further records
	}
}

// checkpoint records a source's position after a line, unless the map
// program holds back a start row that came from that source: the row is in
// no batch yet, so a followed file must not be committed as read past the
// line it came from. (Lines of that source that become no row meanwhile, a
// skip or a reject, may then be read again after a crash.)
func (p *pipe) checkpoint(c vibekit.Checkpoint, now time.Time) {
	if p.ag.pending && c.SourceKey() == p.ag.heldSource {
		p.ag.heldCP = &c // committed once the held row is in a batch
		return
	}
	p.b.Checkpoint(c, now)
}

// releaseHeld commits the position put off while a start row was held, now
// that the row is in the batch.
func (p *pipe) releaseHeld(now time.Time) {
	if p.ag.heldCP != nil {
		p.b.Checkpoint(*p.ag.heldCP, now)
		p.ag.heldCP = nil
	}
}

// endInput writes what ends the input's sessions: the map program's end
// rows, a command's end or error row, or the plain-text session's end row.
func (p *pipe) endInput(ctx context.Context, readErr error) {
	if m := p.ag.mapper; m != nil {
		now := p.now()
		held := p.ag.pending // a held start row goes out first
		m.Finish(now, inputStatus(ctx, readErr), func(rec vibekit.Record) {
			p.ag.redactRecord(&rec)
			p.m.generated++
			src := ""
			if held {
				src, held = p.ag.heldSource, false
			}
			p.b.AddRecord(rec, src, now)
		})
		if p.ag.pending {
			p.ag.pending = false
			p.releaseHeld(now)
		}
	}
	switch {
	case p.ag.cmd != nil:
		p.endCommand()
	case p.ag.mapper == nil:
		p.endSession(ctx, readErr)
	}
}

// inputStatus says how the input ended, for end rows.
func inputStatus(ctx context.Context, readErr error) string {
	switch {
	case errors.Is(readErr, reader.ErrOutputClosed):
		return "output closed"
	case readErr != nil:
		return "read error"
	case ctx.Err() != nil:
		return "interrupted"
	}
	return "success"
}
