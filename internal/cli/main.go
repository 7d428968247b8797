package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"
)

// MainPipe runs vibekit-pipe as a process. SIGINT, SIGTERM and SIGHUP stop it
// gracefully; a second one stops it at once, saying how many buffered rows
// that drops, with the exit status of death by that signal. SIGPIPE is caught so that a
// closed stdout is a write error the pipe handles, not sudden death.
func MainPipe() int {
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft limit keeps the pipe's RSS under 64 MiB whatever it reads,
		// a seal's compression buffers included: the collector runs sooner
		// as the heap nears it, instead of letting it double.
		debug.SetMemoryLimit(pipeMemoryLimit)
	}
	stopSignals := []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
	defer stop()
	o := &pipeOptions{countDropped: make(chan chan int64)}
	second := make(chan os.Signal, 1)
	context.AfterFunc(ctx, func() {
		signal.Notify(second, stopSignals...) // before stop: no signal falls between
		stop()
	})
	go func() {
		sig := <-second
		fmt.Fprintf(os.Stderr, "vibekit-pipe: stopped at once by a second signal: %s\n", droppedRows(o))
		os.Exit(128 + int(sig.(syscall.Signal)))
	}()
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	return runPipeWith(ctx, os.Args[1:], o, os.Stdin, os.Stdout, os.Stderr)
}

// droppedRows asks the running pipe how many buffered rows a stop at once
// drops, and says it.
func droppedRows(o *pipeOptions) string {
	if !o.running.Load() {
		return "no buffered rows dropped" // not reading yet, or all committed
	}
	reply := make(chan int64, 1)
	wait := time.NewTimer(3 * time.Second)
	defer wait.Stop()
	select {
	case o.countDropped <- reply:
		select {
		case n := <-reply:
			return fmt.Sprintf("dropped %d buffered rows", n)
		case <-wait.C:
		}
	case <-wait.C:
	}
	return "dropped the buffered rows (the pipe did not say how many in time)"
}

// pipeMemoryLimit is the Go heap's soft limit in vibekit-pipe; SQLite's own
// memory (a few MiB of page cache) comes on top.
const pipeMemoryLimit = 40 << 20

// vibekitMemoryLimit is the Go heap's soft limit in vibekit; SQLite's own
// memory is bounded apart (see sqlite.UserQuery's heap limit).
const vibekitMemoryLimit = 96 << 20

// MainVibekit runs vibekit as a process; SIGINT and SIGTERM cancel the
// command, which cleans up before exiting.
func MainVibekit() int {
	if os.Getenv("GOGC") == "" {
		// Reading makes many short-lived values (a map per record for jq) and
		// keeps few: collecting less often halves dump --jq's CPU for ~10 MiB.
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// The collector works harder as the heap nears this, and the jq
		// runners stop a program that passes their share of it (see
		// jqMemoryLimit): every command stays well under 256 MiB.
		debug.SetMemoryLimit(vibekitMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return RunVibekit(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}
