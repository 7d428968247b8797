package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/jq"
)

func newDumpCommand(e *env) *ffcli.Command {
	fs := flag.NewFlagSet("vibekit telemetry dump", flag.ContinueOnError)
	var (
		db        string
		jqSrc     string
		jqTimeout time.Duration
		ff        filterFlags
		out       recordFlags
		ar        archiveFlags
	)
	fs.StringVar(&db, "db", DefaultDB, "SQLite database `path`")
	fs.StringVar(&jqSrc, "jq", "", "reshape each record with this jq `program` (run in-process)")
	fs.DurationVar(&jqTimeout, "jq-timeout", jq.DefaultTimeout, "longest a jq program may run on one record")
	ff.register(fs, true)
	ff.registerSearch(fs)
	out.register(fs)
	fs.BoolVar(&out.spreadsheetSafe, "spreadsheet-safe", false, "with --format csv, prefix a ' to cells that start with = + - @ tab or CR, so that a spreadsheet does not run them as formulas (the output no longer re-imports byte for byte)")
	ar.register(fs)
	addConfigFlag(fs)
	return &ffcli.Command{
		Name:       "dump",
		ShortUsage: "vibekit telemetry dump [flags]",
		ShortHelp:  "print stored records (NDJSON, JSON, CSV or a table)",
		LongHelp: `Prints the records that match the filters, oldest first, with the guide's
field names: id, sessionId, eventType, agentType, mode, prompt, streamData,
sandboxId, repoUrl, metadata (an object) and timestamp (Unix ms). Empty
optional fields (mode, prompt, streamData, sandboxId, repoUrl, metadata)
are null.

--format ndjson (the default) prints one object per line; json one array;
csv RFC 4180 with a header row; table aligned columns for people, with
values cut to the terminal's width ($COLUMNS when not on a terminal).
Tables show control characters of the data as escapes (\x1b, \u009b).

--format csv is byte-exact, so that import reads it back as it was. A CSV
for a spreadsheet is safer with --spreadsheet-safe (VIBEKIT_SPREADSHEET_SAFE):
a cell that starts with =, +, -, @, a tab or a CR gets a leading ', so that
the spreadsheet shows it as text instead of running it as a formula.

--jq runs a jq program on each record in-process and prints its outputs,
one per line (or as one array with --format json); a program that does not
compile exits 3.

--archives reads the sealed archives beside the database too, as one data
set in time order; archives outside --from/--to are not opened.

Examples:
  vibekit telemetry dump --from yesterday
  vibekit telemetry dump --from "2024-01-01" --to "2024-01-31"
  vibekit telemetry dump --session my-session-id --type stream
  vibekit telemetry dump --agent claude --agent codex --from "1 hour ago" --order desc --limit 100
  vibekit telemetry dump --contains "rate limit" --metadata user.id=42
  vibekit telemetry dump --format csv > telemetry.csv
  vibekit telemetry dump --format csv --spreadsheet-safe > for-excel.csv
  vibekit telemetry dump --format table --fields sessionId,eventType,timestamp
  vibekit telemetry dump --exclude streamData
  vibekit telemetry dump --source /var/log/app.ndjson --source stdin
  vibekit telemetry dump --jq '{s: .sessionId, t: .eventType}'
  vibekit telemetry dump --jq 'select(.eventType == "end") | .metadata.duration'
  vibekit telemetry dump --archives --from "last week" --session s1`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErrorf("dump: unexpected argument %q", args[0])
			}
			if out.spreadsheetSafe && out.format != "csv" {
				// Given on the command line; from the environment or a
				// config file it applies to CSV only.
				return usageErrorf("--spreadsheet-safe is for --format csv, not %s", out.format)
			}
			if err := applySettings(fs, "db", "jq-timeout", "max-archive-mb", "spreadsheet-safe"); err != nil {
				return err
			}
			filter, err := ff.filter(e.now())
			if err != nil {
				return err
			}
			p, err := out.printer(e)
			if err != nil {
				return err
			}
			if jqSrc != "" {
				if out.fields != "" || out.exclude != "" {
					return usageErrorf("--jq and --fields/--exclude do not go together: select fields in the jq program")
				}
				if p.format != "ndjson" && p.format != "json" {
					return usageErrorf("--jq prints JSON values: --format must be ndjson or json, not %s", p.format)
				}
				if err := checkJQTimeout(jqTimeout); err != nil {
					return err
				}
				if p.prog, err = jq.Compile(jqSrc); err != nil {
					return err
				}
				p.prog.Timeout = jqTimeout
				p.prog.MemoryLimit = jqMemoryLimit
				p.prog.Abort = abortJQ(e, "dump")
			}
			scan, closeScan, err := ar.open(e, db)
			if err != nil {
				return err
			}
			defer closeScan()
			err = p.print(ctx, func(fn func(*vibekit.Record) error) error {
				return scan(ctx, filter, fn)
			})
			if err != nil {
				return errf("dump", err)
			}
			return nil
		},
	}
}

