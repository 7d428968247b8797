// Package usage accounts for what agent runs used and cost: tokens by kind
// and model, each API call counted once (by the agent's own ids) and each
// running total the agent reports counted by its increases, priced with the
// agent's own figure where it gives one and from a dated table otherwise.
package usage

import (
	"hash/fnv"
	"math"
	"time"
)

// Tokens are token counts by kind. Input excludes the cached kinds, as
// Anthropic reports it; Reasoning is the part of Output spent on reasoning,
// as OpenAI and Gemini report it.
type Tokens struct {
	Input         int64 `json:"inputTokens"`
	Output        int64 `json:"outputTokens"`
	CacheCreation int64 `json:"cacheCreationTokens"`
	CacheRead     int64 `json:"cacheReadTokens"`
	Reasoning     int64 `json:"reasoningTokens"`
}

// Total is every token, once: reasoning is inside output.
func (t Tokens) Total() int64 {
	return sat(sat(sat(t.Input, t.Output), t.CacheCreation), t.CacheRead)
}

func (t Tokens) add(u Tokens) Tokens {
	return Tokens{sat(t.Input, u.Input), sat(t.Output, u.Output), sat(t.CacheCreation, u.CacheCreation),
		sat(t.CacheRead, u.CacheRead), sat(t.Reasoning, u.Reasoning)}
}

// less reports whether any count of t is below u's: a running total that
// went down was reset (a new process, /clear).
func (t Tokens) less(u Tokens) bool {
	return t.Input < u.Input || t.Output < u.Output || t.CacheCreation < u.CacheCreation ||
		t.CacheRead < u.CacheRead || t.Reasoning < u.Reasoning
}

// max is the higher of each count.
func (t Tokens) max(u Tokens) Tokens {
	return Tokens{max(t.Input, u.Input), max(t.Output, u.Output), max(t.CacheCreation, u.CacheCreation),
		max(t.CacheRead, u.CacheRead), max(t.Reasoning, u.Reasoning)}
}

func (t Tokens) sub(u Tokens) Tokens {
	return Tokens{t.Input - u.Input, t.Output - u.Output, t.CacheCreation - u.CacheCreation,
		t.CacheRead - u.CacheRead, t.Reasoning - u.Reasoning}
}

