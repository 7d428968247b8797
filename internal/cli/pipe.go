package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/batch"
	"github.com/vibekit/vibekit-pipe/reader"
	"github.com/vibekit/vibekit-pipe/redact"
	"github.com/vibekit/vibekit-pipe/rotate"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

// pipeBudget bounds the bytes of input lines held at once: in the channel
// from the reader, in the batch being filled and in the batch being
// committed. When the store is slower than the input, reading waits.
const pipeBudget = 8 << 20

// stopRetry is how long a failing commit is retried after the input ended or
// a signal, and how long one that fails for a full disk or an I/O error is
// retried at any time, before its rows are given up and counted.
const stopRetry = 30 * time.Second

type pipeOptions struct {
	db        string
	batchSize int
	flushMs   int
	indexes   bool
	maxLine   int
	session   string
	agent     string
	mode      string
	prompt    string
	sandboxID string
	repoURL   string
	quiet     bool
	stats     bool
	maxSizeMB int
	pruneDays int

	follow       pathList // files and globs to follow
	fifos        pathList
	fromEnd      bool
	poll         bool
	pollInterval time.Duration
	rotateWait   time.Duration

	agentOptions // --preset, --map, redaction, a command to run: agent.go

	// commitFailed, when set (by tests), is told of each failed commit.
	commitFailed func(error)
	// stopRetry, when set (by tests), replaces the const stopRetry.
	stopRetry time.Duration
	// countDropped, when set (by MainPipe), is how a second signal asks
	// the running pipe how many buffered rows stopping at once drops;
	// running says whether the pipe's loop is there to answer.
	countDropped chan chan int64
	running      atomic.Bool
}

// stallWarn is how long commits may wait for another writer's lock before
// the pipe says so; commitWait is how long one try waits for it.
const (
	stallWarn  = 3 * time.Second
	commitWait = 500 * time.Millisecond
)

