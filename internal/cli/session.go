package cli

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

func newSessionCommand(e *env) *ffcli.Command {
	fs := flag.NewFlagSet("vibekit telemetry session", flag.ContinueOnError)
	var (
		db     string
		events bool
		out    recordFlags
	)
	fs.StringVar(&db, "db", DefaultDB, "SQLite database `path`")
	fs.BoolVar(&events, "events", false, "list the session's events instead of its summary")
	out.register(fs)
	fs.Lookup("format").Usage = "output `format`: text or json for the summary (default: text on a terminal, json otherwise); ndjson, json, csv or table for --events"
	fs.Lookup("format").DefValue = ""
	out.format = ""
	addConfigFlag(fs)
	return &ffcli.Command{
		Name:       "session",
		ShortUsage: "vibekit telemetry session ID [flags]",
		ShortHelp:  "summarise one session, or list its events",
		LongHelp: `Prints the summary of one session: agent, mode, start, end, duration, event
count, error count and status (see "sessions" for how the status is found),
and what agent presets recorded: cost, tokens, turns, tool calls, failed
commands and the tools called.
On a terminal it prints text; to a pipe or file one JSON object with the
fields that "sessions" prints.

--events lists the session's events instead, as dump does (NDJSON unless
--format says otherwise; --fields and --exclude apply).

A session that has no events is an error (exit 1).

Examples:
  vibekit telemetry session my-session-id
  vibekit telemetry session my-session-id --format json | jq .duration
  vibekit telemetry session my-session-id --events --format table`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			args, err := positional(fs, args)
			if err != nil {
				return err
			}
			if len(args) != 1 {
				return usageErrorf("session: want one session ID, got %d arguments", len(args))
			}
			id := args[0]
			if err := applySettings(fs, "db"); err != nil {
				return err
			}
			var p *recordPrinter
			if events {
				if out.format == "" {
					out.format = "ndjson"
				}
				if p, err = out.printer(e); err != nil {
					return err
				}
			} else {
				if out.fields != "" || out.exclude != "" {
					return usageErrorf("--fields and --exclude apply to --events")
				}
				if out.format, err = summaryFormat(e, out.format); err != nil {
					return err
				}
			}
			store, err := sqlite.OpenReadOnly(db)
			if err != nil {
				return err
			}
			defer store.Close()
			s, err := store.Session(ctx, id)
			if err != nil {
				return err
			}
			if err := summarizeUsage(ctx, store.Scan, []vibekit.SessionSummary{*s}, s); err != nil {
				return err
			}
			if events {
				return p.print(ctx, func(fn func(*vibekit.Record) error) error {
					return store.Scan(ctx, vibekit.Filter{SessionIDs: []string{id}}, fn)
				})
			}
			w := bufio.NewWriter(e.stdout)
			if out.format == "json" {
				vals := make([]any, len(sessionColumns))
				sessionValues(s, vals)
				jw := &jsonWriter{w: w}
				jw.header(sessionColumns)
				jw.row(vals)
				warnIgnored(e, s.IgnoredValues)
			} else {
				writeSessionText(w, s)
			}
			return w.Flush()
		},
	}
}

func writeSessionText(bw *bufio.Writer, s *vibekit.SessionSummary) {
	w := termWriter{bw} // stored values are escaped below; this catches any other
	mode := termText(s.Mode)
	if mode == "" {
		mode = "(none)"
	}
	fmt.Fprintf(w, "Session: %s\n", termText(s.SessionID))
	fmt.Fprintf(w, "Agent: %s\n", termText(s.AgentType))
	fmt.Fprintf(w, "Mode: %s\n", mode)
	fmt.Fprintf(w, "Start: %s\n", time.UnixMilli(s.StartTime).Format("2006-01-02 15:04:05"))
	fmt.Fprintf(w, "End: %s\n", time.UnixMilli(s.EndTime).Format("2006-01-02 15:04:05"))
	fmt.Fprintf(w, "Duration: %s (%d ms)\n", formatDuration(s.Duration), s.Duration)
	fmt.Fprintf(w, "Events: %s\n", formatCount(s.EventCount))
	fmt.Fprintf(w, "Errors: %s\n", formatCount(s.ErrorCount))
	fmt.Fprintf(w, "Status: %s\n", termText(s.Status))
	if u := s.AgentUsage; u != (vibekit.AgentUsage{}) {
		if u.CostPartial {
			fmt.Fprintf(w, "Cost: $%.4f and more: some models are not in the price table, and their cost is not in it\n", u.CostUSD)
		} else {
			fmt.Fprintf(w, "Cost: $%.4f\n", u.CostUSD)
		}
		fmt.Fprintf(w, "Tokens: %s in, %s out\n", formatCount(u.InputTokens), formatCount(u.OutputTokens))
		fmt.Fprintf(w, "Turns: %s\n", formatCount(u.Turns))
		fmt.Fprintf(w, "Tool Calls: %s\n", formatCount(u.ToolCalls))
		fmt.Fprintf(w, "Failed Commands: %s\n", formatCount(u.FailedCommands))
		if u.Denials > 0 {
			fmt.Fprintf(w, "Denied Tool Calls: %s (refused by the permission mode)\n", formatCount(u.Denials))
		}
		writeIgnored(w, u.IgnoredValues)
	}
	if s.Tools != "" {
		fmt.Fprintf(w, "Tools: %s\n", termText(strings.ReplaceAll(s.Tools, ",", ", ")))
	}
}
