package cli

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/jq"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

func newDumpCommand(e *env) *ffcli.Command {
	fs := flag.NewFlagSet("vibekit telemetry dump", flag.ContinueOnError)
	var (
		db        string
		jqSrc     string
		jqTimeout time.Duration
		ff        filterFlags
		out       recordFlags
	)
	fs.StringVar(&db, "db", DefaultDB, "SQLite database `path`")
	fs.StringVar(&jqSrc, "jq", "", "reshape each record with this jq `program` (run in-process)")
	fs.DurationVar(&jqTimeout, "jq-timeout", jq.DefaultTimeout, "longest a jq program may run on one record")
	ff.register(fs, true)
	ff.registerSearch(fs)
	out.register(fs)
	addConfigFlag(fs)
	return &ffcli.Command{
		Name:       "dump",
		ShortUsage: "vibekit telemetry dump [flags]",
		ShortHelp:  "print stored records (NDJSON, JSON, CSV or a table)",
		LongHelp: `Prints the records that match the filters, oldest first, with the guide's
field names: id, sessionId, eventType, agentType, mode, prompt, streamData,
sandboxId, repoUrl, metadata (an object) and timestamp (Unix ms). Empty
fields are null.

--format ndjson (the default) prints one object per line; json one array;
csv RFC 4180 with a header row; table aligned columns for people, with
values cut to the terminal's width ($COLUMNS when not on a terminal).

--jq runs a jq program on each record in-process and prints its outputs,
one per line (or as one array with --format json); a program that does not
compile exits 3.

Examples:
  vibekit telemetry dump --from yesterday
  vibekit telemetry dump --from "2024-01-01" --to "2024-01-31"
  vibekit telemetry dump --session my-session-id --type stream
  vibekit telemetry dump --agent claude --agent codex --from "1 hour ago" --order desc --limit 100
  vibekit telemetry dump --contains "rate limit" --metadata user.id=42
  vibekit telemetry dump --format csv > telemetry.csv
  vibekit telemetry dump --format table --fields sessionId,eventType,timestamp
  vibekit telemetry dump --exclude streamData
  vibekit telemetry dump --jq '{s: .sessionId, t: .eventType}'
  vibekit telemetry dump --jq 'select(.eventType == "end") | .metadata.duration'`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErrorf("dump: unexpected argument %q", args[0])
			}
			if err := applySettings(fs, "db", "jq-timeout"); err != nil {
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
				if p.prog, err = jq.Compile(jqSrc); err != nil {
					return err
				}
				p.prog.Timeout = jqTimeout
			}
			store, err := sqlite.OpenReadOnly(db)
			if err != nil {
				return err
			}
			defer store.Close()
			err = p.print(ctx, func(fn func(*vibekit.Record) error) error {
				return store.Scan(ctx, filter, fn)
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
	p := &recordPrinter{e: e, format: o.format}
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
}

// print prints the records that scan yields.
func (p *recordPrinter) print(ctx context.Context, scan func(func(*vibekit.Record) error) error) error {
	var each func(*vibekit.Record) error
	var buf []byte
	w := newRowWriter(p.format, p.e.stdout, p.e.tableWidth(), p.e.color())
	switch jw, isJSON := w.(*jsonWriter); {
	case p.prog != nil:
		runner := p.prog.NewRunner()
		defer runner.Close()
		each = func(r *vibekit.Record) error {
			err := runner.Run(ctx, jq.RecordValue(r), func(v any) error {
				buf = jq.AppendValue(buf[:0], v)
				return jw.raw(buf)
			})
			if err != nil {
				return fmt.Errorf("record %d: %w", r.ID, err)
			}
			return nil
		}
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
