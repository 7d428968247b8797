package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/peterbourgon/ff/v3"
)

// DefaultDB is the guide's default database path.
const DefaultDB = ".vibekit/telemetry.db"

// settingNames are every setting a config file may hold, across both
// programs; each command takes the ones it has flags for.
var settingNames = map[string]bool{
	"db": true, "stream-batch-size": true, "stream-flush-interval-ms": true, "enable-indexes": true,
	"max-line-bytes": true, "session": true, "agent": true, "mode": true, "prompt": true,
	"sandbox-id": true, "repo-url": true, "quiet": true, "stats": true, "jq-timeout": true,
	"timeout": true, "user-key": true, "prices": true, "timezone": true, "spreadsheet-safe": true,
	"max-size-mb": true, "prune-days": true, "max-archive-mb": true,
	"follow": true, "fifo": true, "from-end": true, "poll": true, "poll-interval": true, "rotate-wait": true,
	// --print-preset is an action, not a setting: no config key.
	"preset": true, "map": true, "transcripts": true, "redact": true, "redact-pattern": true, "hash-field": true, "hash-key": true,
}

// ffOptions gives flags > VIBEKIT_* environment > config file (--config or
// VIBEKIT_CONFIG), as STYLE.md asks.
func ffOptions() []ff.Option {
	return []ff.Option{
		ff.WithEnvVarPrefix("VIBEKIT"),
		ff.WithConfigFileFlag("config"),
		ff.WithConfigFileParser(parseConfig),
		// Settings of the other program are skipped; parseConfig rejects
		// names that no program knows.
		ff.WithIgnoreUndefined(true),
	}
}

// addConfigFlag defines --config on fs.
func addConfigFlag(fs *flag.FlagSet) {
	fs.String("config", "", "read settings from this JSON `file` (also VIBEKIT_CONFIG)")
}

// parseConfig reads a JSON object of settings. Keys may be the flag names
// (stream-batch-size) or the guide's LocalStoreConfig names (streamBatchSize,
// path), at the top level or under "localStore".
func parseConfig(r io.Reader, set func(name, value string) error) error {
	var doc map[string]json.RawMessage
	dec := json.NewDecoder(r)
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return usageErrorf("config file: not a JSON object: %w", err)
	}
	if inner, ok := doc["localStore"]; ok {
		delete(doc, "localStore")
		var m map[string]json.RawMessage
		if err := json.Unmarshal(inner, &m); err != nil {
			return usageErrorf("config file: localStore: %w", err)
		}
		for k, v := range m {
			doc[k] = v
		}
	}
	for key, raw := range doc {
		name := settingName(key)
		if name == "" {
			continue // isEnabled and the like: always true for a tool you run
		}
		if !settingNames[name] {
			return usageErrorf("config file: unknown setting %q", key)
		}
		var v any
		d := json.NewDecoder(strings.NewReader(string(raw)))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			return usageErrorf("config file: %s: %w", key, err)
		}
		values := []any{v}
		if list, ok := v.([]any); ok {
			values = list
		}
		for _, item := range values {
			switch item.(type) {
			case map[string]any, []any, nil:
				return usageErrorf("config file: %s: want a string, number or boolean", key)
			}
			if err := set(name, fmt.Sprint(item)); err != nil {
				return usageErrorf("config file: %s: %w", key, err)
			}
		}
	}
	return nil
}

// settingName maps a config key to its flag name: camelCase to kebab-case,
// the guide's "path" to "db". It returns "" for keys that have no meaning here.
func settingName(key string) string {
	switch key {
	case "path":
		return "db"
	case "isEnabled":
		return ""
	}
	var b strings.Builder
	prev := rune(0)
	for _, r := range key {
		if unicode.IsUpper(r) {
			if unicode.IsLower(prev) || unicode.IsDigit(prev) {
				b.WriteByte('-') // maxSizeMB -> max-size-mb
			}
			prev, r = r, unicode.ToLower(r)
		} else {
			prev = r
		}
		b.WriteRune(r)
	}
	return strings.ReplaceAll(b.String(), "_", "-")
}
