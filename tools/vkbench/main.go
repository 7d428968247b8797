// Command vkbench is the driver of `make bench`. It generates events with
// vkgen, times vibekit-pipe ingesting them and vibekit dumping them, times the
// sqlite3 CLI and jq doing the same work on the same database, and prints the
// results and their ratios; with -out it appends a markdown section to a file.
//
//	go run ./tools/vkbench -bin bin -n 1000000 -out docs/BENCHMARKS.md
//
// Each command runs once: the data set is large, and the page cache is warm
// (the events were just written, the database just ingested and read once).
// A run of 1M events needs about 9 GB of scratch disk (events, a claude
// transcript, six databases, sqlite3's temporary table) and, for jq reading
// sqlite3's JSON array, about 2 GB of memory; -work or TMPDIR choose the
// disk.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// benchCommands are the measured commands, in the order they run. Edit flags
// here. In argv, stdin, db and shell these placeholders are replaced:
//
//	{bin}     the -bin directory (vibekit-pipe, vibekit)
//	{work}    the scratch directory
//	{events}  the generated NDJSON file
//	{db}      the database vibekit-pipe writes
//	{rotdb}   the database vibekit-pipe writes with rotation on
//	{refdb}   the database the sqlite3 CLI writes for the reference ingest
//	{followdb} the database vibekit-pipe --follow writes
//	{empty}   an empty file
//	{claude}  the generated Claude Code stream-json transcript (-n lines)
//	{nonedb}, {claudedb}, {presetdb}, {presetnonedb}
//	          the databases of the redaction and preset ingests
//
// Commands run with the caller's environment minus VIBEKIT_* (so a user's
// settings or config file cannot skew the numbers), plus their env.
//
// A command whose unit is unitEvents writes db and must leave exactly -n rows
// in its telemetry table (with archives, in the table and its archives
// together), or as many as its rows rule says; its rate is input lines per
// second. One whose unit is unitRows reads db, and its rate is the table's
// (and archives') rows per second. bases name commands of ours that this
// one is compared with, as vs names a reference tool. shell commands run
// under bash -c with pipefail, placeholders substituted shell-quoted.
func benchCommands() []command {
	const pick = `{s: .sessionId, t: .eventType}`
	return []command{
		{
			// The live database must keep all -n rows: the store rotates at
			// a size limit (the guide's default maxSizeMB is 100), raised here.
			name:  "vibekit-pipe ingest",
			argv:  []string{"{bin}/vibekit-pipe", "--db", "{db}", "--quiet", "--max-size-mb", "100000"},
			stdin: "{events}",
			db:    "{db}",
			unit:  unitEvents,
			vs:    "sqlite3 .import + json_extract",
			// Redaction (--redact secrets) is on by default: against the
			// same ingest without it.
			bases: []string{"vibekit-pipe ingest --redact none"},
		},
		{
			// The same ingest, sealing the database into its archives directory each time
			// its data passes 100 MB (the default): its rate against the
			// ingest above is the cost of rotation.
			name:     "vibekit-pipe ingest, rotating at 100 MB",
			argv:     []string{"{bin}/vibekit-pipe", "--db", "{rotdb}", "--quiet", "--stats", "--max-size-mb", "100"},
			stdin:    "{events}",
			db:       "{rotdb}",
			unit:     unitEvents,
			archives: true,
			bases:    []string{"vibekit-pipe ingest"},
		},
		{
			name:  "vibekit-pipe ingest --redact none",
			argv:  []string{"{bin}/vibekit-pipe", "--db", "{nonedb}", "--quiet", "--max-size-mb", "100000", "--redact", "none"},
			stdin: "{events}",
			db:    "{nonedb}",
			unit:  unitEvents,
		},
		{
			// Agent output without a preset: each line a stream row of
			// one session, which gets a start and an end row.
			name:  "vibekit-pipe ingest, claude transcript",
			argv:  []string{"{bin}/vibekit-pipe", "--db", "{claudedb}", "--quiet", "--max-size-mb", "100000"},
			stdin: "{claude}",
			db:    "{claudedb}",
			unit:  unitEvents,
			rows:  rowsTextSession,
		},
		{
			// The same transcript through the claude preset: its rate (input
			// lines/s) against the plain ingest above and the events'
			// ingest, and against itself without redaction.
			name:  "vibekit-pipe --preset claude",
			argv:  []string{"{bin}/vibekit-pipe", "--db", "{presetdb}", "--quiet", "--max-size-mb", "100000", "--preset", "claude"},
			stdin: "{claude}",
			db:    "{presetdb}",
			unit:  unitEvents,
			rows:  rowsMapped,
			bases: []string{"vibekit-pipe ingest, claude transcript", "vibekit-pipe ingest", "vibekit-pipe --preset claude --redact none"},
		},
		{
			name:  "vibekit-pipe --preset claude --redact none",
			argv:  []string{"{bin}/vibekit-pipe", "--db", "{presetnonedb}", "--quiet", "--max-size-mb", "100000", "--preset", "claude", "--redact", "none"},
			stdin: "{claude}",
			db:    "{presetnonedb}",
			unit:  unitEvents,
			rows:  rowsMapped,
		},
		{
			// Catching up on a file with --follow. stdin at its end (an
			// empty file) stops the run once the file is read to its end.
			name:  "vibekit-pipe --follow catch-up",
			argv:  []string{"{bin}/vibekit-pipe", "--db", "{followdb}", "--quiet", "--follow", "{events}", "--max-size-mb", "100000"},
			stdin: "{empty}",
			db:    "{followdb}",
			unit:  unitEvents,
			vs:    "sqlite3 .import + json_extract",
		},
		{
			name:      "sqlite3 .import + json_extract",
			argv:      []string{"sqlite3", "{refdb}"},
			stdin:     "{work}/ref-import.sql", // refImportSQL
			db:        "{refdb}",
			unit:      unitEvents,
			reference: true,
		},
		{
			name: "vibekit telemetry dump",
			argv: []string{"{bin}/vibekit", "telemetry", "dump", "--db", "{db}"},
			db:   "{db}",
			unit: unitRows,
			vs:   "sqlite3 -json",
		},
		{
			// All rows again, from the archives the rotating ingest made
			// and its live database: against dump of one database of the
			// same rows.
			name:     "vibekit telemetry dump --archives",
			argv:     []string{"{bin}/vibekit", "telemetry", "dump", "--db", "{rotdb}", "--archives"},
			db:       "{rotdb}",
			unit:     unitRows,
			archives: true,
			bases:    []string{"vibekit telemetry dump"},
		},
		{
			name:      "sqlite3 -json",
			argv:      []string{"sqlite3", "-json", "{db}", "select * from telemetry"},
			db:        "{db}",
			unit:      unitRows,
			reference: true,
		},
		{
			name: "vibekit telemetry dump --jq",
			argv: []string{"{bin}/vibekit", "telemetry", "dump", "--db", "{db}", "--jq", pick},
			db:   "{db}",
			unit: unitRows,
			vs:   "sqlite3 -json | jq",
		},
		{
			name:      "sqlite3 -json | jq",
			shell:     `sqlite3 -json {db} 'select * from telemetry' | jq -c '.[] | ` + pick + `'`,
			db:        "{db}",
			unit:      unitRows,
			reference: true,
		},
	}
}

