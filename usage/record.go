package usage

import (
	"bytes"
	"encoding/json"
	"math"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// The key of a record's metadata that carries its usage, as the presets
// write it: one object, or an array of them (one per model), with
//
//	model                        the model's name
//	input, output, cacheCreation, cacheRead, reasoning   token counts
//	costUSD                      the agent's own cost, when it gives one
//	key                          the API call's own id (Claude: message id and request id)
//	scope                        set when the figures are a running total over the scope
//	                             (within the session; see Entry.Scope)
//	grows                        true when the scope's total never goes down (see Entry.Grows)
//	project                      the project (working directory) of the run
const MetadataKey = "tokens"

// wire is one usage object as stored. Counts are json.Number so that any
// JSON a row holds is read: fractions, negatives and numbers beyond int64
// are clamped and flagged, strings and objects are flagged and ignored.
type wire struct {
	Model         string          `json:"model"`
	Input         json.RawMessage `json:"input"`
	Output        json.RawMessage `json:"output"`
	CacheCreation json.RawMessage `json:"cacheCreation"`
	CacheRead     json.RawMessage `json:"cacheRead"`
	Reasoning     json.RawMessage `json:"reasoning"`
	CostUSD       json.RawMessage `json:"costUSD"`
	Key           string          `json:"key"`
	Scope         string          `json:"scope"`
	Grows         bool            `json:"grows"`
	Project       string          `json:"project"`
}

// FromRecord returns the usage entries r carries, none if it carries none.
// A malformed usage value gives a flagged entry (or none), never an error:
// stored data is whatever some input made it, and reports must read it.
func FromRecord(r *vibekit.Record) []Entry {
	if len(r.Metadata) == 0 || !bytes.Contains(r.Metadata, []byte(`"`+MetadataKey+`"`)) {
		return nil
	}
	var meta map[string]json.RawMessage
	if json.Unmarshal(r.Metadata, &meta) != nil {
		return nil
	}
	raw := bytes.TrimSpace(meta[MetadataKey])
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	var list []json.RawMessage
	if raw[0] == '[' {
		if json.Unmarshal(raw, &list) != nil {
			return nil
		}
	} else {
		list = []json.RawMessage{raw}
	}
	out := make([]Entry, 0, len(list))
	for _, v := range list {
		var w wire
		if json.Unmarshal(v, &w) != nil {
			out = append(out, Entry{Agent: r.AgentType, Session: r.SessionID, Time: r.Time(), Flagged: true})
			continue
		}
		e := Entry{Agent: r.AgentType, Session: r.SessionID, Project: w.Project, Time: r.Time(),
			Model: w.Model, Key: w.Key, Scope: w.Scope, Grows: w.Grows}
		var f [5]bool
		e.Tokens = Tokens{
			Input: count(w.Input, &f[0]), Output: count(w.Output, &f[1]), CacheCreation: count(w.CacheCreation, &f[2]),
			CacheRead: count(w.CacheRead, &f[3]), Reasoning: count(w.Reasoning, &f[4]),
		}
		e.Flagged = f[0] || f[1] || f[2] || f[3] || f[4]
		if len(w.CostUSD) > 0 && !bytes.Equal(w.CostUSD, []byte("null")) {
			var c float64
			if json.Unmarshal(w.CostUSD, &c) == nil && c >= 0 && !math.IsInf(c, 0) {
				e.Cost, e.HasCost = c, true
			} else {
				e.Flagged = true
			}
		}
		out = append(out, e)
	}
	return out
}

// count reads a token count: a whole number from 0 to the int64 maximum.
// Anything else is clamped into that range (or 0) and flagged.
func count(raw json.RawMessage, flagged *bool) int64 {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		*flagged = true
		return 0
	}
	if i, err := n.Int64(); err == nil && i >= 0 {
		return i
	}
	*flagged = true
	f, err := n.Float64()
	switch {
	case err != nil && math.IsInf(f, 1), f >= math.MaxInt64:
		return math.MaxInt64
	case err != nil, f <= 0, math.IsNaN(f):
		return 0
	}
	return int64(f)
}

// InRange is a convenience for reports over a time range: it keeps the items
// whose time is in [from, to); zero bounds are open.
func InRange(items []Item, from, to time.Time) []Item {
	out := items[:0:0]
	for _, it := range items {
		if (!from.IsZero() && it.Time.Before(from)) || (!to.IsZero() && !it.Time.Before(to)) {
			continue
		}
		out = append(out, it)
	}
	return out
}