const pipeLongHelp = `vibekit-pipe stores what it reads from stdin in a SQLite telemetry database
and writes the same bytes to stdout, so it can sit inside a pipeline.

Each input line becomes a row:
  - a JSON object with "eventType" or "sessionId" is a telemetry record,
    stored field for field (see README, "Input rules");
  - any other line is a "stream" row of the session named by --session,
    which gets a "start" row before its first line and an "end" row (with
    duration and line count) when the input ends;
  - a record with a field that cannot be coerced, or a line longer than
    --max-line-bytes, goes to the rejects table with the reason;
  - blank lines are counted and skipped.

--preset claude|codex|gemini maps each line of an agent's JSON output to records
with a built-in jq program (--print-preset shows it), --map with your own:
a JSON object in, records (or empty) out; see README, "Agent output".
Secrets are redacted before anything is stored (--redact none|secrets|all,
--redact-pattern NAME=REGEX, --hash-field with VIBEKIT_HASH_KEY). After --,
a command is run: its stdout is the input (and passes through), its stderr
passes through and is stored marked stderr, signals are passed on, and the
exit status is the command's, recorded on the session's last row.

Stream rows are committed every --stream-batch-size rows or after
--stream-flush-interval-ms; start, end and error rows at once. On EOF,
SIGINT, SIGTERM, SIGHUP or a closed stdout everything read is committed and
the exit status is 0. SIGUSR1 prints --stats without stopping; a second
SIGINT or SIGTERM stops at once, saying how many buffered rows it drops.
Rows the database refuses (a constraint or trigger of its schema) go to the
rejects with its message; a full disk is retried for 30 s, then rows are
counted as not stored while the input flows on (docs/CLI.md).

--follow reads files, and keeps reading them as they grow, like tail -F:
it survives rotation (rename or copytruncate), truncation, deletion and
re-creation, and globs pick up files and directories that appear later.
Each file's offset is committed with its rows, so a restart (even after
kill -9) resumes where the last commit stopped: every line is stored once.
--fifo reads a named pipe (created 0600 if missing) that writers open one
after another. Rows record their source, for dump --source. With --follow
or --fifo, stdin is read too if it is a pipe or a file (not a terminal or
/dev/null); when it ends, the files are read to their end and the run stops.
Lines from files and FIFOs are not copied to stdout. A ** in a --follow
pattern stands for any number of directories.

--transcripts follows every agent's transcripts on this machine, each file
through its agent's preset: Claude Code's (CLAUDE_CONFIG_DIR, else
~/.config/claude and ~/.claude: projects/**/*.jsonl, subagents' included),
Codex's (CODEX_HOME, else ~/.codex: sessions/**/*.jsonl) and Gemini CLI's
(~/.gemini/tmp/*/chats/*.jsonl), exactly once as --follow reads files, so
that "vibekit telemetry usage" reports what they used and cost. A line of a
transcript that is not a JSON object is a reject.

Settings come from flags, then VIBEKIT_* environment variables (VIBEKIT_DB,
VIBEKIT_STREAM_BATCH_SIZE, VIBEKIT_FOLLOW, ...), then a JSON config file
(--config; a list for the repeatable flags: "follow": ["a.log", "logs/*"]).

Examples:
  some-agent | vibekit-pipe --session s1 --agent claude --mode chat --prompt "fix the bug"
  claude -p "fix the bug" --output-format stream-json --verbose | vibekit-pipe --preset claude
  vibekit-pipe --preset codex -- codex exec --json "fix the bug"
  gemini -p "fix the bug" --output-format stream-json | vibekit-pipe --preset gemini
  vibekit-pipe --quiet < events.ndjson
  vibekit-pipe --db /var/log/vibekit/telemetry.db --stats < run.log > /dev/null
  vibekit-pipe --follow app.ndjson --follow 'logs/*.ndjson' < /dev/null
  vibekit-pipe --follow 'logs/*.ndjson' --from-end --poll < /dev/null
  true | vibekit-pipe --transcripts && vibekit telemetry usage daily
  vibekit-pipe --transcripts < /dev/null &     # and keep following them
  vibekit-pipe --follow 'logs/**/*.ndjson' < /dev/null
  mkfifo /tmp/vk; vibekit-pipe --fifo /tmp/vk < /dev/null &
  echo '{"sessionId":"s1","eventType":"start"}' > /tmp/vk`

func newPipeCommand(o *pipeOptions) *ffcli.Command {
	fs := flag.NewFlagSet("vibekit-pipe", flag.ContinueOnError)
	fs.StringVar(&o.db, "db", DefaultDB, "SQLite database `path` (the guide's path)")
	fs.IntVar(&o.batchSize, "stream-batch-size", 50, "commit after this many buffered stream `rows`")
	fs.IntVar(&o.flushMs, "stream-flush-interval-ms", 1000, "commit buffered rows at most this many `ms` after the oldest arrived")
	fs.BoolVar(&o.indexes, "enable-indexes", true, "keep the query indexes (false drops them, for write-heavy use)")
	fs.IntVar(&o.maxLine, "max-line-bytes", reader.DefaultMaxLine, "longest line stored; a longer one becomes a reject")
	fs.StringVar(&o.session, "session", "", "session `id` of plain-text lines (default: a new id per run)")
	fs.StringVar(&o.agent, "agent", "unknown", "agent `type` of plain-text lines (claude, codex, gemini, ...)")
	fs.StringVar(&o.mode, "mode", "", "`mode` of plain-text lines (chat, code, ...)")
	fs.StringVar(&o.prompt, "prompt", "", "`prompt` recorded on the session's start row")
	fs.StringVar(&o.sandboxID, "sandbox-id", "", "sandbox `id` recorded on the session's rows")
	fs.StringVar(&o.repoURL, "repo-url", "", "repository `url` recorded on the session's rows")
	fs.BoolVar(&o.quiet, "quiet", false, "do not copy the input to stdout")
	fs.BoolVar(&o.stats, "stats", false, "print ingest metrics to stderr at exit")
	fs.IntVar(&o.maxSizeMB, "max-size-mb", 100, "seal the database into <db>.archives/ beside it when its data passes this many `MB` (0: never)")
	fs.IntVar(&o.pruneDays, "prune-days", 0, "delete rows and archives older than this many `days` (at most 106751), at start and hourly (0: never)")
	fs.Var(&o.follow, "follow", "follow this file or glob `path`, like tail -F (repeatable)")
	fs.Var(&o.fifos, "fifo", "read this named pipe `path`, writer after writer (repeatable; created if missing)")
	fs.BoolVar(&o.fromEnd, "from-end", false, "start followed files that have no checkpoint at their end: only new lines")
	fs.BoolVar(&o.poll, "poll", false, "look at followed files every --poll-interval instead of watching them (fsnotify)")
	fs.DurationVar(&o.pollInterval, "poll-interval", 250*time.Millisecond, "how often --poll looks at followed files")
	fs.DurationVar(&o.rotateWait, "rotate-wait", 5*time.Second, "keep a rotated or deleted file open this long after it last grew, for late writes")
	o.agentOptions.register(fs)
	addConfigFlag(fs)
	return &ffcli.Command{
		Name:       "vibekit-pipe",
		ShortUsage: "vibekit-pipe [flags] < input\n  vibekit-pipe --follow PATH [--fifo PATH] [flags]\n  vibekit-pipe [flags] -- command [args...]",
		ShortHelp:  "store agent output and telemetry events in SQLite, passing them through",
		LongHelp:   pipeLongHelp,
		FlagSet:    fs,
		Options:    ffOptions(),
	}
}

