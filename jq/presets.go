package jq

import (
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// The presets are map programs for agents' own output formats, shipped in
// the binary so that users can print, read and copy them.
//
//go:embed presets/*.jq
var presetFS embed.FS

// Preset returns the source of the preset map program called name.
func Preset(name string) (src string, ok bool) {
	if name == "" || strings.ContainsAny(name, "/.") {
		return "", false
	}
	b, err := presetFS.ReadFile("presets/" + name + ".jq")
	if err != nil {
		return "", false
	}
	return string(b), true
}

// CompilePreset compiles the preset called name as a map program. Presets
// end on every input (they only walk it), so they run without the time
// limit, which costs on every step.
func CompilePreset(name string) (*Program, error) {
	src, ok := Preset(name)
	if !ok {
		return nil, fmt.Errorf("no preset %q (presets: %s)", name, strings.Join(PresetNames(), ", "))
	}
	p, err := compile(src, false, MapVars)
	if err != nil {
		return nil, fmt.Errorf("preset %s: %w", name, err)
	}
	p.Timeout = -1
	return p, nil
}

// PresetNames lists the presets, sorted.
func PresetNames() []string {
	entries, _ := fs.ReadDir(presetFS, "presets")
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".jq"); ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}
