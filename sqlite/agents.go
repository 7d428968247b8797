package sqlite

import (
	"context"
	"database/sql"
	"math"
	"slices"
	"strconv"
	"strings"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// agentMarkers are keys of which a row's metadata holds at least one if the
// row records agent activity (see vibekit.AgentUsage). instr over the JSON
// text finds them before any JSON is parsed: most rows have none.
var agentMarkers = []string{`"kind"`, `"usage"`, `"total_cost_usd"`, `"num_turns"`}

// agentRows is a SELECT of the rows of table (a table or CTE; where is ""
// or a WHERE clause over it) whose metadata records agent activity, as the
// columns
//
//	sid     the session id (sid of table, or sessionId if it has none)
//	cost, tin, tout, turns
//	        what an end or error row says of cost, tokens and turns
//	call    the tool the row calls, if it is a tool call
//	failed  1 for a failed command or tool call, else 0
//	what    the command the row names, or else its tool
//	tuid    the tool_use_id (claude's results name the call they answer)
//
// per vibekit.AgentUsage.
func agentRows(table, sid, where string) string {
	var marks []string
	for _, m := range agentMarkers {
		marks = append(marks, `instr(metadata, '`+m+`') > 0`)
	}
	cond := `metadata IS NOT NULL AND (` + strings.Join(marks, ` OR `) + `) AND json_valid(metadata)`
	if where == "" {
		where = ` WHERE ` + cond
	} else {
		where += ` AND ` + cond
	}
	// Three levels: the raw values and their JSON types; the values the
	// figures take (see usageValue); what the row calls and failed.
	raw := `SELECT ` + sid + ` AS sid, eventType IN ('end', 'error') AS ev,
		metadata ->> '$.kind' AS kind, metadata ->> '$.tool' AS tool, metadata ->> '$.phase' AS phase,
		metadata ->> '$.status' AS status, metadata ->> '$.exit_code' AS exit_code,
		metadata ->> '$.is_error' AS is_error, metadata ->> '$.command' AS command,
		metadata ->> '$.tool_use_id' AS tuid`
	for _, f := range usageFields {
		raw += `, metadata ->> '` + f.path + `' AS ` + f.name + `, json_type(metadata, '` + f.path + `') AS ` + f.name + `_t`
	}
	raw += ` FROM ` + table + where
	valid := `SELECT sid, kind, tool, phase, status, exit_code, is_error, command, tuid,
		CASE WHEN ev THEN ` + usageValue("cost", maxCost, false) + ` END AS cost,
		CASE WHEN ev THEN ` + usageValue("tin", maxCount, true) + ` + COALESCE(` + usageValue("tcc", maxCount, true) + `, 0)
			+ COALESCE(` + usageValue("tcr", maxCount, true) + `, 0) END AS tin,
		CASE WHEN ev THEN ` + usageValue("tout", maxCount, true) + ` END AS tout,
		CASE WHEN ev THEN COALESCE(` + usageValue("turns", maxCount, true) + `,
			CASE WHEN kind IN ('turn.completed', 'turn.failed') THEN 1 END) END AS turns,
		CASE WHEN ev THEN ` + ignored() + ` ELSE 0 END AS ignored
	FROM (` + raw + `)`
	// The tool calls the permission mode refused: claude's result lists them
	// (permission_denials); their tool results are denials, not failures.
	denied := `SELECT json_extract(d.value, '$.tool_use_id') FROM ` + table + ` AS dt, json_each(dt.metadata, '$.permission_denials') AS d
		WHERE instr(dt.metadata, '"permission_denials"') > 0 AND json_valid(dt.metadata) AND json_type(dt.metadata, '$.permission_denials') = 'array'`
	return `SELECT sid, cost, tin, tout, turns,
		CASE WHEN kind = 'tool_use' OR (phase = 'completed' AND tool IS NOT NULL) THEN tool END AS call,
		CASE WHEN (kind = 'tool_result' AND is_error AND tuid NOT IN (` + denied + `))
			OR (phase = 'completed' AND tool IS NOT NULL AND (status = 'failed' OR COALESCE(exit_code, 0) <> 0))
			OR (kind = 'exit' AND exit_code <> 0) THEN 1 ELSE 0 END AS failed,
		CASE WHEN kind = 'tool_result' AND is_error AND tuid IN (` + denied + `) THEN 1 ELSE 0 END AS denied,
		COALESCE(command, tool) AS what, tuid, ignored
	FROM (` + valid + `)`
}

// usageFields are the figures of end and error rows that reports sum.
var usageFields = []struct{ name, path string }{
	{"cost", "$.total_cost_usd"},
	{"tin", "$.usage.input_tokens"},
	{"tcc", "$.usage.cache_creation_input_tokens"},
	{"tcr", "$.usage.cache_read_input_tokens"},
	{"tout", "$.usage.output_tokens"},
	{"turns", "$.num_turns"},
}

// Bounds of a figure a report takes: above them a value is taken for a
// mistake (9.3e18 tokens, 1e400), and its sum could not be read.
const (
	maxCount = "1e15" // tokens or turns in one row
	maxCost  = "1e9"  // dollars in one row
)

// usageValue is the SQL value of the figure name of agentRows' raw level:
// a JSON number from 0 to max (a whole one if whole, as an integer), or
// NULL for anything else, which ignored counts.
func usageValue(name, max string, whole bool) string {
	cond := name + `_t IN ('integer', 'real') AND ` + name + ` BETWEEN 0 AND ` + max
	if whole {
		return `CASE WHEN ` + cond + ` AND ` + name + ` = CAST(` + name + ` AS INTEGER) THEN CAST(` + name + ` AS INTEGER) END`
	}
	return `CASE WHEN ` + cond + ` THEN ` + name + ` END`
}

// ignored counts the figures of a row that are present (not null) but not
// taken by usageValue: a string, an object, 1.5 turns, -3 tokens, 1e400.
func ignored() string {
	var terms []string
	for _, f := range usageFields {
		max, whole := maxCount, true
		if f.name == "cost" {
			max, whole = maxCost, false
		}
		terms = append(terms, `(`+f.name+`_t IS NOT NULL AND `+f.name+`_t <> 'null' AND (`+usageValue(f.name, max, whole)+`) IS NULL)`)
	}
	return strings.Join(terms, ` + `)
}

// agentSums are the aggregates of agentRows' columns, named agentCols, in
// vibekit.AgentUsage's order; usageScan reads them. TOTAL sums as a float,
// which never overflows as SUM of integers can; usageScan clamps it.
const (
	agentSums = `TOTAL(cost) AS cost, TOTAL(tin) AS tin, TOTAL(tout) AS tout, TOTAL(turns) AS turns, COUNT(call) AS calls,
		SUM(failed) AS failed, SUM(denied) AS denied, SUM(ignored) AS ignored`
	agentCols = `ag.cost, ag.tin, ag.tout, ag.turns, ag.calls, ag.failed, ag.denied, ag.ignored`
)

// usageScan holds the scanned agentSums until they are known not NULL.
type usageScan struct {
	cost, tin, tout, turns         sql.NullFloat64
	calls, failed, denied, ignored sql.NullInt64
}

func (u *usageScan) dest() []any {
	return []any{&u.cost, &u.tin, &u.tout, &u.turns, &u.calls, &u.failed, &u.denied, &u.ignored}
}

func (u *usageScan) usage() vibekit.AgentUsage {
	// Costs are in dollars with up to 7 decimals: a sum of them is rounded
	// to that, not left with the float's noise (0.13384479999999999).
	cost := math.Round(u.cost.Float64*1e7) / 1e7
	return vibekit.AgentUsage{CostUSD: cost, InputTokens: clampCount(u.tin.Float64), OutputTokens: clampCount(u.tout.Float64),
		Turns: clampCount(u.turns.Float64), ToolCalls: u.calls.Int64, FailedCommands: u.failed.Int64,
		Denials: u.denied.Int64, IgnoredValues: u.ignored.Int64}
}

// clampCount is a sum of counts as an int64: exact below 2^53, and at most
// math.MaxInt64.
func clampCount(f float64) int64 {
	if f >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(math.Round(max(f, 0)))
}

// toolSep separates tool names in a group_concat.
const toolSep = "\x1f"

// joinTools sorts the tool names of a group_concat and joins them with
// commas.
func joinTools(s string) string {
	if s == "" {
		return ""
	}
	tools := strings.Split(s, toolSep)
	slices.Sort(tools)
	return strings.Join(tools, ",")
}

// maxFailures bounds the failed commands Stats lists.
const maxFailures = 10

// agentStats adds to s what agent presets recorded in the rows w selects.
func agentStats(ctx context.Context, c *sql.Conn, w string, args []any, s *vibekit.Stats) error {
	am := `WITH am AS (` + agentRows("telemetry", "sessionId", w) + `) `
	var u usageScan
	if err := c.QueryRowContext(ctx, am+`SELECT `+agentSums+` FROM am`, args...).Scan(u.dest()...); err != nil {
		return err
	}
	s.AgentUsage = u.usage()
	var err error
	if s.ToolCalls > 0 {
		s.Tools, err = agentShares(ctx, c, am+`SELECT call, COUNT(*), COUNT(DISTINCT sid) FROM am WHERE call IS NOT NULL
			GROUP BY 1 ORDER BY 2 DESC, 1`, args, s.ToolCalls)
		if err != nil {
			return err
		}
	}
	if s.FailedCommands > 0 {
		// A claude tool result names only its call: the command is in the
		// input of the tool_use row with the same tool_use_id.
		s.Failures, err = agentShares(ctx, c, am+`SELECT COALESCE(
			(SELECT CASE WHEN json_valid(u.streamData) THEN u.streamData ->> '$.command' END FROM telemetry u
				WHERE f.tuid IS NOT NULL AND u.sessionId = f.sid AND u.eventType = 'stream' AND instr(u.metadata, f.tuid) > 0
				AND CASE WHEN json_valid(u.metadata) THEN u.metadata ->> '$.kind' END = 'tool_use' LIMIT 1),
			f.what, '(unknown)') AS cmd, COUNT(*), COUNT(DISTINCT f.sid)
			FROM am AS f WHERE f.failed = 1 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT `+strconv.Itoa(maxFailures), args, s.FailedCommands)
	}
	return err
}

// agentShares runs q, which gives a value, a count and sessions per row,
// into shares of total.
func agentShares(ctx context.Context, c *sql.Conn, q string, args []any, total int64) ([]vibekit.Share, error) {
	rows, err := c.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []vibekit.Share
	for rows.Next() {
		var sh vibekit.Share
		var v sql.NullString
		if err := rows.Scan(&v, &sh.Events, &sh.Sessions); err != nil {
			return nil, err
		}
		sh.Value, sh.Share = v.String, float64(sh.Events)/float64(total)
		out = append(out, sh)
	}
	return out, rows.Err()
}