// Largest values of the settings whose product overflows int64:
// --prune-days as a time.Duration, --stream-flush-interval-ms as one, and
// --max-size-mb in bytes. (213504 days overflowed to 26 minutes, and
// pruned everything.)
const (
	maxPruneDays = int64(math.MaxInt64 / int64(24*time.Hour))
	maxFlushMs   = int64(math.MaxInt64 / int64(time.Millisecond))
	maxSizeMB    = int64(math.MaxInt64 >> 20)
)

// checkLimits refuses, as usage errors, settings whose value does not fit
// in what they are turned into.
func checkLimits(o *pipeOptions) error {
	switch {
	case int64(o.pruneDays) > maxPruneDays:
		return usageErrorf("--prune-days %d does not fit in a duration: at most %d days (about 292 years)", o.pruneDays, maxPruneDays)
	case int64(o.flushMs) > maxFlushMs:
		return usageErrorf("--stream-flush-interval-ms %d does not fit in a duration: at most %d ms", o.flushMs, maxFlushMs)
	case int64(o.maxSizeMB) > maxSizeMB:
		return usageErrorf("--max-size-mb %d does not fit in a byte count: at most %d MB", o.maxSizeMB, maxSizeMB)
	}
	return nil
}

// RunPipe is vibekit-pipe: it returns the exit code.
func RunPipe(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) int {
	return runPipeWith(ctx, args, &pipeOptions{}, stdin, stdout, stderr)
}

// runPipeWith runs vibekit-pipe with the flags set in o; tests set o's hooks.
func runPipeWith(ctx context.Context, args []string, o *pipeOptions, stdin *os.File, stdout, stderr io.Writer) int {
	cmd := newPipeCommand(o)
	cmd.FlagSet.SetOutput(stderr)
	cmd.Exec = func(ctx context.Context, rest []string) error {
		if err := o.parseCommand(args, rest); err != nil {
			return err
		}
		if o.batchSize < 1 {
			return usageErrorf("--stream-batch-size must be at least 1, not %d", o.batchSize)
		}
		if o.flushMs < 0 {
			return usageErrorf("--stream-flush-interval-ms must not be negative")
		}
		if o.maxLine < 1 {
			return usageErrorf("--max-line-bytes must be at least 1")
		}
		if o.maxSizeMB < 0 || o.pruneDays < 0 {
			return usageErrorf("--max-size-mb and --prune-days must not be negative (0 turns them off)")
		}
		if err := checkLimits(o); err != nil {
			return err
		}
		if o.pollInterval <= 0 || o.rotateWait <= 0 {
			return usageErrorf("--poll-interval and --rotate-wait must be positive")
		}
		if len(o.command) > 0 && (len(o.follow) > 0 || len(o.fifos) > 0 || o.transcripts) {
			return usageErrorf("a command to run (after --) is the input: it does not combine with --follow, --fifo or --transcripts")
		}
		if o.transcripts {
			o.roots = transcriptRoots(os.Getenv)
			for _, r := range o.roots {
				o.follow = append(o.follow, r.pattern)
			}
		}
		if err := o.agentOptions.check(cmd.FlagSet); err != nil {
			return err
		}
		if o.printPreset {
			return printPresetProgram(stdout, o.preset)
		}
		return runPipe(ctx, o, stdin, stdout, stderr)
	}
	return report(stderr, "vibekit-pipe", cmd.ParseAndRun(ctx, args))
}