// refImportSQL is the reference ingest: the sqlite3 CLI loads each line into a
// one-column table, then copies the fields into a telemetry table as the
// guide defines it, indexes included. It is a floor to compare with, not a
// tool that keeps the product's promises (no offsets, rejects or rotation).
const refImportSQL = `.bail on
PRAGMA journal_mode = WAL;
CREATE TABLE telemetry (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  sessionId   TEXT,
  eventType   TEXT,
  agentType   TEXT,
  mode        TEXT,
  prompt      TEXT,
  streamData  TEXT,
  sandboxId   TEXT,
  repoUrl     TEXT,
  metadata    TEXT,
  timestamp   INTEGER
);
CREATE INDEX idx_timestamp ON telemetry(timestamp);
CREATE INDEX idx_session ON telemetry(sessionId);
CREATE INDEX idx_agent_type ON telemetry(agentType);
CREATE TEMP TABLE raw(line TEXT);
.mode ascii
.separator "\037" "\n"
.import "{events}" raw
INSERT INTO telemetry (sessionId, eventType, agentType, mode, prompt, streamData, sandboxId, repoUrl, metadata, timestamp)
SELECT json_extract(line, '$.sessionId'), json_extract(line, '$.eventType'), json_extract(line, '$.agentType'),
       json_extract(line, '$.mode'), json_extract(line, '$.prompt'), json_extract(line, '$.streamData'),
       json_extract(line, '$.sandboxId'), json_extract(line, '$.repoUrl'), json_extract(line, '$.metadata'),
       json_extract(line, '$.timestamp')
FROM raw;
`

