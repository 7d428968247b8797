package vibekit

// The summaries the store computes: the guide's SessionSummary, TelemetryStats
// and AgentStats, and the ingest figures behind `stats --performance`. JSON
// names follow the guide where it names a field (duration, eventCount,
// status, totalEventsWritten, averageFlushTime); times are Unix ms and
// durations ms, as the table stores them.

// SessionSummary is one session: its rows grouped by sessionId.
type SessionSummary struct {
	SessionID  string `json:"sessionId"`
	AgentType  string `json:"agentType"` // of the session's first row
	Mode       string `json:"mode"`      // of the session's first row
	StartTime  int64  `json:"startTime"` // the first row's timestamp
	EndTime    int64  `json:"endTime"`   // the last row's timestamp
	Duration   int64  `json:"duration"`  // EndTime - StartTime, in ms
	EventCount int64  `json:"eventCount"`
	ErrorCount int64  `json:"errorCount"` // rows of type error
	Status     string `json:"status"`
	AgentUsage
	// Tools are the tools called, sorted, comma-separated (a string keeps
	// the summary comparable).
	Tools string `json:"tools,omitempty"`
}

// AgentUsage is what the agent presets (and a command vibekit-pipe runs)
// record of agent runs, summed over rows, from the rows' metadata:
//   - CostUSD, InputTokens (cached ones included), OutputTokens: as the
//     usage package counts metadata.tokens (each API call once, running
//     totals by their increases), where the readers put it in; the store's
//     own sums of end and error rows (total_cost_usd, usage) otherwise;
//   - Turns: num_turns of end and error rows (claude), or one per
//     turn.completed or turn.failed row (codex);
//   - ToolCalls: tool_use rows (claude) and completed tool items (codex:
//     command_execution, file_change, mcp_tool_call, web_search);
//   - FailedCommands: tool calls and commands that failed: tool results
//     with is_error (claude), completed tool items with a non-zero
//     exit_code or status failed (codex), a command vibekit-pipe ran that
//     exited non-zero.
type AgentUsage struct {
	CostUSD        float64 `json:"costUsd,omitempty"`
	InputTokens    int64   `json:"inputTokens,omitempty"`
	OutputTokens   int64   `json:"outputTokens,omitempty"`
	Turns          int64   `json:"turns,omitempty"`
	ToolCalls      int64   `json:"toolCalls,omitempty"`
	FailedCommands int64   `json:"failedCommands,omitempty"`
	// Denials are tool calls the agent's permission mode refused (claude's
	// permission_denials): their is_error results are not failures.
	Denials int64 `json:"denials,omitempty"`
	// CostPartial says some usage was of models the price table does not
	// have: CostUSD leaves their cost out (it is unknown, not 0).
	CostPartial bool `json:"costPartial,omitempty"`
	// IgnoredValues counts the figures above that a row holds but the sums
	// leave out: not a number (a string, an object), negative, fractional
	// where a count is whole, or too large to be true (over 1e15 tokens
	// or turns, or $1e9, in one row).
	IgnoredValues int64 `json:"ignoredValues,omitempty"`
}

// Session statuses that the store derives; an end row's metadata.status
// (success, interrupted, ...) takes their place when it has one.
const (
	StatusActive    = "active"    // no end row yet, and no error
	StatusError     = "error"     // an error row and no end row
	StatusCompleted = "completed" // an end row without a status of its own
)

// SessionStatus derives a session's status from whether it has an end row,
// the metadata.status of its last end or error row (how the agent says the
// run ended: success, error_max_turns, api_error_529, ...), and its error
// count.
func SessionStatus(hasEnd bool, endStatus string, errors int64) string {
	switch {
	case endStatus != "":
		return endStatus
	case hasEnd:
		return StatusCompleted
	case errors > 0:
		return StatusError
	}
	return StatusActive
}

// Share is the part of the events that one value of a column holds.
type Share struct {
	Value    string  `json:"value"`
	Events   int64   `json:"events"`
	Sessions int64   `json:"sessions"`
	Share    float64 `json:"share"` // Events / all events, 0..1
}

// TimeRange is the first and last timestamp of a set of rows (Unix ms);
// both are 0 when there are no rows.
type TimeRange struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// Bucket is the number of events in one hour or day, starting at Start (Unix
// ms, local time); Label is that start as text (2024-01-31 or 2024-01-31 10:00).
type Bucket struct {
	Start  int64  `json:"start"`
	Label  string `json:"label"`
	Events int64  `json:"events"`
}

