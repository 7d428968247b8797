package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/jq"
	"github.com/vibekit/vibekit-pipe/usage"
)

var usageShortHelp = map[usage.Period]string{
	usage.Daily:   "tokens and cost by day",
	usage.Weekly:  "tokens and cost by week",
	usage.Monthly: "tokens and cost by month",
	usage.Session: "tokens and cost by session",
	usage.Blocks:  "tokens and cost by 5-hour billing block",
}

func newUsageCommand(e *env) *ffcli.Command {
	fs := flag.NewFlagSet("vibekit telemetry usage", flag.ContinueOnError)
	var subs []*ffcli.Command
	for _, p := range []usage.Period{usage.Daily, usage.Weekly, usage.Monthly, usage.Session, usage.Blocks} {
		subs = append(subs, newUsageReportCommand(e, p))
	}
	return &ffcli.Command{
		Name:        "usage",
		ShortUsage:  "vibekit telemetry usage daily|weekly|monthly|session|blocks [flags]",
		ShortHelp:   "tokens and cost of the agents' runs, by day, week, month, session or 5-hour block",
		FlagSet:     fs,
		Subcommands: subs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErrorf("usage: unknown report %q: use daily, weekly, monthly, session or blocks", args[0])
			}
			return usageErrorf("usage: name a report: daily, weekly, monthly, session or blocks")
		},
	}
}

