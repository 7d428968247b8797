package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// usageLines is how many transcript lines the usage benchmark reads: the
// size issue 12's bar names, whatever -n is.
const usageLines = 200000

// usageBench times `vibekit telemetry usage daily` on Claude Code
// transcripts beside ccusage's `daily --json --offline` on the same files:
// ours the first time (ingest included) and again (the store already holds
// them); both must give the same totals. ccusage comes from -ccusage, PATH,
// or $VIBEKIT_AGENTS (default ~/.cache/vibekit-agents, where `make fixtures`
// installs it); without it the figures of ours alone are reported.
func (b *bench) usageBench(ctx context.Context, vkgen string) ([]string, error) {
	home := filepath.Join(b.paths["{work}"], "usage-home")
	claudeDir := filepath.Join(home, ".claude")
	db := filepath.Join(b.paths["{work}"], "usage.db")
	os.RemoveAll(home)
	for _, p := range []string{db, db + "-wal", db + "-shm", db + ".archives"} {
		os.RemoveAll(p) // a run before, with -work
	}
	gen := exec.CommandContext(ctx, vkgen, "-n", fmt.Sprint(usageLines), "-seed", fmt.Sprint(b.cfg.seed),
		"-format", "claude-transcripts", "-dir", claudeDir)
	gen.Stderr = b.stderr
	if err := gen.Run(); err != nil {
		return nil, fmt.Errorf("generate transcripts: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(claudeDir, "projects", "*", "*.jsonl"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("generate transcripts: no files in %s", claudeDir)
	}
	bin := b.paths["{bin}"]
	env := append(cleanEnv(), "TZ=UTC", "HOME="+home, "CLAUDE_CONFIG_DIR="+claudeDir, "CODEX_HOME="+filepath.Join(home, ".codex"))

	run := func(name string, argv ...string) (timed, []byte, error) {
		fmt.Fprintf(b.stderr, "vkbench: running %s\n", name)
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = env
		ownProcessGroup(cmd)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		began := time.Now()
		err := cmd.Run()
		t := timed{wall: time.Since(began)}
		if err != nil {
			return t, nil, fmt.Errorf("%s: %w\n%s", name, err, errb.Bytes())
		}
		t.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		t.rss = peakRSS(cmd.ProcessState)
		return t, out.Bytes(), nil
	}
	// Ingest: what a user runs, vibekit-pipe --transcripts catching up (an
	// empty stdin ends the run once the files are read), with HOME the
	// generated one.
	ingest, _, err := run("true | vibekit-pipe --transcripts", "bash", "-c",
		`set -o pipefail; true | "$1/vibekit-pipe" --db "$2" --transcripts --quiet --max-size-mb 100000`,
		"bash", bin, db)
	if err != nil {
		return nil, err
	}
	report := []string{bin + "/vibekit", "telemetry", "usage", "daily", "--db", db, "--format", "json", "--timezone", "UTC"}
	first, ours, err := run("vibekit telemetry usage daily", report...)
	if err != nil {
		return nil, err
	}
	var again []timed
	for i := 0; i < 5; i++ {
		t, _, err := run("vibekit telemetry usage daily (again)", report...)
		if err != nil {
			return nil, err
		}
		again = append(again, t)
	}
	rep := medianTimed(again)

	notes := []string{fmt.Sprintf("Usage, %d Claude Code transcript lines in %d files: ingest %.2f s (%.2f CPU-s, %s peak), "+
		"then usage daily %.2f s (%s peak): %.2f s in all; usage daily again (median of 5) %.3f s, %.2f CPU-s, %s peak.",
		usageLines, len(files), ingest.wall.Seconds(), ingest.cpu.Seconds(), formatMiB(ingest.rss),
		first.wall.Seconds(), formatMiB(first.rss), (ingest.wall + first.wall).Seconds(),
		rep.wall.Seconds(), rep.cpu.Seconds(), formatMiB(rep.rss))}

	cc := findCcusage(b.cfg.ccusage)
	if cc == "" {
		return append(notes, "ccusage was not found (-ccusage, PATH, or $VIBEKIT_AGENTS as `make fixtures` installs it): no comparison."), nil
	}
	ref, theirs, err := run("ccusage daily --json --offline", cc, "daily", "--json", "--offline")
	if err != nil {
		return nil, err
	}
	same, detail := sameTotals(ours, theirs)
	notes = append(notes, fmt.Sprintf("ccusage daily --json --offline on the same files: %.2f s, %.2f CPU-s, %s peak. "+
		"First report with ingest: %.2fx ccusage's time (bar: at most 1x); a repeated report: %.0fx faster than ccusage (bar: at least 20x). Totals %s.",
		ref.wall.Seconds(), ref.cpu.Seconds(), formatMiB(ref.rss),
		(ingest.wall+first.wall).Seconds()/ref.wall.Seconds(), ref.wall.Seconds()/rep.wall.Seconds(), detail))
	if !same {
		return notes, fmt.Errorf("usage daily and ccusage disagree: %s", detail)
	}
	return notes, nil
}

type timed struct {
	wall, cpu time.Duration
	rss       int64
}

func medianTimed(ts []timed) timed {
	sort.Slice(ts, func(i, j int) bool { return ts[i].wall < ts[j].wall })
	return ts[len(ts)/2]
}

func formatMiB(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// findCcusage is the ccusage to compare with, or "".
func findCcusage(flagPath string) string {
	if flagPath != "" {
		return flagPath
	}
	if p, err := exec.LookPath("ccusage"); err == nil {
		return p
	}
	dir := os.Getenv("VIBEKIT_AGENTS")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "vibekit-agents")
	}
	p := filepath.Join(dir, "node_modules", ".bin", "ccusage")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// sameTotals compares the totals of `usage daily --format json` and of
// ccusage's daily report: every token column, and the cost to the cent.
func sameTotals(ours, theirs []byte) (bool, string) {
	type totals struct {
		Input         int64   `json:"inputTokens"`
		Output        int64   `json:"outputTokens"`
		CacheCreation int64   `json:"cacheCreationTokens"`
		CacheRead     int64   `json:"cacheReadTokens"`
		Cost          float64 `json:"totalCost"`
	}
	var a, b struct{ Totals totals }
	if err := json.Unmarshal(ours, &a); err != nil {
		return false, "ours unreadable: " + err.Error()
	}
	if err := json.Unmarshal(theirs, &b); err != nil {
		return false, "ccusage's unreadable: " + err.Error()
	}
	x, y := a.Totals, b.Totals
	same := x.Input == y.Input && x.Output == y.Output && x.CacheCreation == y.CacheCreation &&
		x.CacheRead == y.CacheRead && math.Round(x.Cost*100) == math.Round(y.Cost*100)
	word := "equal"
	if !same {
		word = "DIFFER"
	}
	return same, fmt.Sprintf("%s (ours %d in, %d out, %d cache write, %d cache read, $%.2f; ccusage %d, %d, %d, %d, $%.2f)",
		word, x.Input, x.Output, x.CacheCreation, x.CacheRead, x.Cost, y.Input, y.Output, y.CacheCreation, y.CacheRead, y.Cost)
}

// appendUsageMarkdown appends the usage benchmark's notes alone (-usage-only)
// as a section of the benchmarks file.
func appendUsageMarkdown(path string, when time.Time, m machine, notes []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\n## %s, usage reports (vkbench -usage-only)\n\n", when.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "- Machine: %d CPUs (nproc), %s, %s", m.cpus, m.cpu, m.os)
	if m.commit != "" {
		fmt.Fprintf(&b, "; commit %s", m.commit)
	}
	b.WriteString("\n")
	for _, n := range notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
