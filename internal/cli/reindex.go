package cli

import (
	"context"
	"flag"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/vibekit/vibekit-pipe/sqlite"
)

func newReindexCommand(e *env) *ffcli.Command {
	fs := flag.NewFlagSet("vibekit telemetry reindex", flag.ContinueOnError)
	var db string
	fs.StringVar(&db, "db", DefaultDB, "SQLite database `path`")
	addConfigFlag(fs)
	return &ffcli.Command{
		Name:       "reindex",
		ShortUsage: "vibekit telemetry reindex [flags]",
		ShortHelp:  "rebuild the database's indexes",
		LongHelp: `Rebuilds every index of the database (SQLite's REINDEX). The query
indexes themselves are kept or dropped by vibekit-pipe --enable-indexes.

Examples:
  vibekit telemetry reindex
  vibekit telemetry reindex --db /var/log/vibekit/telemetry.db`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErrorf("reindex: unexpected argument %q", args[0])
			}
			if err := applySettings(fs, "db"); err != nil {
				return err
			}
			store, err := sqlite.OpenExisting(ctx, db, sqlite.Options{Waiting: waitingNotice(e.stderr, "vibekit", db)})
			if err != nil {
				return err
			}
			defer store.Close()
			if err := store.Reindex(ctx); err != nil {
				return err
			}
			return store.Close()
		},
	}
}
