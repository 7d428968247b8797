package usage

import (
	"context"
	"encoding/json"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// ScanFunc reads the records a filter selects, in time order: a store's
// Scan, or one over a database and its archives.
type ScanFunc func(ctx context.Context, f vibekit.Filter, fn func(*vibekit.Record) error) error

// Collect counts the usage of the records f selects in a ledger priced with
// prices (the shipped table if nil) and returns its items. A record's usage
// that names no project takes its session's: the working directory its
// start row names (an agent's stream carries it there only).
func Collect(ctx context.Context, scan ScanFunc, prices *Prices, f vibekit.Filter) ([]Item, error) {
	projects := map[string]string{}
	sf := f
	sf.EventTypes = []vibekit.EventType{vibekit.EventStart}
	sf.HasMetadata = []string{"cwd"}
	err := scan(ctx, sf, func(r *vibekit.Record) error {
		var m struct {
			Cwd string `json:"cwd"`
		}
		if json.Unmarshal(r.Metadata, &m) == nil && m.Cwd != "" {
			projects[r.AgentType+"\x00"+r.SessionID] = m.Cwd
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	l := NewLedger(prices)
	f.MetadataOnly = MetadataKey
	err = scan(ctx, f, func(r *vibekit.Record) error {
		for _, e := range FromRecord(r) {
			if e.Project == "" {
				e.Project = projects[r.AgentType+"\x00"+r.SessionID]
			}
			l.Add(e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if unnamed := l.Unnamed(); len(unnamed) > 0 && len(unnamed) <= 1000 {
		// Usage that names no model (a Codex stream; a rollout read on after
		// a restart, past its turn_context): the session's rows may name it.
		mf := vibekit.Filter{SessionIDs: unnamed, MetadataOnly: "model"}
		err = scan(ctx, mf, func(r *vibekit.Record) error {
			var m struct {
				Model string `json:"model"`
			}
			if json.Unmarshal(r.Metadata, &m) == nil {
				l.NameModel(r.AgentType, r.SessionID, m.Model)
			}
			return nil
		})
	}
	return l.Items(), err
}

// Summarize puts what items say each session used into its summary: the
// cost (the agent's own, else computed; unpriced models add nothing), input
// tokens (cached ones included) and output tokens. A session with no usage
// items keeps what it had. The summaries' other figures (turns, tool
// calls) are the store's.
func Summarize(list []vibekit.SessionSummary, items []Item) {
	type key struct{ agent, session string }
	sums := map[key]*vibekit.AgentUsage{}
	for i := range items {
		it := &items[i]
		k := key{it.Agent, it.Session}
		u := sums[k]
		if u == nil {
			u = &vibekit.AgentUsage{}
			sums[k] = u
		}
		addUsage(u, it)
	}
	for i := range list {
		if u := sums[key{list[i].AgentType, list[i].SessionID}]; u != nil {
			list[i].CostUSD, list[i].InputTokens, list[i].OutputTokens = u.CostUSD, u.InputTokens, u.OutputTokens
			list[i].CostPartial = u.CostPartial
		}
	}
}

// Total puts what items used between from and to (zero: open) into u, as
// Summarize does for a session, if any item is in range.
func Total(u *vibekit.AgentUsage, items []Item, from, to time.Time) {
	var t vibekit.AgentUsage
	n := 0
	for i := range items {
		it := &items[i]
		if (!from.IsZero() && it.Time.Before(from)) || (!to.IsZero() && it.Time.After(to)) {
			continue
		}
		addUsage(&t, it)
		n++
	}
	if n > 0 {
		u.CostUSD, u.InputTokens, u.OutputTokens, u.CostPartial = t.CostUSD, t.InputTokens, t.OutputTokens, t.CostPartial
	}
}

func addUsage(u *vibekit.AgentUsage, it *Item) {
	if it.Source != CostUnpriced {
		u.CostUSD += it.Cost
	} else {
		u.CostPartial = true
	}
	u.InputTokens = sat(u.InputTokens, sat(sat(it.Input, it.CacheCreation), it.CacheRead))
	u.OutputTokens = sat(u.OutputTokens, it.Output)
}
