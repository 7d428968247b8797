package usage

import (
	"fmt"
	"sort"
	"time"
)

// Period is how a report groups items.
type Period string

// The reports of `vibekit telemetry usage`.
const (
	Daily   Period = "daily"
	Weekly  Period = "weekly"
	Monthly Period = "monthly"
	Session Period = "session"
	Blocks  Period = "blocks" // the 5-hour billing windows
)

// ParsePeriod returns the period named s.
func ParsePeriod(s string) (Period, error) {
	switch p := Period(s); p {
	case Daily, Weekly, Monthly, Session, Blocks:
		return p, nil
	}
	return "", fmt.Errorf("unknown report %q: want daily, weekly, monthly, session or blocks", s)
}

// BlockLength is the length of a billing window.
const BlockLength = 5 * time.Hour

// Options shape a report.
type Options struct {
	Period   Period
	Location *time.Location // the time zone of days, weeks and months; nil means UTC
	// WeekStart is the first day of a week (weekly reports).
	WeekStart time.Weekday
	// By splits every row further: "agent", "model" or "project".
	By string
	// Now tells which block is still active; zero means time.Now.
	Now time.Time
}

// Row is one line of a report: what the items of one period (or session or
// block) used, by kind, and what it cost, by source.
type Row struct {
	Date      string    `json:"date,omitempty"`  // daily
	Week      string    `json:"week,omitempty"`  // weekly: the week's first day
	Month     string    `json:"month,omitempty"` // monthly
	SessionID string    `json:"sessionId,omitempty"`
	Start     time.Time `json:"startTime,omitzero"` // session and blocks
	End       time.Time `json:"endTime,omitzero"`   // blocks: Start + 5h
	Last      time.Time `json:"lastActivity,omitzero"`
	Active    *bool     `json:"isActive,omitempty"` // blocks
	Agent     string    `json:"agent,omitempty"`
	Project   string    `json:"project,omitempty"`
	Model     string    `json:"model,omitempty"` // with By "model"
	Tokens
	TotalTokens int64 `json:"totalTokens"`
	// TotalCost is AgentCost + ComputedCost; the cost of unpriced models is
	// not known and not in it.
	TotalCost    float64     `json:"totalCost"`
	AgentCost    float64     `json:"agentCost"`
	ComputedCost float64     `json:"computedCost"`
	Unpriced     []string    `json:"unpricedModels,omitempty"`
	Models       []string    `json:"modelsUsed"`
	Breakdown    []ModelUsed `json:"modelBreakdowns"`
	Flagged      bool        `json:"flagged,omitempty"` // a count was clamped
}

// ModelUsed is one model's share of a row.
type ModelUsed struct {
	Model string `json:"modelName"`
	Tokens
	Cost   float64    `json:"cost"`
	Source CostSource `json:"costSource"` // agent, computed, unpriced, or mixed
}

// Report groups items into rows, oldest first (sessions by their first
// item). It sorts items by time, in place.
func Report(items []Item, o Options) []Row {
	loc := o.Location
	if loc == nil {
		loc = time.UTC
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	sorted := items
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Time.Before(sorted[j].Time) })

	type group struct {
		row    *Row
		models map[string]*ModelUsed
	}
	var order []*group
	groups := map[string]*group{}
	var block struct {
		start, last time.Time
		n           int
	}
	for _, it := range sorted {
		t := it.Time.In(loc)
		var key string
		var r Row
		switch o.Period {
		case Daily:
			r.Date = t.Format(time.DateOnly)
			key = r.Date
		case Weekly:
			d := (int(t.Weekday()) - int(o.WeekStart) + 7) % 7
			r.Week = t.AddDate(0, 0, -d).Format(time.DateOnly)
			key = r.Week
		case Monthly:
			r.Month = t.Format("2006-01")
			key = r.Month
		case Session:
			r.SessionID, r.Agent, r.Project = it.Session, it.Agent, it.Project
			key = it.Agent + "\x00" + it.Session
		case Blocks:
			// A block runs to its start + 5 h inclusive, as ccusage's do; a
			// call after that, or more than 5 h after the last, starts the next.
			if block.n == 0 || it.Time.After(block.start.Add(BlockLength)) || it.Time.Sub(block.last) > BlockLength {
				block.start, block.n = it.Time.UTC().Truncate(time.Hour), block.n+1
			}
			block.last = it.Time
			r.Start, r.End = block.start.In(loc), block.start.Add(BlockLength).In(loc)
			key = fmt.Sprint(block.n)
		}
		switch o.By {
		case "agent":
			r.Agent, key = it.Agent, key+"\x00"+it.Agent
		case "model":
			r.Model, key = it.Model, key+"\x00"+it.Model
		case "project":
			r.Project, key = it.Project, key+"\x00"+it.Project
		}
		g := groups[key]
		if g == nil {
			r.Start = firstNonZero(r.Start, t)
			g = &group{row: &r, models: map[string]*ModelUsed{}}
			groups[key] = g
			order = append(order, g)
		}
		row := g.row
		row.Tokens = row.Tokens.add(it.Tokens)
		row.Last = t
		row.Flagged = row.Flagged || it.Flagged
		m := g.models[it.Model]
		if m == nil {
			m = &ModelUsed{Model: it.Model, Source: it.Source}
			g.models[it.Model] = m
			row.Models = append(row.Models, it.Model)
		} else if m.Source != it.Source {
			m.Source = "mixed"
		}
		m.Tokens = m.Tokens.add(it.Tokens)
		m.Cost += it.Cost
		switch it.Source {
		case CostAgent:
			row.AgentCost += it.Cost
		case CostComputed:
			row.ComputedCost += it.Cost
		case CostUnpriced:
			if !contains(row.Unpriced, it.Model) {
				row.Unpriced = append(row.Unpriced, it.Model)
			}
		}
	}
	rows := make([]Row, 0, len(order))
	for _, g := range order {
		r := *g.row
		r.TotalTokens = r.Tokens.Total()
		r.TotalCost = r.AgentCost + r.ComputedCost
		sort.Strings(r.Models)
		for _, name := range r.Models {
			r.Breakdown = append(r.Breakdown, *g.models[name])
		}
		if o.Period == Blocks {
			active := now.Before(r.End) && now.Sub(r.Last) < BlockLength
			r.Active = &active
		} else if o.Period != Session {
			r.Start = time.Time{}
		}
		rows = append(rows, r)
	}
	return rows
}

func firstNonZero(a, b time.Time) time.Time {
	if a.IsZero() {
		return b
	}
	return a
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Totals adds up rows.
func Totals(rows []Row) Row {
	var t Row
	for _, r := range rows {
		t.Tokens = t.Tokens.add(r.Tokens)
		t.AgentCost += r.AgentCost
		t.ComputedCost += r.ComputedCost
		t.Flagged = t.Flagged || r.Flagged
		for _, m := range r.Unpriced {
			if !contains(t.Unpriced, m) {
				t.Unpriced = append(t.Unpriced, m)
			}
		}
	}
	t.TotalTokens = t.Tokens.Total()
	t.TotalCost = t.AgentCost + t.ComputedCost
	return t
}