// Units of a command's count.
const (
	unitEvents = "events" // lines ingested
	unitRows   = "rows"   // rows dumped
)

// command is one measured command; see benchCommands.
type command struct {
	name      string
	argv      []string // or shell
	shell     string   // a bash script, run with pipefail
	env       []string // extra KEY=value settings, e.g. VIBEKIT_STREAM_BATCH_SIZE=500
	stdin     string   // a file fed to stdin; empty: none
	db        string   // the database written (unitEvents) or read (unitRows)
	unit      string
	vs        string   // name of the reference command this one is compared with
	bases     []string // names of commands of ours this one is compared with
	reference bool     // a tool we compare with, not ours
	archives  bool     // db's rows include those of its archives
	rows      rowRule  // for unitEvents: the rows -n lines make
}

// rowRule is how many rows an ingest of -n lines leaves.
type rowRule int

const (
	rowsExact       rowRule = iota // one per line
	rowsTextSession                // one per line, and the text session's start and end rows
	rowsMapped                     // as a map program makes them: some
)

// result is what one run of a command measured.
type result struct {
	cmd      command
	display  string // the command line with short file names
	count    int64  // events ingested or rows read
	inBytes  int64  // size of the events ingested; 0 for a dump
	outBytes int64
	outLines int64
	wall     time.Duration
	cpu      time.Duration // user + system, children included
	peakRSS  int64         // bytes, of the largest process; 0 if unknown
}

func (r result) rate() float64 { return float64(r.count) / r.wall.Seconds() }

// mbps is input MB/s for an ingest and output MB/s for a dump.
func (r result) mbps() float64 {
	if r.cmd.unit == unitEvents {
		return float64(r.inBytes) / 1e6 / r.wall.Seconds()
	}
	return float64(r.outBytes) / 1e6 / r.wall.Seconds()
}

type config struct {
	bin     string
	work    string
	out     string
	gen     string
	n       int
	seed    uint64
	timeout time.Duration
	ccusage string // -ccusage
	// usageOnly runs only the usage benchmark
	usageOnly bool
}