// Stats is the guide's overall summary of the store.
type Stats struct {
	TotalEvents  int64               `json:"totalEvents"`
	Sessions     int64               `json:"sessions"`
	Errors       int64               `json:"errors"`
	EventTypes   map[EventType]int64 `json:"eventTypes"`
	Agents       []Share             `json:"agents"` // most events first
	DateRange    TimeRange           `json:"dateRange"`
	DatabaseSize int64               `json:"databaseSize"` // bytes, the WAL included
	// Archives and ArchiveSize count the archives beside the database and
	// their bytes on disk, when they are read with it (stats --archives).
	Archives               int64    `json:"archives,omitempty"`
	ArchiveSize            int64    `json:"archiveSize,omitempty"`
	AverageSessionDuration int64    `json:"averageSessionDuration"` // ms
	GroupBy                string   `json:"groupBy,omitempty"`
	Groups                 []Share  `json:"groups,omitempty"`   // by GroupBy, most events first
	By                     string   `json:"by,omitempty"`       // hour or day
	Timeline               []Bucket `json:"timeline,omitempty"` // by By, oldest first
	AgentUsage
	// Tools are the tools called, most calls first (Events counts calls);
	// Failures the commands (or tools, when the command is not known) that
	// failed, most failures first, at most ten.
	Tools    []Share `json:"tools,omitempty"`
	Failures []Share `json:"failures,omitempty"`
	// Pruned is what retention has deleted from the store so far, whatever
	// the filters: like DatabaseSize, it describes the store.
	Pruned PruneTotals `json:"pruned"`
}

// PruneTotals sums what retention (pruneDays) has deleted: rows and rejects
// of the live database, and whole archives.
type PruneTotals struct {
	Passes      int64 `json:"passes"` // retention passes that deleted something
	Rows        int64 `json:"rows"`   // telemetry rows deleted from the live database
	Rejects     int64 `json:"rejects"`
	Archives    int64 `json:"archives"`    // archives deleted
	ArchiveRows int64 `json:"archiveRows"` // the rows those archives held
	Last        int64 `json:"last"`        // Unix ms of the last pass that deleted something; 0 if none
	LastBefore  int64 `json:"lastBefore"`  // its cut-off: what was older went; 0 if none
}

// AgentStats summarises one agent type.
type AgentStats struct {
	AgentType              string `json:"agentType"`
	Events                 int64  `json:"events"`
	Sessions               int64  `json:"sessions"`
	Errors                 int64  `json:"errors"`
	AverageSessionDuration int64  `json:"averageSessionDuration"` // ms
	FirstEvent             int64  `json:"firstEvent"`
	LastEvent              int64  `json:"lastEvent"`
}

// IngestStats are the ingest figures of the pipe runs (and other commits)
// that wrote the store, summed over runs.
type IngestStats struct {
	Runs               int64 `json:"runs"`
	LinesRead          int64 `json:"linesRead"`
	BytesRead          int64 `json:"bytesRead"`
	TotalEventsWritten int64 `json:"totalEventsWritten"`
	Rejects            int64 `json:"rejects"`
	Skipped            int64 `json:"skipped"`
	// Refused counts rows the database refused (kept as rejects, and
	// counted in Rejects too); NotStored the rows stored nowhere: given up
	// on after bounded retries, or refused even as rejects.
	Refused          int64   `json:"refused"`
	NotStored        int64   `json:"notStored"`
	Flushes          int64   `json:"flushes"`
	AverageFlushTime float64 `json:"averageFlushTime"` // ms per flush
	LastFlushTime    float64 `json:"lastFlushTime"`    // ms, of the latest flush
	EventsPerFlush   float64 `json:"eventsPerFlush"`
	// BufferEfficiency is the share of transactions that batching saved
	// against one commit per event: 1 - flushes/events.
	BufferEfficiency float64 `json:"bufferEfficiency"`
	EventsPerSecond  float64 `json:"eventsPerSecond"`  // over the runs' active time
	FlushesPerSecond float64 `json:"flushesPerSecond"` // over the runs' active time
	FirstRun         int64   `json:"firstRun"`         // when the first run started, Unix ms
	LastUpdate       int64   `json:"lastUpdate"`       // the latest commit of any run, Unix ms
	// What following reported instead of keeping it exactly once (vk_warnings).
	FollowGaps     int64 `json:"followGaps"`
	FollowGapBytes int64 `json:"followGapBytes"` // of the gaps of known size
	FollowRereads  int64 `json:"followRereads"`
	RefusedClaims  int64 `json:"refusedClaims"`
}