// recordFlags choose how records are printed: --format, --fields, --exclude.
type recordFlags struct {
	format, fields, exclude string
	spreadsheetSafe         bool // csv only; dump has the flag
}

func (o *recordFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&o.format, "format", "ndjson", "output `format`: ndjson, json, csv or table")
	fs.StringVar(&o.fields, "fields", "", "print only these `fields`, in this order (comma-separated)")
	fs.StringVar(&o.exclude, "exclude", "", "leave out these `fields` (comma-separated)")
}

func (o *recordFlags) printer(e *env) (*recordPrinter, error) {
	if err := checkRowFormat(o.format); err != nil {
		return nil, err
	}
	p := &recordPrinter{e: e, format: o.format, spreadsheetSafe: o.spreadsheetSafe}
	if o.fields != "" || o.exclude != "" {
		var err error
		if p.fields, err = selectColumns(recordColumns, o.fields, o.exclude); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// recordPrinter prints records in a format, with a field selection or
// through a jq program.
type recordPrinter struct {
	e      *env
	format string
	fields []int // indexes into recordColumns; nil for all
	prog   *jq.Program
	// spreadsheetSafe neutralises CSV cells a spreadsheet would run.
	spreadsheetSafe bool
}

// print prints the records that scan yields.
func (p *recordPrinter) print(ctx context.Context, scan func(func(*vibekit.Record) error) error) error {
	var each func(*vibekit.Record) error
	var buf []byte
	w := newRowWriter(p.format, p.e.stdout, p.e.tableWidth(), p.e.color())
	if cw, ok := w.(*csvWriter); ok {
		cw.spreadsheetSafe = p.spreadsheetSafe
	}
	switch jw, isJSON := w.(*jsonWriter); {
	case p.prog != nil:
		if err := printJQ(ctx, scan, p.prog, jw); err != nil {
			w.close()
			return err
		}
		return w.close()
	case isJSON && p.fields == nil:
		// The fast path: every field, straight from the record.
		each = func(r *vibekit.Record) error {
			buf = vibekit.AppendJSON(buf[:0], r)
			return jw.raw(buf)
		}
	default:
		fields := p.fields
		if fields == nil {
			fields = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
		}
		cols := make([]column, len(fields))
		for i, f := range fields {
			cols[i] = recordColumns[f]
		}
		if err := w.header(cols); err != nil {
			return err
		}
		vals := make([]any, len(fields))
		each = func(r *vibekit.Record) error {
			for i, f := range fields {
				vals[i] = recordValue(r, f)
			}
			return w.row(vals)
		}
	}
	if err := scan(each); err != nil {
		w.close()
		return err
	}
	return w.close()
}

// jqMemoryLimit is the Go heap a jq program may take the process to before
// it is stopped: over the commands' soft limit (vibekitMemoryLimit,
// pipeMemoryLimit), so that garbage is collected first, and far enough
// under 256 MiB for the last step a program takes before the watchdog sees
// it (a string doubled, say).
const jqMemoryLimit = 112 << 20

// abortJQ is a Program.Abort for a command that reads, or writes all or
// nothing: it exits at once, with the error as any other, since stopping
// the process is the only way to stop a built-in that grows memory.
// vibekit-pipe does not use it: its buffered rows would be lost.
func abortJQ(e *env, cmd string) func(error) {
	return func(err error) {
		fmt.Fprintf(e.stderr, "vibekit: %s: %v\n", cmd, err)
		os.Exit(ExitFailure)
	}
}

// jqChunk is how many records one jq worker takes at a time.
const jqChunk = 256

// Bounds on what a jq program's outputs hold in memory: a piece of output
// goes to the writer once it holds jqPieceBytes, a chunk has at most
// jqPieces waiting, and one record's outputs together may not pass
// jqMaxOutput (a program such as range(1e9) would otherwise print for ever
// on one record, faster than any timeout notices memory).
const (
	jqPieceBytes = 1 << 20
	jqPieces     = 4
	jqMaxOutput  = 64 << 20
)

// jqJob is a chunk of records, and the pieces of output a worker makes of
// them, in order.
type jqJob struct {
	recs   []vibekit.Record
	pieces chan *jqPiece
}

// jqPiece is some outputs: out[ends[i-1]:ends[i]] is the i-th value; err,
// if set, stopped the chunk after them.
type jqPiece struct {
	out  []byte
	ends []int
	err  error
}

// printJQ runs prog over the records that scan yields on two workers, since
// jq costs more than reading, and writes the outputs in record order.
func printJQ(ctx context.Context, scan func(func(*vibekit.Record) error) error, prog *jq.Program, jw *jsonWriter) error {
	const workers = 2
	jobs := make(chan *jqJob, workers)
	inOrder := make(chan *jqJob, 2*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runner := prog.NewRunner()
			defer runner.Close()
			for j := range jobs {
				runJob(ctx, runner, j)
			}
		}()
	}
	// The writer stops at the first failure; failed tells the scan. It
	// drains every piece, so that no worker waits for it.
	var failed atomic.Bool
	writeErr := make(chan error, 1)
	go func() {
		var err error
		for j := range inOrder {
			for pc := range j.pieces {
				start := 0
				for _, end := range pc.ends {
					if err != nil {
						break
					}
					err = jw.raw(pc.out[start:end])
					start = end
				}
				if err == nil {
					err = pc.err
				}
				if err != nil {
					failed.Store(true)
				}
			}
		}
		writeErr <- err
	}()
	var chunk []vibekit.Record
	send := func() {
		j := &jqJob{recs: chunk, pieces: make(chan *jqPiece, jqPieces)}
		inOrder <- j
		jobs <- j
		chunk = nil
	}
	scanErr := scan(func(r *vibekit.Record) error {
		if failed.Load() {
			return errStopped
		}
		if chunk == nil {
			chunk = make([]vibekit.Record, 0, jqChunk)
		}
		chunk = append(chunk, *r) // its strings are its own; the struct is reused
		if len(chunk) == jqChunk {
			send()
		}
		return nil
	})
	if len(chunk) > 0 && scanErr == nil {
		send()
	}
	close(jobs)
	close(inOrder)
	wg.Wait()
	if err := <-writeErr; err != nil {
		return err
	}
	return scanErr
}

// runJob runs the program over a chunk's records and hands their outputs
// on in pieces.
func runJob(ctx context.Context, runner *jq.Runner, j *jqJob) {
	defer close(j.pieces)
	pc := &jqPiece{}
	for i := range j.recs {
		r := &j.recs[i]
		size := 0
		err := runner.Run(ctx, jq.RecordValue(r), func(v any) error {
			n := len(pc.out)
			pc.out = jq.AppendValue(pc.out, v)
			if size += len(pc.out) - n; size > jqMaxOutput {
				return fmt.Errorf("jq: the outputs passed %d MiB", jqMaxOutput>>20)
			}
			pc.ends = append(pc.ends, len(pc.out))
			if len(pc.out) >= jqPieceBytes {
				j.pieces <- pc
				pc = &jqPiece{}
			}
			return nil
		})
		if err != nil {
			pc.out = pc.out[:0]
			if len(pc.ends) > 0 {
				pc.out = pc.out[:pc.ends[len(pc.ends)-1]]
			}
			pc.err = fmt.Errorf("record %d: %w", r.ID, err)
			break
		}
	}
	j.pieces <- pc
}

// errStopped ends a scan whose output already failed; that failure is reported.
var errStopped = errors.New("stopped")