func main() {
	var cfg config
	flag.StringVar(&cfg.bin, "bin", "bin", "directory holding the built vibekit-pipe and vibekit binaries")
	flag.IntVar(&cfg.n, "n", 1000000, "number of events to generate and ingest")
	flag.Uint64Var(&cfg.seed, "seed", 1, "vkgen seed")
	flag.StringVar(&cfg.work, "work", "", "scratch directory, kept afterwards (default: a temporary directory, removed at the end)")
	flag.StringVar(&cfg.out, "out", "", "append a markdown section with the results to this file")
	flag.StringVar(&cfg.gen, "gen", "", "a built vkgen binary (default: go build ./tools/vkgen into the scratch directory)")
	flag.DurationVar(&cfg.timeout, "timeout", 30*time.Minute, "limit on each command's run time")
	flag.StringVar(&cfg.ccusage, "ccusage", "", "the ccusage to compare usage reports with (default: on PATH, or as make fixtures installs it)")
	flag.BoolVar(&cfg.usageOnly, "usage-only", false, "run only the usage benchmark (transcripts, usage daily, ccusage)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "vkbench: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "vkbench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	if cfg.n < 2 {
		return fmt.Errorf("-n %d: want at least 2", cfg.n)
	}
	bin, err := filepath.Abs(cfg.bin)
	if err != nil {
		return fmt.Errorf("-bin %s: %w", cfg.bin, err)
	}
	for _, name := range []string{"vibekit-pipe", "vibekit"} {
		if err := checkExecutable(filepath.Join(bin, name)); err != nil {
			return fmt.Errorf("%w (build them first, e.g. go build -o %s ./cmd/...)", err, cfg.bin)
		}
	}
	for _, tool := range []string{"sqlite3", "jq", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("the comparison needs %s on PATH: %w", tool, err)
		}
	}

	work, cleanup, err := workDir(cfg.work)
	if err != nil {
		return err
	}
	defer cleanup()

	paths := map[string]string{
		"{bin}":    bin,
		"{work}":   work,
		"{events}": filepath.Join(work, "events.ndjson"),
		"{db}":     filepath.Join(work, "ingest.db"),
		"{rotdb}":  filepath.Join(work, "rotate", "ingest.db"),
		"{refdb}":  filepath.Join(work, "ref.db"),

		"{followdb}": filepath.Join(work, "follow.db"),
		"{empty}":    filepath.Join(work, "empty"),

		"{claude}":       filepath.Join(work, "claude.ndjson"),
		"{nonedb}":       filepath.Join(work, "ingest-none.db"),
		"{claudedb}":     filepath.Join(work, "claude-plain.db"),
		"{presetdb}":     filepath.Join(work, "claude-preset.db"),
		"{presetnonedb}": filepath.Join(work, "claude-preset-none.db"),
	}
	if err := os.WriteFile(paths["{empty}"], nil, 0o644); err != nil {
		return fmt.Errorf("write empty stdin file: %w", err)
	}
	if strings.ContainsAny(paths["{events}"], "\"\n") {
		return fmt.Errorf("scratch directory %q: the sqlite3 .import cannot take a path with quotes or newlines", work)
	}
	script := strings.ReplaceAll(refImportSQL, "{events}", paths["{events}"])
	if err := os.WriteFile(filepath.Join(work, "ref-import.sql"), []byte(script), 0o644); err != nil {
		return fmt.Errorf("write reference import script: %w", err)
	}

	vkgen, err := buildGenerator(ctx, cfg, work, stderr)
	if err != nil {
		return err
	}
	if cfg.usageOnly {
		b := bench{cfg: cfg, paths: paths, stderr: stderr}
		notes, err := b.usageBench(ctx, vkgen)
		for _, n := range notes {
			fmt.Fprintln(stdout, n)
		}
		if err == nil && cfg.out != "" {
			err = appendUsageMarkdown(cfg.out, time.Now(), describeMachine(ctx), notes)
		}
		return err
	}
	gen, err := generateEvents(ctx, cfg, vkgen, "events", paths["{events}"], stderr)
	if err != nil {
		return err
	}
	claude, err := generateEvents(ctx, cfg, vkgen, "claude", paths["{claude}"], stderr)
	if err != nil {
		return err
	}

	b := bench{cfg: cfg, paths: paths, stderr: stderr, rows: map[string]int64{}, warm: map[string]bool{},
		inBytes: map[string]int64{"{events}": gen.bytes, "{claude}": claude.bytes}}
	var results []result
	for _, c := range benchCommands() {
		r, err := b.measure(ctx, c)
		if err != nil {
			return err
		}
		results = append(results, r)
	}

	again, err := b.rotationAgain(ctx, results, 4)
	if err != nil {
		return err
	}
	rep := report{when: time.Now(), cfg: cfg, gen: gen, claude: claude, results: results, machine: describeMachine(ctx), notes: append(b.stats, again...)}
	comp, err := compareCompression(ctx, bin, paths["{rotdb}"], work, stderr)
	if err != nil {
		return err
	}
	rep.notes = append(rep.notes, comp...)
	use, err := b.usageBench(ctx, vkgen)
	rep.notes = append(rep.notes, use...)
	if err != nil {
		return err
	}
	if err := rep.writeText(stdout); err != nil {
		return fmt.Errorf("print results: %w", err)
	}
	if cfg.out != "" {
		if err := rep.appendMarkdown(cfg.out); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "vkbench: appended the results to %s\n", cfg.out)
	}
	return nil
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("binary %s: %w", path, err)
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("binary %s: not an executable file", path)
	}
	return nil
}

// workDir makes the scratch directory. A directory the user named is kept, but
// the files of an earlier run are removed so the databases start empty.
func workDir(dir string) (string, func(), error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "vkbench-")
		if err != nil {
			return "", nil, fmt.Errorf("make scratch directory: %w", err)
		}
		return d, func() { os.RemoveAll(d) }, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, fmt.Errorf("-work %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", nil, fmt.Errorf("make scratch directory: %w", err)
	}
	for _, pattern := range []string{"ingest.db*", "ingest-none.db*", "claude-*.db*", "ref.db*", "archives", "rotate", "sealed.db*", "follow.db*"} {
		old, _ := filepath.Glob(filepath.Join(abs, pattern))
		for _, f := range old {
			if err := os.RemoveAll(f); err != nil {
				return "", nil, fmt.Errorf("remove %s of an earlier run: %w", f, err)
			}
		}
	}
	return abs, func() {}, nil
}

// generation describes the events file.
type generation struct {
	bytes int64
	wall  time.Duration
}

// buildGenerator returns the vkgen binary: -gen, or one built into work.
func buildGenerator(ctx context.Context, cfg config, work string, stderr io.Writer) (string, error) {
	if cfg.gen != "" {
		return cfg.gen, nil
	}
	gen := filepath.Join(work, "vkgen")
	fmt.Fprintf(stderr, "vkbench: building vkgen\n")
	build := exec.CommandContext(ctx, "go", "build", "-o", gen, "github.com/vibekit/vibekit-pipe/tools/vkgen")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build vkgen (run vkbench inside the module): %w\n%s", err, out)
	}
	return gen, nil
}

