package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/peterbourgon/ff/v3/ffcli"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/rotate"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

func newCheckCommand(e *env) *ffcli.Command {
	fs := flag.NewFlagSet("vibekit telemetry check", flag.ContinueOnError)
	var (
		db       string
		archives bool
		maxMB    int
	)
	fs.StringVar(&db, "db", DefaultDB, "SQLite database `path`")
	fs.BoolVar(&archives, "archives", false, "check each archive too (each is unpacked into a private temporary directory)")
	addMaxArchiveFlag(fs, &maxMB)
	addConfigFlag(fs)
	return &ffcli.Command{
		Name:       "check",
		ShortUsage: "vibekit telemetry check [flags]",
		ShortHelp:  "check the database's integrity (and its archives')",
		LongHelp: `Runs PRAGMA integrity_check on the database, read-only, and with
--archives on every archive, unpacked. Prints one JSON object per file:
{"file": ..., "ok": true} or {"file": ..., "ok": false, "problems": [...]}.
An archive in the database's archives directory that the database did not
seal (it carries another identity, or none) is a problem too. The exit
status is 0 if every file is sound and 1 if any is not.

Examples:
  vibekit telemetry check
  vibekit telemetry check --archives || echo "something is damaged"`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErrorf("check: unexpected argument %q", args[0])
			}
			if err := applySettings(fs, "db", "max-archive-mb"); err != nil {
				return err
			}
			w := bufio.NewWriter(e.stdout)
			defer w.Flush()
			failed := 0
			report := func(file string, problems []string) {
				buf := append([]byte(`{"file":`), vibekit.AppendString(nil, file)...)
				if len(problems) == 0 {
					buf = append(buf, `,"ok":true}`+"\n"...)
				} else {
					failed++
					buf = append(buf, `,"ok":false,"problems":[`...)
					for i, p := range problems {
						if i > 0 {
							buf = append(buf, ',')
						}
						buf = vibekit.AppendString(buf, p)
					}
					buf = append(buf, "]}\n"...)
					fmt.Fprintf(e.stderr, "vibekit: check %s: %s\n", termText(file), termText(problems[0]))
				}
				w.Write(buf)
			}
			store, err := sqlite.OpenReadOnly(db)
			if err != nil {
				return err
			}
			problems, err := store.IntegrityCheck(ctx)
			store.Close()
			if err != nil {
				problems = []string{err.Error()}
			}
			report(db, problems)
			if archives {
				if err := checkArchives(ctx, db, maxMB, report); err != nil {
					return err
				}
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if failed > 0 {
				return silentExit(ExitFailure)
			}
			return nil
		},
	}
}

func checkArchives(ctx context.Context, db string, maxMB int, report func(string, []string)) error {
	id, err := rotate.Identity(ctx, db)
	if err != nil {
		return err
	}
	as, err := rotate.Owned(db, id)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "vibekit-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, a := range as {
		if a.Err != nil {
			report(a.Path, []string{errors.Unwrap(a.Err).Error()})
			continue
		}
		_, err := rotate.Verify(ctx, a.Path, tmp, archiveLimits(maxMB))
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var problems []string
		if err != nil {
			var bad *rotate.BadArchiveError
			if errors.As(err, &bad) {
				err = bad.Err
			}
			problems = []string{err.Error()}
		}
		report(a.Path, problems)
	}
	return nil
}
