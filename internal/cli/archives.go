package cli

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/peterbourgon/ff/v3/ffcli"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/rotate"
)

func newArchivesCommand(e *env) *ffcli.Command {
	fs := flag.NewFlagSet("vibekit telemetry archives", flag.ContinueOnError)
	var db string
	fs.StringVar(&db, "db", DefaultDB, "SQLite database `path`")
	addConfigFlag(fs)
	fs.SetOutput(e.stderr)
	return &ffcli.Command{
		Name:       "archives",
		ShortUsage: "vibekit telemetry archives [flags] | archives restore NAME [--to PATH]",
		ShortHelp:  "list the sealed archives of the database, or restore one",
		LongHelp: `Lists the archives of the database as NDJSON, oldest first: name, from
and to (the oldest and newest row, Unix ms), rows, rejects, bytes (the
database unpacked), size (on disk), ratio and sealed (Unix ms). They are in
the directory named after the database, beside it: telemetry.db keeps
them in telemetry.db.archives/.

vibekit-pipe seals the database into an archive when its data passes
--max-size-mb: each archive is a whole SQLite database, zstd-compressed.
"archives restore" unpacks one for other tools; dump --archives reads them
with the live database as one data set.

Each archive carries the identity of the database that sealed it. An
archive of another database (one deleted and created again at this path,
or a file put there) is not listed: it is reported on stderr with its name
and why, as is an entry that cannot be read (a symlink, a file with a bad
header), and the exit status is 1.

Examples:
  vibekit telemetry archives
  vibekit telemetry archives | jq -r '.name + " " + (.ratio|tostring)'
  vibekit telemetry archives restore telemetry-20261127T140102.000Z-20261127T150312.999Z-000003-1f2e3d4c.db.zst --to old.db`,
		FlagSet:     fs,
		Subcommands: []*ffcli.Command{newRestoreCommand(e)},
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErrorf("archives: unknown command %q (restore NAME)", args[0])
			}
			if err := applySettings(fs, "db"); err != nil {
				return err
			}
			return listArchives(ctx, e, db)
		},
	}
}

func listArchives(ctx context.Context, e *env, db string) error {
	id, err := rotate.Identity(ctx, db)
	if err != nil {
		return err
	}
	as, err := rotate.Owned(db, id)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(e.stdout)
	var bad []string
	for _, a := range as {
		m, err := a.Meta()
		if err != nil {
			fmt.Fprintf(e.stderr, "vibekit: %s\n", termText(err.Error())) // names come from the directory
			bad = append(bad, a.Name)
			continue
		}
		ratio := 0.0
		if a.Size > 0 {
			ratio = float64(m.Bytes) / float64(a.Size)
		}
		buf := []byte(`{"name":`)
		buf = vibekit.AppendString(buf, a.Name)
		buf = append(buf, `,"from":`...)
		buf = strconv.AppendInt(buf, a.From.UnixMilli(), 10)
		buf = append(buf, `,"to":`...)
		buf = strconv.AppendInt(buf, a.To.UnixMilli(), 10)
		buf = append(buf, `,"rows":`...)
		buf = strconv.AppendInt(buf, m.Rows, 10)
		buf = append(buf, `,"rejects":`...)
		buf = strconv.AppendInt(buf, m.Rejects, 10)
		buf = append(buf, `,"bytes":`...)
		buf = strconv.AppendInt(buf, m.Bytes, 10)
		buf = append(buf, `,"size":`...)
		buf = strconv.AppendInt(buf, a.Size, 10)
		buf = append(buf, `,"ratio":`...)
		buf = strconv.AppendFloat(buf, ratio, 'f', 2, 64)
		buf = append(buf, `,"sealed":`...)
		buf = strconv.AppendInt(buf, m.Sealed, 10)
		buf = append(buf, "}\n"...)
		w.Write(buf)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(bad) > 0 {
		return silentExit(ExitFailure)
	}
	return nil
}

func newRestoreCommand(e *env) *ffcli.Command {
	fs := flag.NewFlagSet("vibekit telemetry archives restore", flag.ContinueOnError)
	var (
		db, to string
		maxMB  int
	)
	fs.StringVar(&db, "db", DefaultDB, "SQLite database `path` whose archives directory holds the archive")
	fs.StringVar(&to, "to", "", "write the database to this `path` (default: the archive's name less .zst, here)")
	addMaxArchiveFlag(fs, &maxMB)
	addConfigFlag(fs)
	fs.SetOutput(e.stderr)
	return &ffcli.Command{
		Name:       "restore",
		ShortUsage: "vibekit telemetry archives restore NAME [--to PATH]",
		ShortHelp:  "unpack an archive into a SQLite database file",
		LongHelp: `Unpacks the archive NAME (a file name in the database's archives
directory, as "archives" lists it) into a SQLite database that any SQLite
client reads. It is unpacked into a private temporary directory, within
--max-archive-mb, and checked with integrity_check before it is written to
--to; an existing file is not replaced. An archive that another database
sealed is refused (zstd -d unpacks any archive by hand). Prints what it
restored as one JSON object.

Examples:
  vibekit telemetry archives restore telemetry-20261127T140102.000Z-20261127T150312.999Z-000003-1f2e3d4c.db.zst
  vibekit telemetry archives restore NAME --to /tmp/old.db && sqlite3 /tmp/old.db 'select count(*) from telemetry'`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			// NAME may come before or after the flags.
			if len(args) > 0 {
				if err := fs.Parse(args[1:]); err != nil {
					return err
				}
				args = append(args[:1], fs.Args()...)
			}
			if len(args) != 1 {
				return usageErrorf("archives restore: want one archive NAME")
			}
			if err := applySettings(fs, "db", "max-archive-mb"); err != nil {
				return err
			}
			id, err := rotate.Identity(ctx, db)
			if err != nil {
				return err
			}
			a, err := rotate.Find(db, id, args[0])
			if err != nil {
				return err
			}
			if to == "" {
				to = filepath.Base(a.Name[:len(a.Name)-len(".zst")])
			}
			c, err := rotate.Restore(ctx, a.Path, to, "", archiveLimits(maxMB))
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, `{"archive":%s,"to":%s,"rows":%d,"rejects":%d}`+"\n",
				vibekit.AppendString(nil, a.Name), vibekit.AppendString(nil, to), c.Rows, c.Rejects)
			return nil
		},
	}
}