func runPipe(ctx context.Context, o *pipeOptions, stdin *os.File, stdout, stderr io.Writer) error {
	if o.session == "" {
		o.session = newSessionID(time.Now())
	}
	o.abortMap = func(err error) {
		// Called from the program's watchdog while the main loop waits for
		// the step: what is buffered cannot be committed from here. A
		// followed file is read again from its last commit.
		fmt.Fprintf(stderr, "vibekit-pipe: --map: %v; stopping now: the rows read since the last commit are not stored\n", err)
		os.Exit(ExitFailure)
	}
	ag, err := newAgent(o)
	if err != nil {
		return err
	}
	defer ag.close()
	// Another writer's lock is waited for as a commit waits for it: until
	// it frees (the input waits meanwhile, unread, so nothing is lost) or a
	// signal comes.
	db, err := sqlite.OpenContext(ctx, o.db, sqlite.Options{EnableIndexes: o.indexes, Waiting: waitingNotice(stderr, "vibekit-pipe", o.db)})
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetCommitWait(commitWait)
	rot, err := startRotator(ctx, db, o, stderr)
	if err != nil {
		return err
	}
	defer rot.Close()
	p := &pipe{
		o:       o,
		db:      db,
		b:       batch.New(o.batchSize, time.Duration(o.flushMs)*time.Millisecond),
		stderr:  stderr,
		now:     time.Now,
		rotator: rot,
		ag:      ag,
	}
	var src source
	if len(o.command) > 0 {
		p.ag.cmd = &command{argv: o.command, stdin: stdin, stdout: passThrough(o, stdout), stderr: stderr, maxLine: o.maxLine}
		p.startCommand(p.now())
		src = p.ag.cmd
	} else {
		in, err := newInputs(ctx, o, db, stdin, stdout, stderr)
		if err != nil {
			return err
		}
		src = in
	}
	err = p.run(ctx, p.ag.source(src, p.now))
	rot.Close() // a seal under way finishes first
	if o.stats {
		p.printStats()
	}
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close database: %w", cerr)
	}
	if err == nil && p.ag.cmd != nil {
		err = p.ag.cmd.err() // the command's exit code
	}
	return err
}

// passThrough is where input is copied to: stdout, or nowhere with --quiet.
func passThrough(o *pipeOptions, stdout io.Writer) io.Writer {
	if o.quiet {
		return nil
	}
	return stdout
}

