package cli

import (
	"bufio"
	"context"
	"flag"
	"strconv"

	"github.com/peterbourgon/ff/v3/ffcli"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

func newRejectsCommand(e *env) *ffcli.Command {
	fs := flag.NewFlagSet("vibekit telemetry rejects", flag.ContinueOnError)
	var (
		db    string
		limit int
	)
	fs.StringVar(&db, "db", DefaultDB, "SQLite database `path`")
	fs.IntVar(&limit, "limit", 0, "print at most `n` rejects (0: all)")
	addConfigFlag(fs)
	return &ffcli.Command{
		Name:       "rejects",
		ShortUsage: "vibekit telemetry rejects [flags]",
		ShortHelp:  "print the input lines that were not stored as records, with why",
		LongHelp: `Prints the rejects table as NDJSON, oldest first: input lines that were
telemetry records with a field that could not be coerced, and lines over
--max-line-bytes. Each has its source, line number, byte offset and length,
the reason, the line itself (its first 64 KiB if it was too long) and when
it was read.

Examples:
  vibekit telemetry rejects
  vibekit telemetry rejects | jq -r .reason`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErrorf("rejects: unexpected argument %q", args[0])
			}
			if err := applySettings(fs, "db"); err != nil {
				return err
			}
			store, err := sqlite.OpenReadOnly(db)
			if err != nil {
				return err
			}
			defer store.Close()
			w := bufio.NewWriter(e.stdout)
			var buf []byte
			err = store.Rejects(ctx, limit, func(id int64, r *vibekit.Reject) error {
				buf = append(buf[:0], `{"id":`...)
				buf = strconv.AppendInt(buf, id, 10)
				buf = append(buf, `,"source":`...)
				buf = vibekit.AppendString(buf, r.Source)
				buf = append(buf, `,"line":`...)
				buf = strconv.AppendInt(buf, r.Line, 10)
				buf = append(buf, `,"offset":`...)
				buf = strconv.AppendInt(buf, r.Offset, 10)
				buf = append(buf, `,"length":`...)
				buf = strconv.AppendInt(buf, r.Length, 10)
				buf = append(buf, `,"reason":`...)
				buf = vibekit.AppendString(buf, r.Reason)
				buf = append(buf, `,"raw":`...)
				buf = vibekit.AppendString(buf, r.Raw)
				buf = append(buf, `,"timestamp":`...)
				buf = strconv.AppendInt(buf, r.Time, 10)
				buf = append(buf, "}\n"...)
				_, err := w.Write(buf)
				return err
			})
			if err != nil {
				return errf("rejects", err)
			}
			return w.Flush()
		},
	}
}
