package cli

import (
	"context"
	"flag"
	"slices"

	"github.com/peterbourgon/ff/v3/ffcli"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/sqlite"
	"github.com/vibekit/vibekit-pipe/usage"
)

// sessionColumns are the fields of a session summary, as NDJSON prints them.
var sessionColumns = []column{
	{"sessionId", kindPlain}, {"agentType", kindPlain}, {"mode", kindPlain}, {"startTime", kindTime},
	{"endTime", kindTime}, {"duration", kindDuration}, {"eventCount", kindPlain}, {"errorCount", kindPlain},
	{"status", kindPlain},
	// What agent presets record (vibekit.AgentUsage): null where no row
	// said, as for a session of plain text.
	{"costUsd", kindPlain}, {"inputTokens", kindPlain}, {"outputTokens", kindPlain}, {"turns", kindPlain},
	{"toolCalls", kindPlain}, {"failedCommands", kindPlain}, {"tools", kindPlain},
}

func sessionValues(s *vibekit.SessionSummary, vals []any) {
	mode := any(nil)
	if s.Mode != "" {
		mode = s.Mode
	}
	vals[0], vals[1], vals[2], vals[3], vals[4] = s.SessionID, s.AgentType, mode, s.StartTime, s.EndTime
	vals[5], vals[6], vals[7], vals[8] = s.Duration, s.EventCount, s.ErrorCount, s.Status
	u := &s.AgentUsage
	vals[9], vals[10], vals[11], vals[12] = orNull(u.CostUSD), orNull(u.InputTokens), orNull(u.OutputTokens), orNull(u.Turns)
	vals[13], vals[14], vals[15] = nil, nil, orNull(s.Tools)
	if *u != (vibekit.AgentUsage{}) {
		// An agent's session: no tool call, or none failed, is worth a 0.
		vals[13], vals[14] = u.ToolCalls, u.FailedCommands
	}
}

// firstAgentColumn is the index in sessionColumns of the first column of
// what agent presets record.
const firstAgentColumn = 9

// dropAgentColumns leaves the agent columns out of a table for people when
// no session has any of it. Machine formats keep every column, always.
func dropAgentColumns(cols []int, list []vibekit.SessionSummary) []int {
	for i := range list {
		if list[i].AgentUsage != (vibekit.AgentUsage{}) || list[i].Tools != "" {
			return cols
		}
	}
	return slices.DeleteFunc(cols, func(c int) bool { return c >= firstAgentColumn })
}

// orNull is v, or nil (null, an empty cell) for its zero value.
func orNull[T comparable](v T) any {
	var zero T
	if v == zero {
		return nil
	}
	return v
}

// summarizeUsage puts the usage accounting (package usage: each API call
// once, running totals by their increases) into the sessions' cost and
// tokens; with one set, into *one as well.
func summarizeUsage(ctx context.Context, scan scanFunc, list []vibekit.SessionSummary, one *vibekit.SessionSummary) error {
	if len(list) == 0 {
		return nil
	}
	f := vibekit.Filter{}
	if len(list) <= 100 {
		for i := range list {
			f.SessionIDs = append(f.SessionIDs, list[i].SessionID)
		}
	}
	items, err := usage.Collect(ctx, usage.ScanFunc(scan), nil, f)
	if err != nil {
		return err
	}
	usage.Summarize(list, items)
	if one != nil {
		one.AgentUsage = list[0].AgentUsage
	}
	return nil
}

