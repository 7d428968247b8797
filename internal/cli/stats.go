package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/rotate"
	"github.com/vibekit/vibekit-pipe/sqlite"
	"github.com/vibekit/vibekit-pipe/usage"
)

func newStatsCommand(e *env) *ffcli.Command {
	fs := flag.NewFlagSet("vibekit telemetry stats", flag.ContinueOnError)
	var (
		db          string
		ff          filterFlags
		performance bool
		format      string
		by, groupBy string
		ar          archiveFlags
	)
	fs.StringVar(&db, "db", DefaultDB, "SQLite database `path`")
	ff.register(fs, false)
	ar.register(fs)
	fs.BoolVar(&performance, "performance", false, "show ingest figures of the vibekit-pipe runs instead")
	fs.StringVar(&format, "format", "", "`format`: text or json (default: text on a terminal, json otherwise)")
	fs.StringVar(&by, "by", "", "add event counts over time, by `hour` or day (a bar chart in text)")
	fs.StringVar(&groupBy, "group-by", "", "add event counts by this `column`: "+strings.Join(sqlite.GroupColumns, ", "))
	addConfigFlag(fs)
	return &ffcli.Command{
		Name:       "stats",
		ShortUsage: "vibekit telemetry stats [flags]",
		ShortHelp:  "summarise the store: events, sessions, agents, size",
		LongHelp: `Summarises the events that match the filters: total events, sessions,
agents with their share of the events, the date range, the database size
(its WAL included) and the average session duration (first to last event).
Where agent presets (vibekit-pipe --preset claude, codex, gemini) or a command run
by vibekit-pipe recorded them: cost, tokens, turns, tool calls by tool, and
failed commands (tool calls and commands that failed), the ten most
frequent with their count.

On a terminal it prints text; to a pipe or file it prints one JSON object,
so scripts get data (--format text or json chooses).

--archives summarises the live database and its sealed archives as one data
set; archives outside --from/--to are not opened. It adds the archives'
count and size on disk; the database size stays the live file's.

--performance shows what the vibekit-pipe runs recorded as they wrote: lines
read, events written, rejects, flushes, average and last flush time, and
buffer efficiency (the share of commits that batching saved: 1 - flushes /
events). --from and --to then select runs by when they wrote.

Examples:
  vibekit telemetry stats
  vibekit telemetry stats --agent claude
  vibekit telemetry stats --from "last week" --by day
  vibekit telemetry stats --group-by mode --format json | jq .groups
  vibekit telemetry stats --archives --from "last month" --by day
  vibekit telemetry stats --performance`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErrorf("stats: unexpected argument %q", args[0])
			}
			if err := applySettings(fs, "db", "max-archive-mb"); err != nil {
				return err
			}
			filter, err := ff.filter(e.now())
			if err != nil {
				return err
			}
			if format, err = summaryFormat(e, format); err != nil {
				return err
			}
			if by != "" && by != "hour" && by != "day" {
				return usageErrorf("--by %q: use hour or day", by)
			}
			if groupBy != "" && !slices.Contains(sqlite.GroupColumns, groupBy) {
				return usageErrorf("--group-by %q: use one of %s", groupBy, strings.Join(sqlite.GroupColumns, ", "))
			}
			if performance && (by != "" || groupBy != "") {
				return usageErrorf("--performance does not take --by or --group-by")
			}
			opts := sqlite.StatsOptions{GroupBy: groupBy, By: by}
			var v any
			switch {
			case ar.archives && !performance:
				v, err = archiveStats(ctx, e, db, filter, opts, &ar)
			default:
				// The runs' log stays in the live database: --archives
				// adds nothing to --performance.
				var store *sqlite.DB
				if store, err = sqlite.OpenReadOnly(db); err != nil {
					return err
				}
				defer store.Close()
				if performance {
					v, err = store.IngestStats(ctx, filter.From, filter.To)
				} else {
					v, err = store.Stats(ctx, filter, opts)
				}
			}
			if err != nil {
				return err
			}
			if st, ok := v.(*vibekit.Stats); ok {
				scan, closeScan, err := ar.open(e, db)
				if err != nil {
					return err
				}
				defer closeScan()
				// Cost and tokens from the usage accounting: each API call
				// once, running totals by their increases.
				// Rows after --to never count; those before --from may be the
				// earlier figures of a running total that grows within it.
				items, err := usage.Collect(ctx, usage.ScanFunc(scan), nil, vibekit.Filter{SessionIDs: filter.SessionIDs, AgentTypes: filter.AgentTypes, To: filter.To})
				if err != nil {
					return err
				}
				usage.Total(&st.AgentUsage, items, filter.From, filter.To)
			}
			w := bufio.NewWriter(e.stdout)
			switch {
			case format == "json":
				writeJSONLine(w, v)
			case performance:
				writePerformanceText(w, v.(*vibekit.IngestStats))
			default:
				writeStatsText(w, v.(*vibekit.Stats), e.tableWidth())
			}
			return w.Flush()
		},
	}
}

