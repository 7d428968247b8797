package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
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
		ar        archiveFlags
	)
	fs.StringVar(&db, "db", DefaultDB, "SQLite database `path`")
	fs.StringVar(&jqSrc, "jq", "", "reshape each record with this jq `program` (run in-process)")
	fs.DurationVar(&jqTimeout, "jq-timeout", jq.DefaultTimeout, "longest a jq program may run on one record")
	ff.register(fs, true)
	ar.register(fs)
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

--archives reads the sealed archives beside the database too, as one data
set in time order; archives outside --from/--to are not opened.

Examples:
  vibekit telemetry dump --from yesterday
  vibekit telemetry dump --from "2024-01-01" --to "2024-01-31"
  vibekit telemetry dump --session my-session-id --type stream
  vibekit telemetry dump --agent claude --from "1 hour ago" --order desc --limit 100
  vibekit telemetry dump --jq '{s: .sessionId, t: .eventType}'
  vibekit telemetry dump --jq 'select(.eventType == "end") | .metadata.duration'
  vibekit telemetry dump --archives --from "last week" --session s1`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErrorf("dump: unexpected argument %q", args[0])
			}
			if err := applySettings(fs, "db", "jq-timeout", "max-archive-mb"); err != nil {
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
			if ar.archives {
				return dump(ctx, e, ar.scanner(db), filter, prog)
			}
			store, err := sqlite.OpenReadOnly(db)
			if err != nil {
				return err
			}
			defer store.Close()
			return dump(ctx, e, store.Scan, filter, prog)
		},
	}
}

// dump writes the records filter selects as NDJSON, or what prog makes of them.
func dump(ctx context.Context, e *env, scan scanFunc, filter vibekit.Filter, prog *jq.Program) error {
	w := bufio.NewWriterSize(e.stdout, 64<<10)
	var err error
	if prog == nil {
		var buf []byte
		err = scan(ctx, filter, func(r *vibekit.Record) error {
			buf = append(vibekit.AppendJSON(buf[:0], r), '\n')
			_, err := w.Write(buf)
			return err
		})
	} else {
		err = dumpJQ(ctx, scan, filter, prog, w)
	}
	if err != nil {
		w.Flush()
		return errf("dump", err)
	}
	return w.Flush()
}

// jqChunk is how many records one jq worker takes at a time.
const jqChunk = 256

// jqJob is a chunk of records and, once a worker is done, their output.
type jqJob struct {
	recs []vibekit.Record
	out  []byte
	err  error
	done chan struct{}
}

// dumpJQ runs prog over the records on two workers, since jq costs more than
// reading: chunks are handed out in order and written in the same order.
func dumpJQ(ctx context.Context, scan scanFunc, filter vibekit.Filter, prog *jq.Program, w io.Writer) error {
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
				for i := range j.recs {
					r := &j.recs[i]
					err := runner.Run(ctx, jq.RecordValue(r), func(v any) error {
						j.out = append(jq.AppendValue(j.out, v), '\n')
						return nil
					})
					if err != nil {
						j.err = fmt.Errorf("record %d: %w", r.ID, err)
						break
					}
				}
				close(j.done)
			}
		}()
	}
	// The writer stops at the first failed chunk; failed tells the scan.
	var failed atomic.Bool
	writeErr := make(chan error, 1)
	go func() {
		var err error
		for j := range inOrder {
			<-j.done
			if err == nil {
				err = j.err
			}
			if err == nil {
				_, err = w.Write(j.out)
			}
			if err != nil {
				failed.Store(true)
			}
		}
		writeErr <- err
	}()
	var chunk []vibekit.Record
	send := func() {
		j := &jqJob{recs: chunk, done: make(chan struct{})}
		inOrder <- j
		jobs <- j
		chunk = nil
	}
	scanErr := scan(ctx, filter, func(r *vibekit.Record) error {
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

// errStopped ends a scan whose output already failed; that failure is reported.
var errStopped = errors.New("stopped")
