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

// DefaultUserKey is the metadata field that holds a user's id, as in the
// guide's examples (metadata: { userId: ... }).
const DefaultUserKey = "userId"

func newExportUserDataCommand(e *env) *ffcli.Command {
	fs := flag.NewFlagSet("vibekit telemetry export-user-data", flag.ContinueOnError)
	var (
		db, key string
		out     recordFlags
		maxMB   int
	)
	fs.StringVar(&db, "db", DefaultDB, "SQLite database `path`")
	fs.StringVar(&key, "user-key", DefaultUserKey, "the metadata `field` holding the user's id; dotted for nested (user.id)")
	out.register(fs)
	addMaxArchiveFlag(fs, &maxMB)
	addConfigFlag(fs)
	return &ffcli.Command{
		Name:       "export-user-data",
		ShortUsage: "vibekit telemetry export-user-data USER_ID [flags]",
		ShortHelp:  "print every event of one user (a data-access request)",
		LongHelp: `Prints every event whose metadata field --user-key (default userId) holds
USER_ID, in dump's formats: the guide's db.exportUserData(userId), for a
user's request for their data. The archives beside the database are read
too (as dump --archives does), so the events are all there, in time order.

Examples:
  vibekit telemetry export-user-data user-456 > user-456.ndjson
  vibekit telemetry export-user-data user-456 --format json
  vibekit telemetry export-user-data 42 --user-key user.id --format csv`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			args, err := positional(fs, args)
			if err != nil {
				return err
			}
			if len(args) != 1 || args[0] == "" {
				return usageErrorf("export-user-data: want one user ID")
			}
			if err := applySettings(fs, "db", "user-key"); err != nil {
				return err
			}
			p, err := out.printer(e)
			if err != nil {
				return err
			}
			f := sqlite.UserFilter(key, args[0])
			scan := (&archiveFlags{archives: true, maxArchiveMB: maxMB}).scanner(e, db)
			err = p.print(ctx, func(fn func(*vibekit.Record) error) error { return scan(ctx, f, fn) })
			if err != nil {
				return errf("export-user-data", err)
			}
			return nil
		},
	}
}

func newDeleteUserDataCommand(e *env) *ffcli.Command {
	fs := flag.NewFlagSet("vibekit telemetry delete-user-data", flag.ContinueOnError)
	var (
		wf                   writerFlags
		key, reason, request string
		force                bool
		maxMB                int
	)
	wf.register(fs)
	addMaxArchiveFlag(fs, &maxMB)
	fs.StringVar(&key, "user-key", DefaultUserKey, "the metadata `field` holding the user's id; dotted for nested (user.id)")
	fs.StringVar(&reason, "reason", "", "why the data is deleted, for the audit trail (`text`)")
	fs.StringVar(&request, "request-id", "", "the deletion request's `id`, for the audit trail")
	fs.BoolVar(&force, "force", false, "delete without asking for confirmation")
	addConfigFlag(fs)
	return &ffcli.Command{
		Name:       "delete-user-data",
		ShortUsage: "vibekit telemetry delete-user-data USER_ID [flags]",
		ShortHelp:  "delete every event of one user, archives included, leaving no copy behind",
		LongHelp: `Deletes every event whose metadata field --user-key (default userId) holds
USER_ID: the guide's db.deleteUserData(userId, {reason, requestId}). The
deletion is recorded in the vk_deletions table (field, reason, request id,
time and count, but not the user's id).

The archives beside the database are rewritten first: each one that holds
such events is unpacked into a private temporary directory, the events
deleted there and the file vacuumed, and the archive packed, verified and
put in place of the old one. A seal under way is waited for.

SQLite's secure_delete overwrites the deleted rows with zeros, VACUUM then
rewrites the database without its free pages (which may hold older copies,
from a seal or a prune), and a checkpoint empties the WAL, so no copy is
left in either file. If
another process holds the database open, the WAL cannot be emptied: the
command says so and exits 1; run it again when the database is idle.

It asks for confirmation on a terminal; otherwise --force is needed.

Examples:
  vibekit telemetry delete-user-data user-456
  vibekit telemetry delete-user-data user-456 --force --reason "User deletion request" --request-id REQ-123
  vibekit telemetry delete-user-data 42 --user-key user.id --force`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			args, err := positional(fs, args)
			if err != nil {
				return err
			}
			if len(args) != 1 || args[0] == "" {
				return usageErrorf("delete-user-data: want one user ID")
			}
			user := args[0]
			if err := applySettings(fs, "db", "enable-indexes", "user-key"); err != nil {
				return err
			}
			if !force && !isTerminal(e.stdin) {
				return confirm(e, "delete-user-data", "")
			}
			store, err := wf.open(ctx, e.stderr)
			if err != nil {
				return err
			}
			defer store.Close()
			f := sqlite.UserFilter(key, user)
			archives, err := rotate.List(wf.db)
			if err != nil {
				return err
			}
			if !force {
				n, err := store.CountClear(ctx, f)
				if err != nil {
					return err
				}
				q := fmt.Sprintf("Delete %s of %s=%s from %s?", plural(n.Events, "event"), key, user, wf.db)
				if len(archives) > 0 {
					q = fmt.Sprintf("Delete %s of %s=%s from %s, and those in its %s?", plural(n.Events, "event"), key, user, wf.db, plural(int64(len(archives)), "archive"))
				}
				if err := confirm(e, "delete-user-data", q); err != nil {
					return err
				}
			}
			// Archives, then the live rows, under the seal lock: a seal that
			// began in between would archive rows this deletes.
			var archived rotate.Deleted
			var d sqlite.Deleted
			sealer := &rotate.Sealer{DB: store, Limits: archiveLimits(maxMB)}
			err = sealer.Exclusive(ctx, time.Minute, func() error {
				archived, err = sealer.DeleteRows(ctx, f)
				// What went from archives is recorded with the live rows,
				// even if an archive stopped the rest.
				var lerr error
				d, lerr = store.DeleteUserData(ctx, key, user, sqlite.Deletion{Reason: reason, RequestID: request, Requested: e.now(), Archived: archived.Rows})
				return errors.Join(err, lerr)
			})
			if err != nil {
				return errf("delete-user-data", err)
			}
			fmt.Fprintf(e.stdout, "Deleted %s of %s=%s", plural(d.Events+archived.Rows, "event"), key, user)
			if len(archived.Archives) > 0 {
				fmt.Fprintf(e.stdout, " (%d from %s)", archived.Rows, plural(int64(len(archived.Archives)), "archive"))
			}
			fmt.Fprintln(e.stdout, ".")
			if !d.WALScrubbed {
				return fmt.Errorf("delete-user-data: another process has %s open, so its free pages or its WAL may still hold copies of the deleted rows: run this command again when the database is idle", wf.db)
			}
			return store.Close()
		},
	}
}
