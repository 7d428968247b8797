package usage

import "testing"

func TestPrices_Lookup(t *testing.T) {
	p := DefaultPrices()
	for model, want := range map[string]string{
		"claude-sonnet-4-5-20250929":          "claude-sonnet-4-5-20250929",
		"claude-sonnet-4-5-20250929[1m]":      "claude-sonnet-4-5-20250929",
		"anthropic/claude-haiku-4-5":          "claude-haiku-4-5",
		"claude-opus-4-5-20251101":            "claude-opus-4-5-20251101",
		"claude-opus-4-5-20991231":            "claude-opus-4-5", // a later snapshot of a model the table names undated
		"gpt-5-codex":                         "gpt-5-codex",
		"openai/gpt-5.1-codex-mini":           "gpt-5.1-codex-mini",
		"gemini-2.5-pro":                      "gemini-2.5-pro",
		"gemini-2.5-pro-preview-06-05":        "gemini-2.5-pro",
		"models/gemini-2.5-flash":             "gemini-2.5-flash",
		"gemini-2.5-flash-lite-preview-09-25": "gemini-2.5-flash-lite",
		// Other models, not priced as a model whose name they start with.
		"gpt-4o-mini":      "",
		"gpt-4.1-nano":     "",
		"o3-mini":          "",
		"o3-pro":           "",
		"gpt-5-codex-mini": "",
		"claude-sonnet-5":  "",
		"<synthetic>":      "",
		"":                 "",
	} {
		_, got, ok := p.Lookup(model)
		if got != want || ok != (want != "") {
			t.Errorf("Lookup(%q) = %q, %v; want %q", model, got, ok, want)
		}
	}
}

// TestPrice_Cost checks a call's cost against figures worked by hand from
// the table's rates, the long-context tier included.
func TestPrice_Cost(t *testing.T) {
	p := DefaultPrices()
	sonnet, _, _ := p.Lookup("claude-sonnet-4-5-20250929")
	// $3/M in, $15/M out, $3.75/M cache write, $0.30/M cache read.
	if got, want := sonnet.Cost(Tokens{Input: 1000, Output: 2000, CacheCreation: 3000, CacheRead: 4000}), 0.003+0.03+0.01125+0.0012; !near(got, want) {
		t.Errorf("sonnet: %v, want %v", got, want)
	}
	// Beyond 200k input tokens in one call: $6/M for the rest, as ccusage.
	if got, want := sonnet.Cost(Tokens{Input: 250000}), 200000*3e-6+50000*6e-6; !near(got, want) {
		t.Errorf("sonnet long context: %v, want %v", got, want)
	}
}

func near(a, b float64) bool { return a-b < 1e-12 && b-a < 1e-12 }
