package cli

import (
	"context"
	"flag"
	"io"
	"os"
	"time"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"
)

// env is what a command runs with: its streams, the environment and the clock.
type env struct {
	stdin  *os.File
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	now    func() time.Time
}

// RunVibekit is the vibekit program: it returns the exit code.
func RunVibekit(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv, now: time.Now}
	telemetry := &ffcli.Command{
		Name:       "telemetry",
		ShortUsage: "vibekit telemetry <command> [flags]",
		ShortHelp:  "read and maintain the local telemetry store",
		LongHelp: `Commands read and maintain the SQLite database that vibekit-pipe writes
(--db, default .vibekit/telemetry.db). Readers open it read-only. Data goes
to stdout (NDJSON by default, keys as in the guide's schema), messages and
errors to stderr. Exit codes: 0 success, 1 failure, 2 usage error, 3 a jq
program that does not compile. Run a command with --help for its flags.

Examples:
  vibekit telemetry dump --from yesterday --agent claude
  vibekit telemetry dump --format table --fields sessionId,eventType,timestamp
  vibekit telemetry stats
  vibekit telemetry stats --performance
  vibekit telemetry sessions --from "last week"
  vibekit telemetry session my-session-id --events
  vibekit telemetry query "SELECT agentType, COUNT(*) FROM telemetry GROUP BY agentType"
  vibekit telemetry clear --older-than 30d --force
  vibekit telemetry import --format csv --file telemetry.csv
  vibekit telemetry export-user-data user-456 > user-456.ndjson
  vibekit telemetry dump --archives --from "last week"
  vibekit telemetry archives
  vibekit telemetry check --archives`,
		FlagSet: flag.NewFlagSet("vibekit telemetry", flag.ContinueOnError),
		Subcommands: []*ffcli.Command{
			newDumpCommand(e),
			newStatsCommand(e),
			newSessionsCommand(e),
			newUsageCommand(e),
			newSessionCommand(e),
			newClearCommand(e),
			newQueryCommand(e),
			newImportCommand(e),
			newExportUserDataCommand(e),
			newDeleteUserDataCommand(e),
			newRejectsCommand(e),
			newArchivesCommand(e),
			newVacuumCommand(e),
			newReindexCommand(e),
			newCheckCommand(e),
			newSourcesCommand(e),
		},
	}
	telemetry.Exec = noCommand(telemetry)
	root := &ffcli.Command{
		Name:        "vibekit",
		ShortUsage:  "vibekit telemetry <command> [flags]",
		ShortHelp:   "the local telemetry store of vibekit-pipe",
		FlagSet:     flag.NewFlagSet("vibekit", flag.ContinueOnError),
		Subcommands: []*ffcli.Command{telemetry},
	}
	root.Exec = noCommand(root)
	for _, c := range append([]*ffcli.Command{root, telemetry}, telemetry.Subcommands...) {
		c.FlagSet.SetOutput(stderr)
	}
	err := root.Parse(args)
	if err == nil {
		err = root.Run(ctx)
	}
	return report(stderr, "vibekit", err)
}

// noCommand is the Exec of a command group: run without one of its commands
// (or with an unknown one), it shows its usage and fails as a usage error.
func noCommand(c *ffcli.Command) func(context.Context, []string) error {
	return func(_ context.Context, args []string) error {
		if len(args) > 0 {
			return usageErrorf("%s: unknown command %q", c.Name, args[0])
		}
		io.WriteString(c.FlagSet.Output(), ffcli.DefaultUsageFunc(c)+"\n")
		return silentExit(ExitUsage)
	}
}

// applySettings gives the settings among fs's flags (not the filters) values
// from VIBEKIT_* environment variables and the config file, where the command
// line did not set them. Filters come from the command line only, so that a
// VIBEKIT_SESSION meant for vibekit-pipe does not filter a dump.
func applySettings(fs *flag.FlagSet, names ...string) error {
	sfs := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	sfs.SetOutput(io.Discard)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var args []string
	for _, n := range append(names, "config") {
		f := fs.Lookup(n)
		if f == nil {
			continue
		}
		sfs.Var(f.Value, n, f.Usage)
		if set[n] {
			args = append(args, "-"+n+"="+f.Value.String())
		}
	}
	return ff.Parse(sfs, args, ffOptions()...)
}
