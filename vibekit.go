// Package vibekit holds the domain of the local telemetry store: the record the
// guide defines, the filters queries take, and the errors callers tell apart.
// It depends on the standard library only; the store, readers and CLI build on it.
package vibekit

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// EventType is one of the four kinds of telemetry event.
type EventType string

// The event types of the guide's TelemetryRecord.
const (
	EventStart  EventType = "start"
	EventStream EventType = "stream"
	EventEnd    EventType = "end"
	EventError  EventType = "error"
)

// Valid reports whether t is one of the four event types.
func (t EventType) Valid() bool {
	switch t {
	case EventStart, EventStream, EventEnd, EventError:
		return true
	}
	return false
}

// Lifecycle reports whether t marks a session boundary (start, end, error):
// such rows are committed at once, after their session's buffered stream rows.
func (t EventType) Lifecycle() bool { return t != EventStream }

// ParseEventType returns the event type named s, or an error naming the four.
func ParseEventType(s string) (EventType, error) {
	if t := EventType(s); t.Valid() {
		return t, nil
	}
	return "", fmt.Errorf("event type %q is not one of start, stream, end, error", s)
}

// Record is one telemetry event, the guide's TelemetryRecord. Empty optional
// strings are stored as NULL; Metadata, when set, is a compact JSON object.
type Record struct {
	ID         int64           `json:"id,omitempty"`
	SessionID  string          `json:"sessionId"`
	EventType  EventType       `json:"eventType"`
	AgentType  string          `json:"agentType"`
	Mode       string          `json:"mode,omitempty"`
	Prompt     string          `json:"prompt,omitempty"`
	StreamData string          `json:"streamData,omitempty"`
	SandboxID  string          `json:"sandboxId,omitempty"`
	RepoURL    string          `json:"repoUrl,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	Timestamp  int64           `json:"timestamp"` // Unix milliseconds
}

// Time returns the record's timestamp as a time.Time.
func (r *Record) Time() time.Time { return time.UnixMilli(r.Timestamp) }

// Order is the order records are returned in.
type Order int

// Orders of GetEvents and dump: oldest first is the default.
const (
	OrderAsc Order = iota
	OrderDesc
)

// ParseOrder accepts the guide's names (timestamp_asc, timestamp_desc) and the
// short forms asc and desc.
func ParseOrder(s string) (Order, error) {
	switch s {
	case "", "asc", "timestamp_asc":
		return OrderAsc, nil
	case "desc", "timestamp_desc":
		return OrderDesc, nil
	}
	return OrderAsc, fmt.Errorf("order %q is not asc or desc (timestamp_asc, timestamp_desc)", s)
}

// Filter selects records, the guide's TelemetryQueryFilter. Zero values select all.
type Filter struct {
	From, To   time.Time // inclusive bounds; zero means unbounded
	SessionIDs []string
	EventTypes []EventType
	AgentTypes []string
	Modes      []string
	Contains   string            // substring of prompt or streamData
	Metadata   map[string]string // dotted key path = value
	// HasMetadata keeps the rows whose metadata has each of these top-level
	// keys (with any value but null).
	HasMetadata []string
	// MetadataOnly, when set, reads of each row only its id, sessionId,
	// eventType, agentType, timestamp and this top-level key of its metadata
	// (a report's columns), and keeps only the rows that have the key. The
	// key is a name of letters, digits and underscores.
	MetadataOnly string
	Sources      []string // the input a row was read from
	Limit        int      // 0 means no limit
	Offset       int
	Order        Order
}

// UsageKey is the top-level metadata key of the usage a record carries
// (tokens by kind, model, cost: see package usage); the store indexes the
// rows that have it.
const UsageKey = "tokens"

// Errors callers tell apart.
var (
	// ErrSchemaTooNew means the database was written by a newer version.
	ErrSchemaTooNew = errors.New("database schema is newer than this program understands")
	// ErrNotFound means the requested session or object does not exist.
	ErrNotFound = errors.New("not found")
)
