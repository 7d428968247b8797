package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/rotate"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

func newClearCommand(e *env) *ffcli.Command {
	fs := flag.NewFlagSet("vibekit telemetry clear", flag.ContinueOnError)
	var (
		wf               writerFlags
		force, vacuum    bool
		olderThan        string
		sessions, agents stringList
	)
	wf.register(fs)
	fs.BoolVar(&force, "force", false, "delete without asking for confirmation")
	fs.StringVar(&olderThan, "older-than", "", "only events older than this `age`: 7d, 12h, 30m, 2w, \"1 month\", \"30 days\"")
	fs.Var(&sessions, "session", "only this session `id` (repeatable)")
	fs.Var(&agents, "agent", "only this agent `type` (repeatable)")
	fs.BoolVar(&vacuum, "vacuum", false, "vacuum the database afterwards, to give the space back to the file system")
	addConfigFlag(fs)
	return &ffcli.Command{
		Name:       "clear",
		ShortUsage: "vibekit telemetry clear [flags]",
		ShortHelp:  "delete telemetry events",
		LongHelp: `Deletes the events that match the filters (all of them without filters) and
prints how many it deleted. Rejected input lines of the same time go too
when no --session or --agent is given. Read positions of followed files are
kept, so nothing is read twice.

It asks for confirmation on a terminal. When stdin is not a terminal it
refuses (exit 2) unless --force is given.

Examples:
  vibekit telemetry clear
  vibekit telemetry clear --force
  vibekit telemetry clear --older-than 7d
  vibekit telemetry clear --older-than "1 month" --force
  vibekit telemetry clear --session session-123
  vibekit telemetry clear --agent codex --force
  vibekit telemetry clear --older-than 30d --vacuum --force`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErrorf("clear: unexpected argument %q", args[0])
			}
			if err := applySettings(fs, "db", "enable-indexes"); err != nil {
				return err
			}
			filter := vibekit.Filter{SessionIDs: sessions, AgentTypes: agents}
			if olderThan != "" {
				cutoff, err := vibekit.ParseAge(olderThan, e.now())
				if err != nil {
					return usageErrorf("--older-than: %v", err)
				}
				filter.To = cutoff.Add(-time.Millisecond) // strictly older
			}
			if !force && !isTerminal(e.stdin) {
				return confirm(e, "clear", "")
			}
			store, err := wf.open(ctx, e.stderr)
			if err != nil {
				return err
			}
			defer store.Close()
			if !force {
				n, err := store.CountClear(ctx, filter)
				if err != nil {
					return err
				}
				if n.Events+n.Rejects > 0 {
					q := fmt.Sprintf("Delete %s", plural(n.Events, "event"))
					if n.Rejects > 0 {
						q += fmt.Sprintf(" and %s", plural(n.Rejects, "rejected line"))
					}
					if err := confirm(e, "clear", q+" from "+wf.db+"?"); err != nil {
						return err
					}
				}
			}
			// Under the seal lock: rows a seal under way is archiving would
			// be counted as cleared and kept in the archive all the same.
			var n sqlite.Counts
			err = (&rotate.Sealer{DB: store}).Exclusive(ctx, time.Minute, func() (err error) {
				n, err = store.Clear(ctx, filter)
				return err
			})
			if errors.Is(err, sqlite.ErrNotScrubbed) {
				// Deleted all the same: say what is left, and go on.
				fmt.Fprintf(e.stderr, "vibekit: clear: %v\n", err)
				err = nil
			}
			if err != nil {
				return errf("clear", err)
			}
			msg := "Deleted " + plural(n.Events, "event")
			if n.Rejects > 0 {
				msg += " and " + plural(n.Rejects, "rejected line")
			}
			fmt.Fprintln(e.stdout, msg+".")
			if vacuum {
				before, _ := store.Size()
				if err := store.Vacuum(ctx); err != nil {
					return err
				}
				after, _ := store.Size()
				fmt.Fprintf(e.stdout, "Vacuumed %s: %s before, %s after.\n", wf.db, formatBytes(before), formatBytes(after))
			}
			return store.Close()
		},
	}
}
