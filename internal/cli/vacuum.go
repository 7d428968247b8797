package cli

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/vibekit/vibekit-pipe/sqlite"
)

func newVacuumCommand(e *env) *ffcli.Command {
	fs := flag.NewFlagSet("vibekit telemetry vacuum", flag.ContinueOnError)
	var db string
	fs.StringVar(&db, "db", DefaultDB, "SQLite database `path`")
	addConfigFlag(fs)
	return &ffcli.Command{
		Name:       "vacuum",
		ShortUsage: "vibekit telemetry vacuum [flags]",
		ShortHelp:  "rebuild the database file to reclaim free space",
		LongHelp: `Rebuilds the database without its free pages (SQLite's VACUUM) and
truncates its WAL, giving the space of deleted rows back to the disk.
Prints the file sizes before and after as one JSON object. vibekit-pipe
may keep writing meanwhile: it waits for the vacuum.

Examples:
  vibekit telemetry vacuum
  vibekit telemetry vacuum --db /var/log/vibekit/telemetry.db`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErrorf("vacuum: unexpected argument %q", args[0])
			}
			if err := applySettings(fs, "db"); err != nil {
				return err
			}
			store, err := sqlite.OpenExisting(ctx, db, sqlite.Options{Waiting: waitingNotice(e.stderr, "vibekit", db)})
			if err != nil {
				return err
			}
			defer store.Close()
			before := diskSize(db)
			if err := store.Vacuum(ctx); err != nil {
				return err
			}
			if err := store.Close(); err != nil {
				return fmt.Errorf("close database: %w", err)
			}
			fmt.Fprintf(e.stdout, `{"before":%d,"after":%d}`+"\n", before, diskSize(db))
			return nil
		},
	}
}

// diskSize is the size of the database file and its WAL.
func diskSize(db string) int64 {
	var n int64
	for _, p := range []string{db, db + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}