// generateEvents writes cfg.n lines of format (vkgen -format) to path.
func generateEvents(ctx context.Context, cfg config, gen, format, path string, stderr io.Writer) (generation, error) {
	f, err := os.Create(path)
	if err != nil {
		return generation{}, fmt.Errorf("create events file: %w", err)
	}
	defer f.Close()

	fmt.Fprintf(stderr, "vkbench: generating %d lines of %s\n", cfg.n, format)
	var errBuf tailBuffer
	cmd := exec.CommandContext(ctx, gen, "-n", strconv.Itoa(cfg.n), "-seed", strconv.FormatUint(cfg.seed, 10), "-format", format)
	cmd.Stdout, cmd.Stderr = f, &errBuf
	began := time.Now()
	if err := cmd.Run(); err != nil {
		return generation{}, fmt.Errorf("generate events: %s: %w\n%s", gen, err, errBuf.Bytes())
	}
	wall := time.Since(began)
	if err := f.Close(); err != nil {
		return generation{}, fmt.Errorf("write events file: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return generation{}, fmt.Errorf("events file: %w", err)
	}
	return generation{bytes: fi.Size(), wall: wall}, nil
}

// bench runs the commands of one benchmark.
type bench struct {
	cfg     config
	paths   map[string]string
	stderr  io.Writer
	inBytes map[string]int64 // size of the input files, by placeholder
	rows    map[string]int64 // rows in the telemetry table of each database written
	warm    map[string]bool  // databases read into the page cache
	stats   []string         // what the rotating ingest said of its seals
}

// expand replaces the placeholders of s by full paths, shell-quoted if quote.
func (b *bench) expand(s string, quote bool) string {
	for k, v := range b.paths {
		if quote {
			v = shellQuote(v)
		}
		s = strings.ReplaceAll(s, k, v)
	}
	return s
}

// display is the command line to show: short file names, no directories.
func display(c command) string {
	short := strings.NewReplacer("{bin}/", "", "{work}/", "", "{events}", "events.ndjson", "{db}", "ingest.db", "{rotdb}", "rotate/ingest.db", "{refdb}", "ref.db",
		"{followdb}", "follow.db", "{empty}", "empty",
		"{claude}", "claude.ndjson", "{nonedb}", "ingest-none.db", "{claudedb}", "claude-plain.db", "{presetdb}", "claude-preset.db", "{presetnonedb}", "claude-preset-none.db")
	var s string
	if c.shell != "" {
		s = short.Replace(c.shell)
	} else {
		args := make([]string, len(c.argv))
		for i, a := range c.argv {
			args[i] = shellQuote(short.Replace(a))
		}
		s = strings.Join(args, " ")
	}
	if c.stdin != "" {
		s += " < " + short.Replace(c.stdin)
	}
	for i := len(c.env) - 1; i >= 0; i-- {
		s = shellQuote(c.env[i]) + " " + s
	}
	return s
}

// measure runs c once and checks what it did.
func (b *bench) measure(ctx context.Context, c command) (result, error) {
	r := result{cmd: c, display: display(c)}
	db := b.expand(c.db, false)
	if c.unit == unitRows {
		n, ok := b.rows[db]
		if !ok {
			return r, fmt.Errorf("%s: reads %s, which no earlier command wrote", c.name, c.db)
		}
		r.count = n
		if !b.warm[db] {
			if err := warmCache(db); err != nil {
				return r, err
			}
			b.warm[db] = true
		}
	}

	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	var cmd *exec.Cmd
	if c.shell != "" {
		cmd = exec.CommandContext(ctx, "bash", "-c", "set -o pipefail; "+b.expand(c.shell, true))
	} else {
		args := make([]string, len(c.argv))
		for i, a := range c.argv {
			args[i] = b.expand(a, false)
		}
		cmd = exec.CommandContext(ctx, args[0], args[1:]...)
	}
	cmd.Env = append(cleanEnv(), c.env...)
	ownProcessGroup(cmd)
	cmd.WaitDelay = 5 * time.Second
	if c.stdin != "" {
		f, err := os.Open(b.expand(c.stdin, false))
		if err != nil {
			return r, fmt.Errorf("%s: open stdin: %w", c.name, err)
		}
		defer f.Close()
		cmd.Stdin = f
	}
	if c.unit == unitEvents {
		r.inBytes = b.inBytes[c.stdin] // whether fed on stdin or read by the command
		if r.inBytes == 0 {
			r.inBytes = b.inBytes["{events}"] // read by the command (the reference ingest, --follow)
		}
		if err := os.MkdirAll(filepath.Dir(db), 0o700); err != nil {
			return r, err
		}
	}
	var out lineCounter
	var errBuf tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &errBuf

	fmt.Fprintf(b.stderr, "vkbench: running %s\n", r.display)
	began := time.Now()
	err := cmd.Run()
	r.wall = time.Since(began)
	if err != nil {
		switch ctx.Err() {
		case context.DeadlineExceeded:
			err = fmt.Errorf("%w after %v (-timeout)", err, b.cfg.timeout)
		case context.Canceled:
			err = fmt.Errorf("%w (interrupted)", err)
		}
		return r, fmt.Errorf("%s failed: %s: %w\n--- stderr (tail) ---\n%s", c.name, r.display, err, errBuf.Bytes())
	}
	if errBuf.Len() > 0 && !c.archives {
		fmt.Fprintf(b.stderr, "vkbench: %s wrote to stderr:\n%s\n", c.name, errBuf.Bytes())
	}
	r.outBytes, r.outLines = out.bytes, out.lines
	r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	r.peakRSS = peakRSS(cmd.ProcessState)

	switch c.unit {
	case unitEvents:
		r.count = int64(b.cfg.n)
		n, err := countRows(ctx, db)
		if err != nil {
			return r, fmt.Errorf("%s: %w", c.name, err)
		}
		if c.archives {
			archived, err := countArchivedRows(ctx, b.paths["{bin}"], db)
			if err != nil {
				return r, fmt.Errorf("%s: %w", c.name, err)
			}
			n += archived
			b.stats = append(b.stats, statsLines(errBuf.Bytes(), c.name)...)
		}
		want := r.count
		switch c.rows {
		case rowsTextSession:
			want += 2
		case rowsMapped:
			want = n // a map program makes the rows it makes
			if n == 0 {
				return r, fmt.Errorf("%s: %s has no rows", c.name, filepath.Base(db))
			}
		}
		if n != want {
			hint := ""
			if _, err := os.Stat(filepath.Join(filepath.Dir(db), "archives")); err == nil {
				hint = "; the database was rotated into its archives directory: raise the size limit of this command in benchCommands"
			}
			return r, fmt.Errorf("%s: %s has %d rows, want %d%s", c.name, filepath.Base(db), n, want, hint)
		}
		b.rows[db] = n
	case unitRows:
		if r.outLines != r.count {
			fmt.Fprintf(b.stderr, "vkbench: warning: %s printed %d lines for %d rows\n", c.name, r.outLines, r.count)
		}
	}
	return r, nil
}

// cleanEnv is the environment without the VIBEKIT_* settings of the product.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VIBEKIT_") {
			env = append(env, kv)
		}
	}
	return env
}