func newUsageReportCommand(e *env, period usage.Period) *ffcli.Command {
	fs := flag.NewFlagSet("vibekit telemetry usage "+string(period), flag.ContinueOnError)
	var (
		db              string
		from, to        string
		tz, weekStart   string
		by, prices      string
		sessions        stringList
		agents          stringList
		format          string
		jqSrc           string
		jqTimeout       time.Duration
		ar              archiveFlags
		breakdownModels bool
		printPrices     bool
		live            time.Duration
	)
	fs.StringVar(&db, "db", DefaultDB, "SQLite database `path`")
	fs.StringVar(&from, "from", "", "count usage from this `time` on (forms as in dump)")
	fs.StringVar(&to, "to", "", "count usage up to this `time` (a date: to its end)")
	fs.StringVar(&tz, "timezone", "", "the time `zone` of days, weeks and months: UTC, Europe/Paris, ... (default: local)")
	fs.StringVar(&weekStart, "start-of-week", "sunday", "the first `day` of a week, for weekly")
	fs.StringVar(&by, "by", "", "split every row by `agent`, model or project")
	fs.Var(&agents, "agent", "only this agent `type` (repeatable)")
	fs.Var(&sessions, "session", "only this session `id` (repeatable)")
	fs.StringVar(&prices, "prices", "", "a JSON price `file` whose models add to or replace the shipped table")
	fs.StringVar(&format, "format", "", "output `format`: ndjson, json or table (default: table on a terminal, ndjson otherwise)")
	fs.BoolVar(&breakdownModels, "breakdown", false, "in a table, a line per model under each row")
	fs.DurationVar(&live, "live", 0, "print the report again every `interval` (2s, 1m) until interrupted; on a terminal, in place")
	fs.BoolVar(&printPrices, "print-prices", false, "print the price table in use (its source, date and models) and exit")
	fs.StringVar(&jqSrc, "jq", "", "reshape each row with this jq `program` (run in-process)")
	fs.DurationVar(&jqTimeout, "jq-timeout", jq.DefaultTimeout, "longest a jq program may run on one row")
	ar.register(fs)
	addConfigFlag(fs)
	return &ffcli.Command{
		Name:       string(period),
		ShortUsage: "vibekit telemetry usage " + string(period) + " [flags]",
		ShortHelp:  usageShortHelp[period],
		LongHelp: usageShortHelp[period] + `.

Prints what the recorded agent runs used and cost: one row per day, week
(from --start-of-week), month, session, or 5-hour billing block (a block
starts at the hour of its first call and lasts 5 hours, its end included;
a call after it, or more than 5 hours after the last, starts another). Each row has inputTokens (not cached), outputTokens,
cacheCreationTokens, cacheReadTokens, reasoningTokens (part of the output),
totalTokens, totalCost in US dollars and where it comes from: agentCost
(what the agent itself reported) and computedCost (from the price table),
unpricedModels (models the table lacks: their cost is unknown and not in
totalCost), modelsUsed and modelBreakdowns.

The usage comes from the rows the presets write: vibekit-pipe --preset
claude, codex or gemini over an agent's output or transcript, and
vibekit-pipe --transcripts, which follows every agent's transcripts on this
machine ("true | vibekit-pipe --transcripts" stores what is new and exits). Each API call
counts once, however often a transcript repeats it; an agent's running
totals count by their increases; a session with the agent's own totals and
its transcript is counted from the one that holds more tokens.

Prices: the shipped table, with its source and date (--print-prices shows
it), and the models of --prices FILE added or replaced: a JSON object of
model names to LiteLLM's fields (input_cost_per_token,
output_cost_per_token, cache_creation_input_token_cost,
cache_read_input_token_cost, and the _above_200k_tokens rates), as
LiteLLM's model_prices_and_context_window.json is.

On a terminal it prints a table with a total; to a pipe or file NDJSON, one
row per line; --format json prints {"<report>": [rows], "totals": {...}}.

Examples:
  true | vibekit-pipe --transcripts && vibekit telemetry usage daily
  vibekit telemetry usage monthly --by agent
  vibekit telemetry usage session --agent claude --from "last week"
  vibekit telemetry usage blocks --timezone UTC
  vibekit telemetry usage daily --from 2026-12-01 --to 2026-12-31 --jq '{date, totalCost}'`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if err := applySettings(fs, "db", "jq-timeout", "max-archive-mb", "prices", "timezone"); err != nil {
				return err
			}
			table := usage.DefaultPrices()
			if prices != "" {
				var err error
				if table, err = usage.LoadPrices(prices); err != nil {
					return err
				}
			}
			if printPrices {
				b, _ := json.MarshalIndent(table, "", " ")
				_, err := e.stdout.Write(append(b, '\n'))
				return err
			}
			if len(args) > 0 {
				return usageErrorf("usage %s: unexpected argument %q", period, args[0])
			}
			if e.getenv("GOMEMLIMIT") == "" {
				// A report keeps every call of the range in memory; a soft limit
				// keeps the collector from letting the heap grow to GOGC's 5x.
				debug.SetMemoryLimit(usageMemoryLimit)
			}
			var err error
			o := usage.Options{Period: period, Now: e.now()}
			if o.Location, err = loadLocation(tz); err != nil {
				return err
			}
			if o.WeekStart, err = parseWeekday(weekStart); err != nil {
				return err
			}
			switch by {
			case "", "agent", "model", "project":
				o.By = by
			default:
				return usageErrorf("--by %q: use agent, model or project", by)
			}
			// A date alone is a day of --timezone, as the report's days are.
			parse := func(s string) (time.Time, error) {
				if isDate(s) {
					return time.ParseInLocation(time.DateOnly, strings.TrimSpace(s), o.Location)
				}
				return vibekit.ParseTime(s, e.now())
			}
			var fromT, toT time.Time
			if from != "" {
				if fromT, err = parse(from); err != nil {
					return usageErrorf("--from: %v", err)
				}
			}
			if to != "" {
				if toT, err = parse(to); err != nil {
					return usageErrorf("--to: %v", err)
				}
				if isDate(to) {
					toT = toT.AddDate(0, 0, 1) // a date means the whole day
				} else {
					toT = toT.Add(time.Millisecond) // inclusive, as dump's --to
				}
			}
			if format == "" {
				format = "ndjson"
				if isTerminal(e.stdout) {
					format = "table"
				}
			}
			switch format {
			case "ndjson", "json", "table":
			default:
				return usageErrorf("--format %q: use ndjson, json or table", format)
			}
			var prog *jq.Program
			if jqSrc != "" {
				if format == "table" {
					return usageErrorf("--jq prints JSON values: --format must be ndjson or json")
				}
				if prog, err = jq.Compile(jqSrc); err != nil {
					return err
				}
				prog.Timeout = jqTimeout
			}
			scan, closeScan, err := ar.open(e, db)
			if err != nil {
				return err
			}
			defer closeScan()
			report := func(w io.Writer) error {
				items, err := usage.Collect(ctx, usage.ScanFunc(scan), table, vibekit.Filter{SessionIDs: sessions, AgentTypes: agents})
				if err != nil {
					return errf("usage", err)
				}
				o.Now = e.now()
				rows := usage.Report(usage.InRange(items, fromT, toT), o)
				switch {
				case prog != nil:
					return writeUsageJQ(ctx, w, prog, rows, format == "json")
				case format == "table":
					writeUsageTable(w, period, o.By, rows, breakdownModels, e.tableWidth())
				case format == "json":
					name := string(period)
					if period == usage.Session {
						name = "sessions"
					}
					b, _ := json.Marshal(map[string]any{name: nonNil(rows), "totals": totalsOf(rows)})
					w.Write(append(b, '\n'))
				default:
					for i := range rows {
						b, _ := json.Marshal(&rows[i])
						w.Write(append(b, '\n'))
					}
				}
				return nil
			}
			if live > 0 {
				return liveReport(ctx, e, live, format == "table", report)
			}
			w := bufio.NewWriterSize(e.stdout, 64<<10)
			err = report(w)
			if ferr := w.Flush(); err == nil {
				err = ferr
			}
			return err
		},
	}
}

