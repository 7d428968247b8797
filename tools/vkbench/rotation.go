package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vibekit/vibekit-pipe/rotate"
)

// countArchivedRows sums the rows of db's archives, as `vibekit telemetry
// archives` lists them.
func countArchivedRows(ctx context.Context, bin, db string) (int64, error) {
	var errBuf tailBuffer
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "vibekit"), "telemetry", "archives", "--db", db)
	cmd.Stderr = &errBuf
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("list archives of %s: %w\n%s", db, err, errBuf.Bytes())
	}
	var n int64
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var a struct{ Rows int64 }
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			return 0, fmt.Errorf("list archives of %s: %w", db, err)
		}
		n += a.Rows
	}
	return n, nil
}

var sealsRE = regexp.MustCompile(`seals (\d+), .*longest stall ([0-9.]+ ms), all stalls ([0-9.]+ ms)`)

// statsLines picks the seal figures out of the rotating ingest's --stats.
func statsLines(stderr []byte, name string) []string {
	m := sealsRE.FindSubmatch(stderr)
	if m == nil {
		return []string{fmt.Sprintf("%s: no seal reported", name)}
	}
	return []string{fmt.Sprintf("%s: %s seals; ingest waited for them only in their switches and finishes, two short transactions each: %s in all, the longest %s", name, m[1], m[3], m[2])}
}

// compareCompression restores the first archive of the rotating ingest (a
// database of about 100 MB) and compresses it as a seal does, and with the
// zstd tool at level 3, one thread each.
func compareCompression(ctx context.Context, bin, rotdb, work string, stderr io.Writer) ([]string, error) {
	as, err := rotate.List(rotdb)
	if err != nil || len(as) == 0 {
		return []string{"no archive to compare compression on"}, err
	}
	if _, err := exec.LookPath("zstd"); err != nil {
		return []string{"the zstd tool is not on PATH: compression not compared"}, nil
	}
	sealed := filepath.Join(work, "sealed.db")
	os.Remove(sealed)
	restore := exec.CommandContext(ctx, filepath.Join(bin, "vibekit"), "telemetry", "archives", "restore", "--db", rotdb, as[0].Name, "--to", sealed)
	if out, err := restore.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("restore %s: %w\n%s", as[0].Name, err, out)
	}
	defer os.Remove(sealed)
	fi, err := os.Stat(sealed)
	if err != nil {
		return nil, err
	}
	if err := warmCache(sealed); err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "vkbench: compressing %s (%.0f MB) as a seal does, and with zstd -3\n", as[0].Name, float64(fi.Size())/1e6)
	ours := filepath.Join(work, "sealed.ours.zst")
	theirs := filepath.Join(work, "sealed.zstd.zst")
	defer os.Remove(ours)
	defer os.Remove(theirs)
	// Three runs each, in turns: their medians.
	var oursWalls, theirWalls []time.Duration
	var oursSize int64
	for range 3 {
		os.Remove(ours)
		began := time.Now()
		oursSize, err = rotate.Compress(ctx, sealed, ours, 1)
		oursWalls = append(oursWalls, time.Since(began))
		if err != nil {
			return nil, err
		}
		began = time.Now()
		if out, err := exec.CommandContext(ctx, "zstd", "-3", "-T1", "-q", "-f", sealed, "-o", theirs).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("zstd -3: %w\n%s", err, out)
		}
		theirWalls = append(theirWalls, time.Since(began))
	}
	oursWall, theirWall := median(oursWalls), median(theirWalls)
	tfi, err := os.Stat(theirs)
	if err != nil {
		return nil, err
	}
	mbps := func(d time.Duration) float64 { return float64(fi.Size()) / 1e6 / d.Seconds() }
	return []string{
		fmt.Sprintf("compressing a sealed database of %.1f MB (one thread, fsync included; medians of 3 runs each, in turns): ours %.0f MB/s, ratio %.2f; `zstd -3 -T1` %.0f MB/s, ratio %.2f: %.2fx the speed of zstd -3",
			float64(fi.Size())/1e6, mbps(oursWall), float64(fi.Size())/float64(oursSize), mbps(theirWall),
			float64(fi.Size())/float64(tfi.Size()), theirWall.Seconds()/oursWall.Seconds()),
	}, nil
}

// rotationAgain runs, times more times and in turns, the plain and the
// rotating ingest (into fresh databases), and dump and dump --archives: one
// run of each moves by ±10% on a shared 2-core machine, about as much as
// rotation costs, so the ratios of their medians are reported beside the
// table's.
func (b *bench) rotationAgain(ctx context.Context, results []result, times int) ([]string, error) {
	pairs := [][2]string{
		{"vibekit-pipe ingest", "vibekit-pipe ingest, rotating at 100 MB"},
		{"vibekit telemetry dump", "vibekit telemetry dump --archives"},
	}
	cmds := map[string]command{}
	walls := map[string][]time.Duration{}
	for _, r := range results {
		cmds[r.cmd.name] = r.cmd
		walls[r.cmd.name] = append(walls[r.cmd.name], r.wall)
	}
	// An ingest runs again into a database of its own; a dump reads the
	// same one again.
	fresh := func(c command, dir string) command {
		if c.unit != unitEvents {
			return c
		}
		db := filepath.Join(b.paths["{work}"], dir, "ingest.db")
		os.RemoveAll(filepath.Dir(db))
		c.argv = append([]string(nil), c.argv...)
		for i, a := range c.argv {
			if a == c.db {
				c.argv[i] = db
			}
		}
		c.db = db
		return c
	}
	defer os.RemoveAll(filepath.Join(b.paths["{work}"], "again-0"))
	defer os.RemoveAll(filepath.Join(b.paths["{work}"], "again-1"))
	var notes []string
	for _, pair := range pairs {
		base, ok := cmds[pair[0]]
		other, ok2 := cmds[pair[1]]
		if !ok || !ok2 {
			continue
		}
		for range times {
			for _, c := range []command{fresh(base, "again-0"), fresh(other, "again-1")} {
				stats := len(b.stats)
				r, err := b.measure(ctx, c)
				b.stats = b.stats[:stats]
				if err != nil {
					return nil, err
				}
				walls[c.name] = append(walls[c.name], r.wall)
			}
		}
		p, o := walls[base.name], walls[other.name]
		notes = append(notes, fmt.Sprintf("%s and %s, %d runs each, in turns: %s s and %s s; medians %.2f s and %.2f s: %.2fx",
			base.name, other.name, len(p), seconds(p), seconds(o), median(p).Seconds(), median(o).Seconds(),
			median(p).Seconds()/median(o).Seconds()))
	}
	return notes, nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func seconds(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%.2f", d.Seconds())
	}
	return strings.Join(parts, ", ")
}