func newSessionsCommand(e *env) *ffcli.Command {
	fs := flag.NewFlagSet("vibekit telemetry sessions", flag.ContinueOnError)
	var (
		db              string
		sessions        stringList
		agents, modes   stringList
		from, to, order string
		limit, offset   int
		format          string
		fields, exclude string
		ar              archiveFlags
	)
	fs.StringVar(&db, "db", DefaultDB, "SQLite database `path`")
	fs.Var(&sessions, "session", "only this session `id` (repeatable)")
	fs.Var(&agents, "agent", "only sessions of this agent `type` (repeatable)")
	fs.Var(&modes, "mode", "only sessions of this `mode` (repeatable)")
	fs.StringVar(&from, "from", "", "only sessions that started at this `time` or later (forms as in dump)")
	fs.StringVar(&to, "to", "", "only sessions that started up to this `time`")
	fs.IntVar(&limit, "limit", 0, "print at most `n` sessions (0: all)")
	fs.IntVar(&offset, "offset", 0, "skip the first `n` sessions")
	fs.StringVar(&order, "order", "asc", "`order` by start time: asc (oldest first) or desc")
	fs.StringVar(&format, "format", "", "output `format`: ndjson, json, csv or table (default: table on a terminal, ndjson otherwise)")
	fs.StringVar(&fields, "fields", "", "print only these `fields`, in this order (comma-separated)")
	fs.StringVar(&exclude, "exclude", "", "leave out these `fields` (comma-separated)")
	ar.register(fs)
	addConfigFlag(fs)
	return &ffcli.Command{
		Name:       "sessions",
		ShortUsage: "vibekit telemetry sessions [flags]",
		ShortHelp:  "list sessions: agent, mode, start, end, duration, events, errors, status, cost, tokens, tools",
		LongHelp: `Prints one row per session: sessionId, agentType, mode, startTime and
endTime (its first and last event, Unix ms), duration (ms), eventCount,
errorCount and status. The status is the metadata.status of the session's
last end or error event when it has one (success, interrupted,
error_max_turns, api_error_529, failed, ...), "completed" for an end event
without one, "error" for a session with an error event and no end, and
"active" otherwise.

Then what the agent presets (vibekit-pipe --preset claude, codex, gemini) and a
command run by vibekit-pipe record, null where the session has none of it:
costUsd, inputTokens (cached ones included) and outputTokens as "usage"
counts them (each API call once, an agent's running totals by their
increases; empty when only unpriced models were used), turns, toolCalls, failedCommands (tool calls and commands that
failed: an is_error tool result, a non-zero exit code) and tools (the tools
called, comma-separated).

On a terminal it prints a table (without the agent columns when no session
has any); to a pipe or file NDJSON (--format chooses).

--archives lists the sessions of the live database and its sealed archives
as one data set, each session whole even when a seal split its rows. As
--from and --to select sessions by their start, and a session's other rows
may lie in any archive, archives outside them are opened only to complete
the sessions that started within them (when some did).

Examples:
  vibekit telemetry sessions
  vibekit telemetry sessions --agent claude --from yesterday
  vibekit telemetry sessions --order desc --limit 10 --format table
  vibekit telemetry sessions --format csv > sessions.csv
  vibekit telemetry sessions | jq 'select(.errorCount > 0) | .sessionId'
  vibekit telemetry sessions --archives --from "last week"
  vibekit telemetry sessions --agent claude --fields sessionId,status,costUsd,turns,tools`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErrorf("sessions: unexpected argument %q", args[0])
			}
			if err := applySettings(fs, "db", "max-archive-mb"); err != nil {
				return err
			}
			ff := filterFlags{sessions: sessions, agents: agents, modes: modes, from: from, to: to, limit: limit, offset: offset, order: order}
			filter, err := ff.filter(e.now())
			if err != nil {
				return err
			}
			format = rowFormat(e, format)
			if err := checkRowFormat(format); err != nil {
				return err
			}
			cols, err := selectColumns(sessionColumns, fields, exclude)
			if err != nil {
				return err
			}
			var list []vibekit.SessionSummary
			sessions := func(f vibekit.Filter) func(*sqlite.DB) error {
				return func(store *sqlite.DB) (err error) {
					list, err = store.Sessions(ctx, f)
					return err
				}
			}
			var scan scanFunc
			if ar.archives {
				err = ar.merged(ctx, e, db, filter, sessionsSummary, sessions(mergedFilter(filter)))
				scan = ar.scanner(e, db)
			} else {
				var store *sqlite.DB
				if store, err = sqlite.OpenReadOnly(db); err != nil {
					return err
				}
				defer store.Close()
				err = sessions(filter)(store)
				scan = store.Scan
			}
			if err == nil {
				err = summarizeUsage(ctx, scan, list, nil)
			}
			if err != nil {
				return err
			}
			if format == "table" && fields == "" {
				cols = dropAgentColumns(cols, list)
			}
			var ignored int64
			for i := range list {
				ignored += list[i].IgnoredValues
			}
			warnIgnored(e, ignored)
			return printSessions(e, format, cols, list)
		},
	}
}

// rowFormat resolves the --format of a command that lists rows for people
// and scripts alike: a table on a terminal, NDJSON to a pipe.
func rowFormat(e *env, format string) string {
	if format != "" {
		return format
	}
	if isTerminal(e.stdout) {
		return "table"
	}
	return "ndjson"
}

func printSessions(e *env, format string, fields []int, list []vibekit.SessionSummary) error {
	w := newRowWriter(format, e.stdout, e.tableWidth(), e.color())
	cols := make([]column, len(fields))
	for i, f := range fields {
		cols[i] = sessionColumns[f]
	}
	w.header(cols)
	all := make([]any, len(sessionColumns))
	vals := make([]any, len(fields))
	for i := range list {
		sessionValues(&list[i], all)
		for j, f := range fields {
			vals[j] = all[f]
		}
		if err := w.row(vals); err != nil {
			w.close()
			return err
		}
	}
	return w.close()
}
