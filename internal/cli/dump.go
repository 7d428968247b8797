package cli

import (
	"bufio"
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
	)
	fs.StringVar(&db, "db", DefaultDB, "SQLite database `path`")
	fs.StringVar(&jqSrc, "jq", "", "reshape each record with this jq `program` (run in-process)")
	fs.DurationVar(&jqTimeout, "jq-timeout", jq.DefaultTimeout, "longest a jq program may run on one record")
	ff.register(fs, true)
	addConfigFlag(fs)
	return &ffcli.Command{
		Name:       "dump",
		ShortUsage: "vibekit telemetry dump [flags]",
		ShortHelp:  "print stored records as NDJSON",
		LongHelp: `Prints the records that match the filters as NDJSON, one object per line,
oldest first, with the guide's field names: id, sessionId, eventType,
agentType, mode, prompt, streamData, sandboxId, repoUrl, metadata (an object)
and timestamp (Unix ms). Empty fields are null.

--jq runs a jq program on each record in-process and prints its outputs,
one per line; a program that does not compile exits 3.

Examples:
  vibekit telemetry dump --from yesterday
  vibekit telemetry dump --from "2024-01-01" --to "2024-01-31"
  vibekit telemetry dump --session my-session-id --type stream
  vibekit telemetry dump --agent claude --from "1 hour ago" --order desc --limit 100
  vibekit telemetry dump --source /var/log/app.ndjson --source stdin
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
			filter, err := ff.filter(time.Now())
			if err != nil {
				return err
			}
			var prog *jq.Program
			if jqSrc != "" {
				if prog, err = jq.Compile(jqSrc); err != nil {
					return err
				}
				prog.Timeout = jqTimeout
			}
			store, err := sqlite.OpenReadOnly(db)
			if err != nil {
				return err
			}
			defer store.Close()
			return dump(ctx, e, store, filter, prog)
		},
	}
}

// dump writes the records filter selects as NDJSON, or what prog makes of them.
func dump(ctx context.Context, e *env, store *sqlite.DB, filter vibekit.Filter, prog *jq.Program) error {
	w := bufio.NewWriterSize(e.stdout, 64<<10)
	var (
		buf  []byte
		each func(*vibekit.Record) error
	)
	if prog == nil {
		each = func(r *vibekit.Record) error {
			buf = append(vibekit.AppendJSON(buf[:0], r), '\n')
			_, err := w.Write(buf)
			return err
		}
	} else {
		runner := prog.NewRunner()
		defer runner.Close()
		each = func(r *vibekit.Record) error {
			err := runner.Run(ctx, jq.RecordValue(r), func(v any) error {
				buf = append(jq.AppendValue(buf[:0], v), '\n')
				_, err := w.Write(buf)
				return err
			})
			if err != nil {
				return fmt.Errorf("record %d: %w", r.ID, err)
			}
			return nil
		}
	}
	if err := store.Scan(ctx, filter, each); err != nil {
		w.Flush()
		return errf("dump", err)
	}
	return w.Flush()
}