// countRows returns the number of rows in the telemetry table of db.
func countRows(ctx context.Context, db string) (int64, error) {
	var errBuf tailBuffer
	cmd := exec.CommandContext(ctx, "sqlite3", db, "select count(*) from telemetry")
	cmd.Stderr = &errBuf
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("count rows of %s: %w\n%s", db, err, errBuf.Bytes())
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("count rows of %s: %w", db, err)
	}
	return n, nil
}

// warmCache reads the database files, so that the first command to read them
// does not pay for the disk.
func warmCache(db string) error {
	for _, path := range []string{db, db + "-wal"} {
		f, err := os.Open(path)
		if errors.Is(err, os.ErrNotExist) && path != db {
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s into the page cache: %w", path, err)
		}
		_, err = io.Copy(io.Discard, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("read %s into the page cache: %w", path, err)
		}
	}
	return nil
}

// shellQuote quotes s for bash when it holds anything but safe characters.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// lineCounter counts the bytes and lines written to it.
type lineCounter struct{ bytes, lines int64 }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.bytes += int64(len(p))
	c.lines += int64(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}

// tailBuffer keeps the last 64 KiB written to it: enough of a failed
// command's stderr to see why, bounded whatever it prints.
type tailBuffer struct{ buf []byte }

const tailMax = 64 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*tailMax {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailMax:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte {
	if len(t.buf) > tailMax {
		return t.buf[len(t.buf)-tailMax:]
	}
	return t.buf
}

func (t *tailBuffer) Len() int { return len(t.Bytes()) }