// archiveStats summarises the rows that f selects from the database at db
// and its archives, merged; the size, the archives' and what was pruned
// describe the store on disk, as without --archives. Another database's
// archives are left out of both, with a warning.
func archiveStats(ctx context.Context, e *env, db string, f vibekit.Filter, opts sqlite.StatsOptions, ar *archiveFlags) (*vibekit.Stats, error) {
	var s *vibekit.Stats
	err := ar.merged(ctx, e, db, f, statsSummary, func(m *sqlite.DB) (err error) {
		s, err = m.Stats(ctx, mergedFilter(f), opts)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.DatabaseSize, s.Pruned = 0, vibekit.PruneTotals{}
	if _, err := os.Stat(db); err == nil {
		live, err := sqlite.OpenReadOnly(db)
		if err != nil {
			return nil, err
		}
		defer live.Close()
		if s.DatabaseSize, err = live.Size(); err != nil {
			return nil, err
		}
		if s.Pruned, err = live.Pruned(ctx); err != nil {
			return nil, err
		}
	}
	id, err := rotate.Identity(ctx, db)
	if err != nil {
		return nil, err
	}
	as, err := rotate.Owned(db, id)
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		if errors.Is(a.Err, rotate.ErrForeign) {
			continue // reported by the merge
		}
		s.Archives++
		s.ArchiveSize += a.Size
	}
	return s, nil
}

// summaryFormat resolves the --format of a command that prints one summary:
// text on a terminal and json to a pipe unless the flag says.
func summaryFormat(e *env, format string) (string, error) {
	switch format {
	case "":
		if isTerminal(e.stdout) {
			return "text", nil
		}
		return "json", nil
	case "text", "json":
		return format, nil
	case "ndjson":
		return "json", nil // one object on one line is both
	}
	return "", usageErrorf("--format %q: use text or json", format)
}

func writeJSONLine(w io.Writer, v any) {
	b, _ := json.Marshal(v) // summaries are plain structs: cannot fail
	w.Write(append(b, '\n'))
}

// writeStatsText prints the guide's summary, and what follows it:
//
//	Total Events: 1,234
//	Sessions: 56
//	Agents: claude (80%), codex (15%), gemini (5%)
//	Date Range: 2024-01-01 to 2024-01-31
//	Database Size: 15.2 MB
//	Average Session Duration: 2m 34s
//	Errors: 3
//	Event Types: start 56, stream 1,120, end 55, error 3
//	Pruned: 20,000 events, 12 rejects, 2 archives; last 2024-01-31 (older than 2024-01-01)
func writeStatsText(w io.Writer, s *vibekit.Stats, width int) {
	w = termWriter{w} // stored values are escaped below; this catches any other
	fmt.Fprintf(w, "Total Events: %s\n", formatCount(s.TotalEvents))
	fmt.Fprintf(w, "Sessions: %s\n", formatCount(s.Sessions))
	fmt.Fprintf(w, "Agents: %s\n", formatShares(s.Agents))
	if s.TotalEvents == 0 {
		fmt.Fprintf(w, "Date Range: none\n")
	} else {
		fmt.Fprintf(w, "Date Range: %s to %s\n", time.UnixMilli(s.DateRange.From).Format("2006-01-02"), time.UnixMilli(s.DateRange.To).Format("2006-01-02"))
	}
	fmt.Fprintf(w, "Database Size: %s\n", formatBytes(s.DatabaseSize))
	if s.Archives > 0 {
		fmt.Fprintf(w, "Archives: %s (%s)\n", formatCount(s.Archives), formatBytes(s.ArchiveSize))
	}
	fmt.Fprintf(w, "Average Session Duration: %s\n", formatDuration(s.AverageSessionDuration))
	fmt.Fprintf(w, "Errors: %s\n", formatCount(s.Errors))
	var types []string
	for _, t := range []vibekit.EventType{vibekit.EventStart, vibekit.EventStream, vibekit.EventEnd, vibekit.EventError} {
		types = append(types, fmt.Sprintf("%s %s", t, formatCount(s.EventTypes[t])))
	}
	fmt.Fprintf(w, "Event Types: %s\n", strings.Join(types, ", "))
	fmt.Fprintf(w, "Pruned: %s\n", formatPruned(s.Pruned))
	if s.GroupBy != "" {
		fmt.Fprintf(w, "By %s: %s\n", s.GroupBy, formatShares(s.Groups))
	}
	writeAgentUsage(w, s)
	if s.By != "" {
		fmt.Fprintf(w, "\nEvents by %s:\n", s.By)
		writeBars(w, s.Timeline, width)
	}
}

// formatPruned shows what retention deleted: the events of the live
// database and of whole archives, rejects, and the last pass.
func formatPruned(p vibekit.PruneTotals) string {
	if p.Passes == 0 {
		return "none"
	}
	day := func(ms int64) string { return time.UnixMilli(ms).Format("2006-01-02") }
	return fmt.Sprintf("%s events, %s rejects, %s; last %s (older than %s)",
		formatCount(p.Rows+p.ArchiveRows), formatCount(p.Rejects), plural(p.Archives, "archive"), day(p.Last), day(p.LastBefore))
}

// formatShares shows values with their share of the events: claude (80%).
func formatShares(shares []vibekit.Share) string {
	if len(shares) == 0 {
		return "none"
	}
	parts := make([]string, len(shares))
	for i, sh := range shares {
		v := termText(sh.Value)
		if v == "" {
			v = "(none)"
		}
		parts[i] = fmt.Sprintf("%s (%s)", v, formatPercent(sh.Share))
	}
	return strings.Join(parts, ", ")
}

func formatPercent(f float64) string {
	p := math.Round(f * 100)
	if p == 0 && f > 0 {
		return "<1%"
	}
	return fmt.Sprintf("%.0f%%", p)
}

// writeBars draws a bar per bucket, scaled so the largest fills the room
// the terminal leaves (40 columns when unknown).
func writeBars(w io.Writer, buckets []vibekit.Bucket, width int) {
	labelW, countW := 0, 0
	var most int64
	labels := make([]string, len(buckets))
	for i, b := range buckets {
		labels[i] = termText(b.Label)
		labelW = max(labelW, len(labels[i]))
		countW = max(countW, len(formatCount(b.Events)))
		most = max(most, b.Events)
	}
	room := 40
	if width > 0 {
		room = max(10, min(60, width-labelW-countW-4))
	}
	for i, b := range buckets {
		n := 0
		if most > 0 {
			n = int(math.Round(float64(b.Events) / float64(most) * float64(room)))
			if n == 0 && b.Events > 0 {
				n = 1
			}
		}
		fmt.Fprintf(w, "%-*s  %s%s  %*s\n", labelW, labels[i], strings.Repeat("█", n), strings.Repeat(" ", room-n), countW, formatCount(b.Events))
	}
}

func writePerformanceText(w io.Writer, s *vibekit.IngestStats) {
	fmt.Fprintf(w, "Runs: %s\n", formatCount(s.Runs))
	fmt.Fprintf(w, "Lines Read: %s\n", formatCount(s.LinesRead))
	fmt.Fprintf(w, "Events Written: %s\n", formatCount(s.TotalEventsWritten))
	fmt.Fprintf(w, "Rejects: %s\n", formatCount(s.Rejects))
	fmt.Fprintf(w, "Skipped Lines: %s\n", formatCount(s.Skipped))
	fmt.Fprintf(w, "Refused by the Database: %s (kept as rejects)\n", formatCount(s.Refused))
	fmt.Fprintf(w, "Not Stored: %s\n", formatCount(s.NotStored))
	fmt.Fprintf(w, "Flushes: %s\n", formatCount(s.Flushes))
	fmt.Fprintf(w, "Average Flush Time: %.2f ms\n", s.AverageFlushTime)
	fmt.Fprintf(w, "Last Flush Time: %.2f ms\n", s.LastFlushTime)
	fmt.Fprintf(w, "Buffer Efficiency: %.1f%% (%.1f events per flush)\n", s.BufferEfficiency*100, s.EventsPerFlush)
	if s.EventsPerSecond > 0 {
		fmt.Fprintf(w, "Ingest Rate: %s events/s, %.1f flushes/s\n", formatCount(int64(math.Round(s.EventsPerSecond))), s.FlushesPerSecond)
	} else {
		fmt.Fprintf(w, "Ingest Rate: n/a (no run wrote for long enough to measure)\n")
	}
	fmt.Fprintf(w, "Follow Reports: %s gaps (%s bytes known), %s re-reads, %s refused claims\n",
		formatCount(s.FollowGaps), formatCount(s.FollowGapBytes), formatCount(s.FollowRereads), formatCount(s.RefusedClaims))
}

// writeAgentUsage prints what agent presets recorded, if anything:
//
//	Cost: $0.1338
//	Tokens: 227,045 in, 3,091 out
//	Turns: 12
//	Tool Calls: 14: Bash 5, command_execution 3, Edit 1
//	Failed Commands: 2: go test ./... (1), bash -lc 'go get -u ./...' (1)
func writeAgentUsage(w io.Writer, s *vibekit.Stats) {
	u := s.AgentUsage
	if u == (vibekit.AgentUsage{}) {
		return
	}
	if u.CostPartial {
		fmt.Fprintf(w, "Cost: $%.4f and more: some models are not in the price table, and their cost is not in it\n", u.CostUSD)
	} else {
		fmt.Fprintf(w, "Cost: $%.4f\n", u.CostUSD)
	}
	fmt.Fprintf(w, "Tokens: %s in, %s out\n", formatCount(u.InputTokens), formatCount(u.OutputTokens))
	fmt.Fprintf(w, "Turns: %s\n", formatCount(u.Turns))
	writeIgnored(w, u.IgnoredValues)
	list := func(shares []vibekit.Share, format string) string {
		var parts []string
		for _, sh := range shares {
			parts = append(parts, fmt.Sprintf(format, termText(sh.Value), formatCount(sh.Events)))
		}
		if len(parts) == 0 {
			return ""
		}
		return ": " + strings.Join(parts, ", ")
	}
	fmt.Fprintf(w, "Tool Calls: %s%s\n", formatCount(u.ToolCalls), list(s.Tools, "%s %s"))
	fmt.Fprintf(w, "Failed Commands: %s%s\n", formatCount(u.FailedCommands), list(s.Failures, "%s (%s)"))
	if u.Denials > 0 {
		fmt.Fprintf(w, "Denied Tool Calls: %s (refused by the permission mode)\n", formatCount(u.Denials))
	}
}

// writeIgnored says, if there are any, how many figures the rows hold that
// the sums leave out (vibekit.AgentUsage.IgnoredValues).
func writeIgnored(w io.Writer, n int64) {
	if n > 0 {
		fmt.Fprintf(w, "Ignored Values: %s (not a plausible count or cost: left out of the figures)\n", formatCount(n))
	}
}

// warnIgnored is writeIgnored on stderr, for output that is data only.
func warnIgnored(e *env, n int64) {
	if n > 0 {
		fmt.Fprintf(e.stderr, "vibekit: %s in the rows' metadata not a plausible count or cost: left out of the figures\n", plural(n, "value"))
	}
}
