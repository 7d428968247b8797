package usage

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
)

//go:embed prices.json
var defaultPrices []byte

// Price is what one token of each kind costs one model, in US dollars, in
// LiteLLM's field names, so that a user's price file can be a piece of
// LiteLLM's own table.
type Price struct {
	Input         float64 `json:"input_cost_per_token"`
	Output        float64 `json:"output_cost_per_token"`
	CacheCreation float64 `json:"cache_creation_input_token_cost,omitempty"`
	CacheRead     float64 `json:"cache_read_input_token_cost,omitempty"`
	// The long-context tier: tokens of one kind beyond the first 200,000 in
	// one API call, as ccusage (the reference of the reports) prices them.
	InputAbove         float64 `json:"input_cost_per_token_above_200k_tokens,omitempty"`
	OutputAbove        float64 `json:"output_cost_per_token_above_200k_tokens,omitempty"`
	CacheCreationAbove float64 `json:"cache_creation_input_token_cost_above_200k_tokens,omitempty"`
	CacheReadAbove     float64 `json:"cache_read_input_token_cost_above_200k_tokens,omitempty"`
	Source             string  `json:"source,omitempty"`
}

// tierThreshold is where the long-context rates start, per kind and call.
const tierThreshold = 200_000

// Cost is the price of one API call's tokens. Reasoning tokens are part of
// the output the agents report and are not charged again.
func (p Price) Cost(t Tokens) float64 {
	return tiered(t.Input, p.Input, p.InputAbove) +
		tiered(t.Output, p.Output, p.OutputAbove) +
		tiered(t.CacheCreation, p.CacheCreation, p.CacheCreationAbove) +
		tiered(t.CacheRead, p.CacheRead, p.CacheReadAbove)
}

func tiered(n int64, base, above float64) float64 {
	if n <= 0 {
		return 0
	}
	if n > tierThreshold && above > 0 {
		return float64(tierThreshold)*base + float64(n-tierThreshold)*above
	}
	return float64(n) * base
}

// Prices is a price table: the shipped one, or it overridden by a user's file.
type Prices struct {
	Source string           `json:"source"`
	Date   string           `json:"date"`
	Models map[string]Price `json:"models"`
}

// DefaultPrices returns the table shipped with the program, with its source
// and the date it was taken.
func DefaultPrices() *Prices {
	p, err := parsePrices(defaultPrices)
	if err != nil {
		panic("usage: the shipped price table does not parse: " + err.Error())
	}
	return p
}

// LoadPrices returns the shipped table with the models of the JSON file at
// path added or replaced. The file is either a table like the shipped one
// ({"models": {...}}) or a bare map of model names to prices, as LiteLLM's
// model_prices_and_context_window.json is.
func LoadPrices(path string) (*Prices, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read price file: %w", err)
	}
	user, err := parsePrices(b)
	if err != nil {
		return nil, fmt.Errorf("price file %s: %w", path, err)
	}
	p := DefaultPrices()
	for name, price := range user.Models {
		if price.Source == "" {
			price.Source = path
		}
		p.Models[name] = price
	}
	p.Source = path + ", then " + p.Source
	return p, nil
}

func parsePrices(b []byte) (*Prices, error) {
	var p Prices
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, err
	}
	if p.Models == nil {
		// A bare map: keep the entries that price tokens.
		var bare map[string]json.RawMessage
		if err := json.Unmarshal(b, &bare); err != nil {
			return nil, err
		}
		p.Models = map[string]Price{}
		for name, raw := range bare {
			var price Price
			if json.Unmarshal(raw, &price) == nil && (price.Input > 0 || price.Output > 0) {
				p.Models[name] = price
			}
		}
	}
	for name, price := range p.Models {
		for _, f := range []float64{price.Input, price.Output, price.CacheCreation, price.CacheRead,
			price.InputAbove, price.OutputAbove, price.CacheCreationAbove, price.CacheReadAbove} {
			if f < 0 {
				return nil, fmt.Errorf("model %q: a negative price", name)
			}
		}
	}
	return &p, nil
}

var (
	// A provider's prefix on a model name: anthropic/, openai/, models/ ...
	providerPrefix = regexp.MustCompile(`^(?:[a-z0-9_-]+/)+`)
	// Claude Code names a model's 1M-context variant "model[1m]".
	contextSuffix = regexp.MustCompile(`\[[0-9a-z]+\]$`)
)

// Lookup returns the price of model and the table's name for it. A name is
// matched as it is, then without a provider prefix or a context-window
// suffix, then without a snapshot's date (a dated snapshot of an undated
// entry). A model it cannot match is unpriced: ok is false.
func (p *Prices) Lookup(model string) (price Price, name string, ok bool) {
	m := strings.ToLower(strings.TrimSpace(model))
	if m == "" {
		return Price{}, "", false
	}
	for _, c := range []string{m, contextSuffix.ReplaceAllString(providerPrefix.ReplaceAllString(m, ""), "")} {
		if price, ok := p.Models[c]; ok {
			return price, c, true
		}
	}
	m = contextSuffix.ReplaceAllString(providerPrefix.ReplaceAllString(m, ""), "")
	// A dated snapshot of a model the table names undated
	// (claude-sonnet-4-5-20250929, gemini-2.5-pro-preview-06-05): its
	// name without the date. Nothing else is matched by a prefix:
	// gpt-4o-mini is not gpt-4o, nor o3-pro o3.
	if d := dateSuffix.FindStringIndex(m); d != nil {
		if price, ok := p.Models[m[:d[0]]]; ok {
			return price, m[:d[0]], true
		}
		if i := strings.Index(m, "-preview"); i > 0 {
			if price, ok := p.Models[m[:i]]; ok {
				return price, m[:i], true
			}
		}
	}
	return Price{}, "", false
}

// dateSuffix is a snapshot's date at the end of a model name: -20250929,
// -2025-09-29, @20250929, -09-29 (after -preview).
var dateSuffix = regexp.MustCompile(`(?:[-@](?:20\d{6}|20\d{2}-\d{2}-\d{2}|\d{2}-\d{2}))$`)