// liveReport prints a report every interval until ctx ends: on a terminal
// (table) in place, the screen cleared first; else one report after another,
// as NDJSON or JSON documents, for a program that reads them as they come.
func liveReport(ctx context.Context, e *env, interval time.Duration, table bool, report func(io.Writer) error) error {
	if interval < 100*time.Millisecond {
		return usageErrorf("--live %v: the interval must be at least 100ms", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var b bytes.Buffer
	for {
		b.Reset()
		if table {
			b.WriteString("\x1b[H\x1b[2J") // home, clear: the report replaces the last
		}
		if err := report(&b); err != nil {
			return err
		}
		if table {
			fmt.Fprintf(&b, "\nUpdated %s; every %v (Ctrl-C stops).\n", e.now().Format("15:04:05"), interval)
		}
		if _, err := e.stdout.Write(b.Bytes()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// usageMemoryLimit is the Go heap's soft limit while a report runs.
const usageMemoryLimit = 40 << 20

func totalsOf(rows []usage.Row) usage.Row {
	t := usage.Totals(rows)
	t.Models, t.Breakdown = nil, nil
	return t
}

func nonNil(rows []usage.Row) []usage.Row {
	if rows == nil {
		return []usage.Row{}
	}
	return rows
}

func writeUsageJQ(ctx context.Context, w io.Writer, prog *jq.Program, rows []usage.Row, array bool) error {
	r := prog.NewRunner()
	defer r.Close()
	var outs [][]byte
	for i := range rows {
		b, _ := json.Marshal(&rows[i])
		v, err := vibekit.DecodeValue(b)
		if err != nil {
			return err
		}
		err = r.Run(ctx, v, func(out any) error {
			outs = append(outs, jq.AppendValue(nil, out))
			if !array {
				w.Write(append(outs[len(outs)-1], '\n'))
				outs = outs[:0]
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if array {
		io.WriteString(w, "[")
		for i, o := range outs {
			if i > 0 {
				io.WriteString(w, ",")
			}
			w.Write(o)
		}
		io.WriteString(w, "]\n")
	}
	return nil
}

// writeUsageTable prints rows for people: a line per row, a total, and
// where the cost came from.
func writeUsageTable(w io.Writer, period usage.Period, by string, rows []usage.Row, breakdown bool, width int) {
	head := map[usage.Period]string{usage.Daily: "Date", usage.Weekly: "Week", usage.Monthly: "Month",
		usage.Session: "Session", usage.Blocks: "Block"}[period]
	cols := []string{head}
	if by != "" {
		cols = append(cols, strings.ToUpper(by[:1])+by[1:])
	}
	cols = append(cols, "Models", "Input", "Output", "Cache Create", "Cache Read", "Total Tokens", "Cost (USD)")
	label := func(r *usage.Row) []string {
		var l string
		switch period {
		case usage.Daily:
			l = r.Date
		case usage.Weekly:
			l = r.Week
		case usage.Monthly:
			l = r.Month
		case usage.Session:
			l = r.SessionID
		case usage.Blocks:
			l = r.Start.Format("2006-01-02 15:04")
			if r.Active != nil && *r.Active {
				l += " (active)"
			}
		}
		out := []string{l}
		switch by {
		case "agent":
			out = append(out, r.Agent)
		case "model":
			out = append(out, r.Model)
		case "project":
			out = append(out, r.Project)
		}
		return out
	}
	var lines [][]string
	line := func(first []string, models string, t usage.Tokens, total int64, cost string) {
		lines = append(lines, append(first, models, formatCount(t.Input), formatCount(t.Output),
			formatCount(t.CacheCreation), formatCount(t.CacheRead), formatCount(total), cost))
	}
	for i := range rows {
		r := &rows[i]
		cost := usageCost(r.TotalCost, r.ComputedCost, r.Unpriced)
		if r.Flagged {
			cost += "!"
		}
		line(label(r), strings.Join(r.Models, ", "), r.Tokens, r.TotalTokens, cost)
		if breakdown {
			for _, m := range r.Breakdown {
				blank := make([]string, len(cols)-7)
				var unpriced []string
				if m.Source == usage.CostUnpriced {
					unpriced = []string{m.Model}
				}
				computed := 0.0
				if m.Source == usage.CostComputed {
					computed = m.Cost
				}
				line(blank, "  "+m.Model, m.Tokens, m.Tokens.Total(), usageCost(m.Cost, computed, unpriced))
			}
		}
	}
	t := usage.Totals(rows)
	first := make([]string, len(cols)-7)
	first[0] = "Total"
	line(first, "", t.Tokens, t.TotalTokens, usageCost(t.TotalCost, t.ComputedCost, t.Unpriced))

	widths := make([]int, len(cols))
	for i, c := range cols {
		widths[i] = displayWidth(c)
	}
	for _, l := range lines {
		for i, c := range l {
			widths[i] = max(widths[i], displayWidth(tableCell(c, kindPlain)))
		}
	}
	pad := func(cells []string, right bool) string {
		var b strings.Builder
		for i, c := range cells {
			c = tableCell(c, kindPlain)
			gap := strings.Repeat(" ", widths[i]-displayWidth(c))
			if i > 0 {
				b.WriteString("  ")
			}
			if right && i >= len(cols)-6 {
				b.WriteString(gap + c)
			} else {
				b.WriteString(c + gap)
			}
		}
		s := strings.TrimRight(b.String(), " ")
		if width > 0 {
			s = cut(s, width)
		}
		return s + "\n"
	}
	io.WriteString(w, pad(cols, true))
	for i, l := range lines {
		if i == len(lines)-1 {
			io.WriteString(w, pad(make([]string, len(cols)), false))
		}
		io.WriteString(w, pad(l, true))
	}
	if t.ComputedCost > 0 && t.AgentCost > 0 {
		fmt.Fprintf(w, "Cost: $%.2f as the agents reported it, $%.2f computed from the price table (marked *).\n", t.AgentCost, t.ComputedCost)
	} else if t.ComputedCost > 0 {
		io.WriteString(w, "Cost: computed from the price table (marked *).\n")
	}
	if t.Flagged {
		io.WriteString(w, "! a stored count was out of range (fractional, negative or beyond int64) and was clamped: the figures of that row are doubtful.\n")
	}
	if len(t.Unpriced) > 0 {
		fmt.Fprintf(w, "Unpriced (not in the price table; their cost is not in the total): %s\n", tableCell(strings.Join(t.Unpriced, ", "), kindPlain))
	}
}

// usageCost is a cost for people: $1.23, * when any of it was computed,
// + when some of it is unknown.
func usageCost(total, computed float64, unpriced []string) string {
	s := fmt.Sprintf("$%.2f", total)
	if computed > 0 {
		s += "*"
	}
	if len(unpriced) > 0 {
		s += "+?"
	}
	return s
}

// isDate reports whether s is a date alone: 2026-12-31.
func isDate(s string) bool {
	_, err := time.Parse(time.DateOnly, strings.TrimSpace(s))
	return err == nil
}

func loadLocation(name string) (*time.Location, error) {
	if name == "" {
		return time.Local, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, usageErrorf("--timezone %q: not a time zone (use UTC or a name such as Europe/Paris)", name)
	}
	return loc, nil
}

func parseWeekday(s string) (time.Weekday, error) {
	for d := time.Sunday; d <= time.Saturday; d++ {
		if strings.EqualFold(s, d.String()) {
			return d, nil
		}
	}
	return 0, usageErrorf("--start-of-week %q: name a day (sunday, monday, ...)", s)
}