// newSessionID names a session by when it began, with a random suffix.
func newSessionID(now time.Time) string {
	var b [4]byte
	rand.Read(b[:])
	return "pipe-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// pipe runs one vibekit-pipe: lines come from the reader goroutine, are
// mapped and batched here, and committed by the writer goroutine.
type pipe struct {
	o       *pipeOptions
	db      *sqlite.DB
	b       *batch.Batcher
	stderr  io.Writer
	now     func() time.Time
	rotator *rotate.Rotator // nil: no rotation or retention
	ag      agent           // map program, redaction, command: agent.go

	// The session of plain-text lines: started at its first line.
	started   bool
	startTime time.Time
	textLines int64

	m       pipeMetrics
	retries atomic.Int64 // commits tried again (written by the writer goroutine)
}

// pipeMetrics are the guide's performance metrics, kept by the main loop.
type pipeMetrics struct {
	lines, rows, rejects, skipped, generated int64 // from the input, as handled
	written, flushes                         int64 // committed
	follow                                   followCounts
	flushTotal, flushLast                    time.Duration
	// refused counts rows the database refused, stored as rejects instead;
	// notStored the rows and rejects stored nowhere.
	refused, notStored int64
	lastRefusal        string
}

// source is where lines come from: reader.Stream is one, inputs all of them.
type source interface {
	Run(ctx context.Context, emit func(reader.Line) error) error
}

// commitResult is what the writer made of a batch: w if it committed;
// err if it gave up on it, and then none of the batch is stored.
type commitResult struct {
	b   *vibekit.Batch
	w   sqlite.Written
	err error
}

func (p *pipe) run(ctx context.Context, src source) error {
	budget := newByteBudget(pipeBudget)
	lines := make(chan reader.Line, 1024)
	readErr := make(chan error, 1)
	go func() {
		readErr <- src.Run(ctx, func(l reader.Line) error {
			budget.acquire(int64(len(l.Data)))
			lines <- l
			return nil
		})
		close(lines)
	}()

	toWriter := make(chan *vibekit.Batch)
	results := make(chan commitResult)
	stopping := make(chan struct{})
	go p.writer(ctx, toWriter, results, stopping)
	defer close(toWriter)

	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	p.o.running.Store(true)
	defer p.o.running.Store(false)
	var (
		in       = lines
		writing  *vibekit.Batch // the batch being committed, if any
		held     int64          // line bytes in the batch being filled
		inflight int64          // line bytes in the batch being committed
		failure  error
	)
	for in != nil || writing != nil || !p.b.Empty() {
		now := p.now()
		if writing == nil && !p.b.Empty() && (in == nil || p.b.Ready(now) || held > pipeBudget/2) {
			inflight, held = held, 0
			writing = p.b.Take()
			toWriter <- writing
		}
		var tick <-chan time.Time
		if d, ok := p.b.Deadline(); ok && writing == nil {
			timer.Reset(d.Sub(now))
			tick = timer.C
		}
		select {
		case l, ok := <-in:
			if !ok {
				in = nil
				err := <-readErr
				p.endInput(ctx, err)
				if err != nil && !errors.Is(err, reader.ErrOutputClosed) {
					failure = err
				}
				close(stopping)
				continue
			}
			held += int64(len(l.Data))
			p.handle(&l, p.now())
		case r := <-results:
			writing = nil
			budget.release(inflight)
			p.committed(r)
		case <-tick:
		case <-usr1:
			p.printStats()
		case reply := <-p.o.countDropped:
			reply <- p.buffered(in, writing)
		}
	}
	if p.m.notStored > 0 {
		failure = errors.Join(failure, fmt.Errorf("%s not stored (see above)", plural(p.m.notStored, "row")))
	}
	return failure
}

// committed accounts for what the writer made of a batch.
func (p *pipe) committed(r commitResult) {
	if r.err != nil {
		// The writer gave up on the batch and said so; the input goes on.
		p.m.notStored += int64(r.b.Len())
		p.b.Recycle(r.b)
		return
	}
	w := &r.w
	p.m.written += w.Rows
	p.m.refused += w.Refused
	p.m.notStored += w.Lost
	p.m.flushes++
	p.m.flushTotal += w.Took
	p.m.flushLast = w.Took
	if w.Refused > 0 && w.Refusal != p.m.lastRefusal {
		fmt.Fprintf(p.stderr, "vibekit-pipe: the database refused %s, kept as rejects (vibekit telemetry rejects): %s\n", plural(w.Refused, "row"), w.Refusal)
		p.m.lastRefusal = w.Refusal
	}
	if w.Lost > 0 {
		fmt.Fprintf(p.stderr, "vibekit-pipe: %s not stored: the database refused them even as rejects\n", plural(w.Lost, "row"))
	}
	p.b.Recycle(r.b)
	if p.rotator != nil {
		p.rotator.AfterCommit()
	}
}

// buffered counts the rows that stopping at once would drop: those of the
// batch being filled and of the batch being committed, after the lines
// already read (which the stopped reader hands over within a second) are
// mapped to rows.
func (p *pipe) buffered(in <-chan reader.Line, writing *vibekit.Batch) int64 {
	if in != nil {
		wait := time.NewTimer(time.Second)
		defer wait.Stop()
	drain:
		for {
			select {
			case l, ok := <-in:
				if !ok {
					break drain
				}
				p.handle(&l, p.now())
			case <-wait.C:
				break drain
			}
		}
	}
	n := int64(p.b.Rows())
	if writing != nil {
		n += int64(writing.Len())
	}
	return n
}

// handle maps one line to a row, a reject or a skip, and records its
// source's position after it, to be committed with it.
func (p *pipe) handle(l *reader.Line, now time.Time) {
	cp := vibekit.Checkpoint{Source: l.Source, Key: l.Key, Kind: l.Kind, Dev: l.Dev, Ino: l.Ino,
		Fingerprint: l.Fingerprint, Offset: l.End, Line: l.Num, Size: l.Size, Birth: l.Birth, Gone: l.Gone, Release: l.Release}
	if l.Warn != nil {
		p.followWarning(l.Warn, now)
		if l.Kind == "" {
			return // about no position (a file another process reads)
		}
	}
	if cp.Kind == "" {
		cp.Kind = "stdin"
	}
	if cp.Kind != "file" {
		cp.Size = l.End // a stream's size is what was read of it
	}
	defer p.checkpoint(cp, now)
	if l.Mark {
		return // a position only
	}
	p.m.lines++
	source := cp.SourceKey()
	if l.Overlong {
		p.b.CountLine(l.Length, false, now)
		p.reject(l, fmt.Sprintf("line is %d bytes, over the limit of %d (--max-line-bytes)", l.Length, p.o.maxLine), now)
		return
	}
	if p.ag.takes(l) {
		p.agentLine(l, source, now)
		return
	}
	var rec vibekit.Record
	kind, err := vibekit.DecodeLine(l.Data, now, &rec)
	blank := kind == vibekit.LineText && len(bytes.TrimSpace(l.Data)) == 0
	p.b.CountLine(l.Length, blank, now)
	switch {
	case blank:
		p.m.skipped++
	case kind == vibekit.LineRecord:
		p.m.rows++
		p.ag.redactText(&rec, source) // a private key may come a line per record
		p.b.AddRecordAt(rec, source, linePos(l), now)
	case kind == vibekit.LineReject:
		p.reject(l, err.Error(), now)
	default:
		p.startSession(now)
		p.textLines++
		p.m.rows++
		rec := p.sessionRecord(vibekit.EventStream, vibekit.ValidUTF8(l.Data), now)
		if l.Partial {
			rec.Metadata = json.RawMessage(`{"partial":true}`)
		}
		p.ag.redactText(&rec, source)
		p.b.AddRecordAt(rec, source, linePos(l), now)
	}
}

// linePos is where l was read, for the reject of a row the database refuses.
func linePos(l *reader.Line) vibekit.LinePos {
	return vibekit.LinePos{Line: l.Num, Offset: l.Offset, Length: l.Length}
}

func (p *pipe) reject(l *reader.Line, reason string, now time.Time) {
	p.m.rejects++
	rej := vibekit.Reject{
		Source: l.Source, Line: l.Num, Offset: l.Offset, Length: l.Length,
		Reason: reason, Raw: vibekit.ValidUTF8(l.Data), Time: now.UnixMilli(),
	}
	if l.Overlong && int64(len(l.Data)) < l.Length {
		rej.Raw = redact.TrimCut(rej.Raw) // the cut may have left a secret's start
	}
	p.ag.redactReject(&rej, lineSource(l))
	p.b.AddReject(rej, now)
}

// sessionRecord is a row of the plain-text session, as the flags describe it.
func (p *pipe) sessionRecord(t vibekit.EventType, data string, now time.Time) vibekit.Record {
	return vibekit.Record{
		SessionID: p.o.session, EventType: t, AgentType: p.o.agent, Mode: p.o.mode,
		StreamData: data, SandboxID: p.o.sandboxID, RepoURL: p.o.repoURL, Timestamp: now.UnixMilli(),
	}
}

// startSession writes the session's start row before its first text line.
func (p *pipe) startSession(now time.Time) {
	if p.started {
		return
	}
	p.started, p.startTime = true, now
	rec := p.sessionRecord(vibekit.EventStart, "", now)
	rec.Prompt = p.o.prompt
	p.m.generated++
	p.b.AddRecord(rec, "", now)
}

// endSession writes the end row of a started session, saying why it ended.
func (p *pipe) endSession(ctx context.Context, readErr error) {
	if !p.started {
		return
	}
	now := p.now()
	meta, _ := json.Marshal(map[string]any{
		"status":   inputStatus(ctx, readErr),
		"duration": now.Sub(p.startTime).Milliseconds(),
		"lines":    p.textLines,
	})
	rec := p.sessionRecord(vibekit.EventEnd, "", now)
	rec.Metadata = meta
	p.m.generated++
	p.b.AddRecord(rec, "", now)
}

// writer commits the batches it is given, one at a time. A commit that
// fails is retried with backoff, and the batch kept meanwhile, within
// bounds, after which the batch is given up, counted and reported:
//   - a permanent error (the database refuses something for good: Write
//     has stored what it could, row by row) is not retried;
//   - a lock held by another writer is waited for while the input is open
//     (reading waits once the buffer is full), and said so after
//     stallWarn; after stopping, for up to stopRetry;
//   - other errors (a full disk, I/O) are retried for up to stopRetry, and
//     once a batch was given up, the next ones are tried once each until a
//     commit succeeds, so the input keeps flowing. Only a batch whose rows
//     all come from followed files, which keep the lines, is retried until
//     stopping, like a lock.
func (p *pipe) writer(ctx context.Context, in <-chan *vibekit.Batch, out chan<- commitResult, stopping <-chan struct{}) {
	var (
		failing   bool  // a batch was given up on, and no commit has succeeded since
		notStored int64 // rows given up on since then
	)
	for b := range in {
		var (
			w       sqlite.Written
			err     error
			backoff = 10 * time.Millisecond
			lastMsg string
			first   time.Time // the first failure
			stopAt  time.Time // when stopping was first seen while failing
			stalled bool      // the lock stall was reported
		)
		for {
			w, err = p.db.Write(context.Background(), b)
			if err == nil {
				break
			}
			if p.o.commitFailed != nil {
				p.o.commitFailed(err)
			}
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			// Once stopping (the input ended, or a signal came: the reader
			// may be waiting for this very commit), retries are bounded.
			if stopAt.IsZero() && (isClosed(stopping) || ctx.Err() != nil) {
				stopAt = now
			}
			if p.giveUp(b, err, now, first, stopAt, failing) {
				break
			}
			p.retries.Add(1)
			busy := sqlite.IsBusy(err)
			switch msg := err.Error(); {
			case busy && !stalled && now.Sub(first) >= stallWarn:
				fmt.Fprintf(p.stderr, "vibekit-pipe: the database is locked by another writer: a commit of %s has waited %s; waiting on (input waits once %d MiB are buffered)\n",
					plural(int64(b.Len()), "row"), now.Sub(first).Round(time.Second), pipeBudget>>20)
				stalled = true
			case !busy && msg != lastMsg:
				fmt.Fprintf(p.stderr, "vibekit-pipe: %v (retrying)\n", err)
				lastMsg = msg
			}
			time.Sleep(backoff)
			if busy {
				backoff = min(2*backoff, 100*time.Millisecond) // the try itself waits commitWait
			} else {
				backoff = min(2*backoff, time.Second)
			}
		}
		switch {
		case err == nil && stalled:
			fmt.Fprintf(p.stderr, "vibekit-pipe: the database lock was released: the commit went through after %s\n", time.Since(first).Round(100*time.Millisecond))
		case err == nil && failing:
			fmt.Fprintf(p.stderr, "vibekit-pipe: commits succeed again, after %s not stored\n", plural(notStored, "row"))
		}
		if err != nil {
			p.db.CountNotStored(int64(b.Len())) // with the next commit, in vk_runs
			if !failing || sqlite.IsPermanent(err) {
				fmt.Fprintf(p.stderr, "vibekit-pipe: %s not stored: %v\n", plural(int64(b.Len()), "row"), err)
			}
			if !sqlite.IsPermanent(err) {
				if !failing {
					fmt.Fprintf(p.stderr, "vibekit-pipe: until a commit succeeds, each batch is tried once; the rows of those that fail are counted as not stored\n")
					notStored = 0
				}
				failing = true
			}
			notStored += int64(b.Len())
		} else {
			failing = false
		}
		out <- commitResult{b: b, w: w, err: err}
	}
}

// giveUp says whether the writer stops retrying the commit of b, which
// failed with err; it first failed at first, and stopping began at stopAt
// (zero if not yet).
func (p *pipe) giveUp(b *vibekit.Batch, err error, now, first, stopAt time.Time, failing bool) bool {
	busy := sqlite.IsBusy(err)
	stopping := !stopAt.IsZero()
	switch {
	case sqlite.IsPermanent(err):
		return true
	case failing && (!busy || stopping):
		return true
	case stopping && now.After(stopAt.Add(p.stopRetry())):
		return true
	case !busy && !fromFiles(b) && now.After(first.Add(p.stopRetry())):
		return true
	}
	return false
}

// fromFiles reports whether all of b's lines come from followed files, which
// keep them: giving up on b would lose what a retry can store.
func fromFiles(b *vibekit.Batch) bool {
	if len(b.Checkpoints) == 0 {
		return false
	}
	for i := range b.Checkpoints {
		if b.Checkpoints[i].Kind != "file" {
			return false
		}
	}
	return true
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// stopRetry is how long a failing commit is retried once stopping.
func (p *pipe) stopRetry() time.Duration {
	if p.o.stopRetry > 0 {
		return p.o.stopRetry
	}
	return stopRetry
}

// printStats prints the guide's performance metrics to stderr.
func (p *pipe) printStats() {
	m := &p.m
	avg := time.Duration(0)
	if m.flushes > 0 {
		avg = m.flushTotal / time.Duration(m.flushes)
	}
	fmt.Fprintf(p.stderr, "vibekit-pipe: lines read %d = rows %d + rejects %d + skipped %d; session rows %d\n",
		m.lines, m.rows, m.rejects, m.skipped, m.generated)
	fmt.Fprintf(p.stderr, "vibekit-pipe: events written %d, flushes %d, average flush %.2f ms, last flush %.2f ms, buffered events %d, active buffers %d, commit retries %d\n",
		m.written, m.flushes, ms(avg), ms(m.flushLast), p.b.Rows(), p.b.ActiveBuffers(), p.retries.Load())
	fmt.Fprintf(p.stderr, "vibekit-pipe: refused by the database %d (kept as rejects), not stored %d\n", m.refused, m.notStored)
	if len(p.o.follow) > 0 {
		m.follow.print(p.stderr)
	}
	if p.rotator != nil {
		printRotatorStats(p.stderr, p.rotator.Stats())
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// byteBudget is a counting semaphore over bytes. One item larger than the
// whole budget is let through when nothing else is held, so it cannot block
// forever.
type byteBudget struct {
	mu   sync.Mutex
	cond *sync.Cond
	max  int64
	used int64
}

func newByteBudget(max int64) *byteBudget {
	b := &byteBudget{max: max}
	b.cond = sync.NewCond(&b.mu)
	return b
}

func (b *byteBudget) acquire(n int64) {
	b.mu.Lock()
	for b.used > 0 && b.used+n > b.max {
		b.cond.Wait()
	}
	b.used += n
	b.mu.Unlock()
}

func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
	b.cond.Broadcast()
}