// sat adds without wrapping: a hostile count saturates at the int64 maximum.
func sat(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// CostSource says where a cost comes from.
type CostSource string

// The sources of a cost. An unpriced entry's cost is unknown, not zero.
const (
	CostAgent    CostSource = "agent"    // the agent reported it
	CostComputed CostSource = "computed" // from the price table
	CostUnpriced CostSource = "unpriced" // a model the table does not have
)

// Entry is one piece of usage as an agent reported it: one API call, or a
// running total.
type Entry struct {
	Agent   string
	Session string
	Project string
	Time    time.Time
	Model   string
	Tokens  Tokens
	// Cost is the agent's own figure, when HasCost; else it is computed.
	Cost    float64
	HasCost bool
	// Key is the agent's own id of the API call (Claude: message id and
	// request id); an entry whose key was seen is counted once.
	Key string
	// Scope, when set, makes Tokens and Cost a running total over the scope
	// within the session (Claude: one model in one process's results; Codex:
	// a thread, whatever its model): what counts is its increase over the
	// scope's last total, or the whole total after a decrease (a reset).
	Scope string
	// Grows says the scope's total never goes down (Codex: a thread's,
	// across resumes): a lower figure is an earlier report of the same total
	// from another source (a transcript and a stream of the same thread), so
	// what counts is the increase of each count over its highest so far.
	Grows bool
	// Flagged says a count was out of range (negative, fractional, beyond
	// int64) and was clamped.
	Flagged bool
}

// Item is what the reports count of an Entry: the increase it brings,
// priced, and where its cost comes from. Its names are shared with the other
// items of the ledger: a report holds many.
type Item struct {
	Agent, Session, Project, Model string
	Time                           time.Time
	Tokens
	Cost    float64
	Source  CostSource
	Flagged bool
	// reported marks an agent's running total (the entry had a Scope).
	reported bool
}

// Ledger turns entries into items: it drops repeated API calls, takes running
// totals by their increases, and prices what the agent did not.
type Ledger struct {
	prices *Prices
	// seen holds a 64-bit hash of each API call's key: a collision among a
	// million calls has odds of about 1 in 10^7 (whereas the keys themselves
	// would be most of a report's memory).
	seen    map[uint64]struct{}
	strings map[string]string // one copy of each agent, session, model, ... name
	totals  map[scopeKey]running
	items   []Item
	// lookups caches the price of each model name seen.
	lookups map[string]lookup
	// reported holds the sessions with an agent's running total: their
	// per-call entries (a transcript of the same run) are not counted again.
	reported map[sessionKey]bool
	// models holds the first model each session's usage named.
	models map[sessionKey]string
}

type sessionKey struct{ agent, session string }

type lookup struct {
	price Price
	ok    bool
}

type scopeKey struct{ agent, session, scope string }

type running struct {
	tokens Tokens
	cost   float64
}

// NewLedger returns an empty ledger pricing with p (DefaultPrices if nil).
func NewLedger(p *Prices) *Ledger {
	if p == nil {
		p = DefaultPrices()
	}
	return &Ledger{prices: p, seen: map[uint64]struct{}{}, strings: map[string]string{}, totals: map[scopeKey]running{},
		reported: map[sessionKey]bool{}, lookups: map[string]lookup{}, models: map[sessionKey]string{}}
}

// Add counts e, in the order the agent wrote it.
func (l *Ledger) Add(e Entry) {
	if e.Key != "" {
		h := fnv.New64a()
		h.Write([]byte(e.Agent))
		h.Write([]byte{0})
		h.Write([]byte(e.Key))
		k := h.Sum64()
		if _, dup := l.seen[k]; dup {
			return
		}
		l.seen[k] = struct{}{}
		e.Key = "" // counted: the reports do not need it
	}
	e.Agent, e.Session, e.Project = l.intern(e.Agent), l.intern(e.Session), l.intern(e.Project)
	e.Model, e.Scope = l.intern(e.Model), l.intern(e.Scope)
	if e.Scope != "" {
		l.reported[sessionKey{e.Agent, e.Session}] = true
		k := scopeKey{e.Agent, e.Session, e.Scope}
		last, ok := l.totals[k]
		switch {
		case ok && e.Grows:
			high := running{last.tokens.max(e.Tokens), max(last.cost, e.Cost)}
			e.Tokens, e.Cost = high.tokens.sub(last.tokens), high.cost-last.cost
			l.totals[k] = high
		case ok && !e.Tokens.less(last.tokens) && e.Cost >= last.cost:
			l.totals[k] = running{e.Tokens, e.Cost}
			e.Tokens = e.Tokens.sub(last.tokens)
			e.Cost -= last.cost
		default:
			l.totals[k] = running{e.Tokens, e.Cost}
		}
	}
	if e.Tokens == (Tokens{}) && e.Cost == 0 && !e.Flagged {
		return // nothing used: Claude Code's "<synthetic>" error messages, say
	}
	item := Item{Agent: e.Agent, Session: e.Session, Project: e.Project, Model: e.Model, Time: e.Time,
		Tokens: e.Tokens, Cost: e.Cost, Flagged: e.Flagged, reported: e.Scope != ""}
	if e.Model != "" {
		if _, ok := l.models[sessionKey{e.Agent, e.Session}]; !ok {
			l.models[sessionKey{e.Agent, e.Session}] = e.Model
		}
	}
	switch {
	case e.HasCost:
		item.Source = CostAgent
	case e.Model == "":
		item.Source = costPending // priced by Items, with its session's model
	default:
		l.price(&item)
	}
	l.items = append(l.items, item)
}

// costPending marks an item whose model is not known yet: a Codex stream
// names none, but its session's rollout file, read by another run, does.
const costPending CostSource = ""

// price computes its cost from the table, or marks it unpriced.
func (l *Ledger) price(it *Item) {
	p, seen := l.lookups[it.Model]
	if !seen {
		p.price, _, p.ok = l.prices.Lookup(it.Model)
		l.lookups[it.Model] = p
	}
	if p.ok {
		it.Cost, it.Source = p.price.Cost(it.Tokens), CostComputed
	} else {
		it.Cost, it.Source = 0, CostUnpriced
	}
}

func (l *Ledger) intern(s string) string {
	if t, ok := l.strings[s]; ok {
		return t
	}
	l.strings[s] = s
	return s
}

// Unnamed lists the sessions whose usage names no model yet, so that the
// caller can look for one in the session's other rows (NameModel).
func (l *Ledger) Unnamed() []string {
	seen := map[string]bool{}
	var out []string
	for i := range l.items {
		it := &l.items[i]
		if it.Source == costPending && l.models[sessionKey{it.Agent, it.Session}] == "" && !seen[it.Session] {
			seen[it.Session] = true
			out = append(out, it.Session)
		}
	}
	return out
}

// NameModel gives a session's usage that names no model the model one of
// its other rows names (a Codex rollout's turn_context, read before a
// restart); a model its usage named wins.
func (l *Ledger) NameModel(agent, session, model string) {
	k := sessionKey{agent, session}
	if model != "" && l.models[k] == "" {
		l.models[k] = l.intern(model)
	}
}

// Items returns what the reports count, in the order it was added. A
// session with the agent's own running totals and with per-call entries (a
// transcript of the same run) is counted from one of the two: the one that
// holds more tokens, the agent's totals when they hold as many (their cost
// is the agent's own). A transcript holds more when only some of the
// session's runs were streamed (the rest resumed without vibekit-pipe). The
// slice is the ledger's own (no copy of what may be millions of items): the
// ledger takes no more entries after it.
func (l *Ledger) Items() []Item {
	type sums struct{ reported, perCall int64 }
	by := map[sessionKey]*sums{}
	for i := range l.items {
		it := &l.items[i]
		k := sessionKey{it.Agent, it.Session}
		if !l.reported[k] {
			continue
		}
		s := by[k]
		if s == nil {
			s = &sums{}
			by[k] = s
		}
		if it.reported {
			s.reported = sat(s.reported, it.Tokens.Total())
		} else {
			s.perCall = sat(s.perCall, it.Tokens.Total())
		}
	}
	out := l.items[:0]
	for _, it := range l.items {
		if s := by[sessionKey{it.Agent, it.Session}]; s != nil && it.reported == (s.perCall > s.reported) {
			continue // the other source stands for this session
		}
		if it.Source == costPending {
			// Usage that named no model takes the model its session named
			// anywhere, in any source (the Mapper fills it within one run).
			it.Model = l.models[sessionKey{it.Agent, it.Session}]
			l.price(&it)
		}
		out = append(out, it)
	}
	clear(l.items[len(out):])
	l.items = out
	return out
}
