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
const MetadataKey = vibekit.UsageKey

// FromRecord returns the usage entries r carries, none if it carries none.
// A malformed usage value gives a flagged entry (or none), never an error:
// stored data is whatever some input made it, and reports must read it.
// Values are counted as they are: fractions, negatives and numbers beyond
// int64 are clamped and flagged, strings and objects are flagged and ignored.
func FromRecord(r *vibekit.Record) []Entry {
	if len(r.Metadata) == 0 || !bytes.Contains(r.Metadata, []byte(`"`+MetadataKey+`"`)) {
		return nil
	}
	v, err := vibekit.DecodeValue(r.Metadata)
	if err != nil {
		return nil
	}
	meta, _ := v.(map[string]any)
	var list []any
	switch t := meta[MetadataKey].(type) {
	case nil:
		return nil
	case []any:
		list = t
	default:
		list = []any{t}
	}
	out := make([]Entry, 0, len(list))
	for _, x := range list {
		e := Entry{Agent: r.AgentType, Session: r.SessionID, Time: r.Time()}
		w, ok := x.(map[string]any)
		if !ok {
			e.Flagged = true
			out = append(out, e)
			continue
		}
		e.Model, _ = w["model"].(string)
		e.Key, _ = w["key"].(string)
		e.Scope, _ = w["scope"].(string)
		e.Project, _ = w["project"].(string)
		e.Grows, _ = w["grows"].(bool)
		e.Tokens = Tokens{
			Input: count(w["input"], &e.Flagged), Output: count(w["output"], &e.Flagged),
			CacheCreation: count(w["cacheCreation"], &e.Flagged), CacheRead: count(w["cacheRead"], &e.Flagged),
			Reasoning: count(w["reasoning"], &e.Flagged),
		}
		switch c := w["costUSD"].(type) {
		case nil:
		case int:
			e.Cost, e.HasCost = float64(c), c >= 0
			e.Flagged = e.Flagged || c < 0
		case float64:
			if c >= 0 && !math.IsInf(c, 0) && !math.IsNaN(c) {
				e.Cost, e.HasCost = c, true
			} else {
				e.Flagged = true
			}
		default:
			e.Flagged = true
		}
		out = append(out, e)
	}
	return out
}

// count reads a token count: a whole number from 0 to the int64 maximum.
// Anything else is clamped into that range (or 0) and flagged.
func count(v any, flagged *bool) int64 {
	switch n := v.(type) {
	case nil:
		return 0
	case int:
		if n >= 0 {
			return int64(n)
		}
	case float64:
		*flagged = true
		switch {
		case n >= math.MaxInt64:
			return math.MaxInt64
		case n > 0:
			return int64(n)
		}
		return 0
	case json.Number: // an integer beyond int64
		*flagged = true
		if len(n) > 0 && n[0] != '-' {
			return math.MaxInt64
		}
		return 0
	}
	*flagged = true
	return 0
}

// InRange keeps, in place, the items whose time is in [from, to); zero
// bounds are open.
func InRange(items []Item, from, to time.Time) []Item {
	out := items[:0]
	for _, it := range items {
		if (!from.IsZero() && it.Time.Before(from)) || (!to.IsZero() && !it.Time.Before(to)) {
			continue
		}
		out = append(out, it)
	}
	return out
}
