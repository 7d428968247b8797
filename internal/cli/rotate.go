package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/vibekit/vibekit-pipe/rotate"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

// killAtEnv names a seal step at which vibekit-pipe kills itself with
// SIGKILL. It is for the crash tests only (process_test.go), which prove
// that a seal interrupted at any step is finished or rolled back on the
// next start; it is deliberately outside the VIBEKIT_ settings.
const killAtEnv = "VKTEST_SEAL_KILL_AT"

// startRotator recovers an interrupted seal, runs retention once and
// returns the Rotator that the pipe tells of each commit.
func startRotator(ctx context.Context, db *sqlite.DB, o *pipeOptions, stderr io.Writer) (*rotate.Rotator, error) {
	ro := rotate.Options{
		MaxBytes: int64(o.maxSizeMB) << 20,
		PruneAge: time.Duration(o.pruneDays) * 24 * time.Hour,
		OnError: func(err error) {
			fmt.Fprintf(stderr, "vibekit-pipe: %v (will try again)\n", err)
		},
	}
	if step := os.Getenv(killAtEnv); step != "" {
		ro.Hook = func(s rotate.Step) {
			if string(s) == step {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // the signal is on its way
			}
		}
	}
	r := rotate.New(db, ro)
	if err := r.Start(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// printRotatorStats adds the seals and prunes of this run to --stats.
func printRotatorStats(w io.Writer, s rotate.Stats) {
	if s.Seals > 0 {
		l := s.Last
		fmt.Fprintf(w, "vibekit-pipe: seals %d, last %s (%d rows, %.1f MB -> %.1f MB): switch %.1f ms, compress %.0f ms, verify %.0f ms, finish %.1f ms; longest stall %.1f ms, all stalls %.0f ms\n",
			s.Seals, l.Seal.Archive, l.Seal.Rows, float64(l.Seal.Bytes)/1e6, float64(l.Size)/1e6,
			ms(l.Switch), ms(l.Compress), ms(l.Verify), ms(l.Finish), ms(s.MaxStall), ms(s.TotalStall))
	}
	if s.Failed > 0 {
		fmt.Fprintf(w, "vibekit-pipe: seals failed %d (rolled back, their rows kept live; the errors are above)\n", s.Failed)
	}
	if p := s.Pruned; p.Rows > 0 || p.Rejects > 0 || len(p.Archives) > 0 {
		fmt.Fprintf(w, "vibekit-pipe: pruned rows older than %s: %d rows, %d rejects, %d archives (%d rows)\n",
			p.Before.UTC().Format(time.RFC3339), p.Rows, p.Rejects, len(p.Archives), p.ArchiveRows)
	}
}
