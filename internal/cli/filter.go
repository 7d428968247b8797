package cli

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// stringList is a flag that may repeat; each use may also hold a
// comma-separated list.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// repeated is a flag that may repeat, each use one value (commas included).
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, " ") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// filterFlags are the record filters that dump and the other readers share.
type filterFlags struct {
	sessions, agents, types, modes stringList
	sources                        pathList
	from, to                       string
	limit, offset                  int
	order                          string
	contains                       string
	metadata                       repeated
}

// registerSearch adds --contains and --metadata.
func (f *filterFlags) registerSearch(fs *flag.FlagSet) {
	fs.StringVar(&f.contains, "contains", "", "only records whose prompt or streamData contains this `text` (case-sensitive)")
	fs.Var(&f.metadata, "metadata", "only records whose metadata field `key=value` matches; dotted keys reach nested values (user.id=42); repeatable")
}

func (f *filterFlags) register(fs *flag.FlagSet, paging bool) {
	fs.Var(&f.sessions, "session", "only this session `id` (repeatable)")
	fs.Var(&f.agents, "agent", "only this agent `type` (repeatable)")
	fs.Var(&f.types, "type", "only this event `type`: start, stream, end, error (repeatable)")
	fs.Var(&f.modes, "mode", "only this `mode` (repeatable)")
	fs.Var(&f.sources, "source", "only rows read from this `source`: a followed file's or FIFO's path, or stdin (repeatable)")
	fs.StringVar(&f.from, "from", "", "from this `time` on: 2024-01-31, RFC 3339, Unix ms, yesterday, \"1 hour ago\", \"last week\", 7d")
	fs.StringVar(&f.to, "to", "", "up to this `time` (same forms as --from)")
	if paging {
		fs.IntVar(&f.limit, "limit", 0, "print at most `n` records (0: all)")
		fs.IntVar(&f.offset, "offset", 0, "skip the first `n` records")
		fs.StringVar(&f.order, "order", "asc", "`order` by time: asc (oldest first) or desc")
	}
}

// filter builds the query filter, checking every value.
func (f *filterFlags) filter(now time.Time) (vibekit.Filter, error) {
	out := vibekit.Filter{SessionIDs: f.sessions, AgentTypes: f.agents, Modes: f.modes, Limit: f.limit, Offset: f.offset, Contains: f.contains}
	for _, kv := range f.metadata {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return out, usageErrorf("--metadata %q: want key=value", kv)
		}
		if out.Metadata == nil {
			out.Metadata = map[string]string{}
		}
		out.Metadata[strings.TrimSpace(k)] = v
	}
	for _, s := range f.sources {
		// Files are recorded by absolute path: a relative one names the same.
		out.Sources = append(out.Sources, s)
		if abs, err := filepath.Abs(s); err == nil && abs != s {
			out.Sources = append(out.Sources, abs)
		}
	}
	for _, t := range f.types {
		et, err := vibekit.ParseEventType(t)
		if err != nil {
			return out, usageErrorf("--type: %v", err)
		}
		out.EventTypes = append(out.EventTypes, et)
	}
	var err error
	if f.from != "" {
		if out.From, err = vibekit.ParseTime(f.from, now); err != nil {
			return out, usageErrorf("--from: %v", err)
		}
	}
	if f.to != "" {
		if out.To, err = vibekit.ParseTime(f.to, now); err != nil {
			return out, usageErrorf("--to: %v", err)
		}
	}
	if !out.From.IsZero() && !out.To.IsZero() && out.To.Before(out.From) {
		return out, usageErrorf("--to %s is before --from %s", out.To.Format(time.RFC3339), out.From.Format(time.RFC3339))
	}
	if f.limit < 0 || f.offset < 0 {
		return out, usageErrorf("--limit and --offset must not be negative")
	}
	if out.Order, err = vibekit.ParseOrder(f.order); err != nil {
		return out, usageErrorf("--order: %v", err)
	}
	return out, nil
}

// errf wraps an error with what was being done.
func errf(what string, err error) error { return fmt.Errorf("%s: %w", what, err) }
