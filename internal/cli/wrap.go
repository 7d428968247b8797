package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/reader"
)

// The sources of a command's output, as its rows record them.
const (
	stdoutSource = "command:stdout"
	stderrSource = "command:stderr"
)

// drainWait is how long the output of a command is read on after it exited:
// a process it left running may hold its stdout or stderr open.
const drainWait = 2 * time.Second

// Exit codes of a command that did not run, as shells give them.
const (
	exitNotExecutable = 126
	exitNotFound      = 127
)

// command runs the command given after "--" and reads its stdout and stderr
// as two sources. stdout passes through to ours (unless --quiet), stderr to
// ours. Signals that stop vibekit-pipe are passed on to it, and the input
// ends when it has exited and its output is read.
type command struct {
	argv    []string
	stdin   *os.File
	stdout  io.Writer // nil: --quiet
	stderr  io.Writer
	maxLine int

	// Set by Run, read after it returned.
	exitCode int
	signal   syscall.Signal // the signal that killed it; 0 if none
	startErr error          // it could not be started
}

var _ source = (*command)(nil)

// forwarded are the signals passed on to the command. SIGUSR1 is not: it
// prints vibekit-pipe's metrics.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}

// Run starts the command, emits the lines of its stdout and stderr, and
// returns once it has exited and its output has been read. A command that
// cannot start is not an error of Run: startErr and exitCode say what
// happened, and the pipe records it.
func (c *command) Run(ctx context.Context, emit func(reader.Line) error) error {
	if ctx.Err() != nil {
		c.startErr, c.exitCode = errors.New("stopped before the command started"), ExitFailure
		return nil
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("run %s: %w", c.argv[0], err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return fmt.Errorf("run %s: %w", c.argv[0], err)
	}
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.stdin, outW, errW
	// Off a terminal the command gets a process group of its own, so that
	// it hears each signal once, from us. On a terminal it stays in ours, to
	// read the terminal and take Ctrl-C (SIGINT, SIGQUIT) from it directly;
	// we pass on only the signals a terminal does not send the whole group.
	group := !isTerminal(c.stdin)
	if group {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...) // from now on no signal stops us: all go to the command
	defer signal.Stop(sigs)
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		c.startErr, c.exitCode = err, startExitCode(err)
		return nil
	}

	forwarding := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				sig := s.(syscall.Signal)
				switch {
				case group:
					syscall.Kill(-cmd.Process.Pid, sig) // the group outlives its leader's pid: no reuse
				case sig != syscall.SIGINT && sig != syscall.SIGQUIT:
					cmd.Process.Signal(sig)
				}
			case <-forwarding:
				return
			}
		}
	}()

	// The output is read to its end even when a signal stopped us: the
	// command decides when it stops, and its last words are kept.
	rctx, stopReading := context.WithCancel(context.WithoutCancel(ctx))
	defer stopReading()
	streams := []*reader.Stream{
		{File: outR, Name: stdoutSource, Tee: c.stdout, MaxLine: c.maxLine},
		{File: errR, Name: stderrSource, Tee: c.stderr, MaxLine: c.maxLine},
	}
	errs := make([]error, len(streams))
	var wg sync.WaitGroup
	for i, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Run(rctx, emit)
			// A closed output (| head -1) closes the pipe from the command,
			// which then gets SIGPIPE, as in a shell pipeline.
			s.File.Close()
		}()
	}
	waitErr := cmd.Wait()
	read := make(chan struct{})
	go func() { wg.Wait(); close(read) }()
	select {
	case <-read:
	case <-time.After(drainWait):
		stopReading() // what a leftover process writes later is not the command's
		<-read
	}
	close(forwarding)

	c.exitCode = cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		c.signal, c.exitCode = ws.Signal(), 128+int(ws.Signal())
	} else if c.exitCode < 0 {
		return fmt.Errorf("wait for %s: %w", c.argv[0], waitErr)
	}
	var closed error
	for _, err := range errs {
		switch {
		case errors.Is(err, reader.ErrOutputClosed):
			closed = err
		case err != nil:
			return err
		}
	}
	return closed
}

// startExitCode is the exit status a shell gives a command that could not
// start: 127 if it does not exist, 126 if it cannot be run.
func startExitCode(err error) int {
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return exitNotFound
	}
	return exitNotExecutable
}

// err is how vibekit-pipe ends after the command: with its exit code, and a
// message only if it could not start (the command speaks for itself).
func (c *command) err() error {
	switch {
	case c.startErr != nil:
		return &exitError{c.exitCode, fmt.Errorf("run %s: %w", c.argv[0], c.startErr)}
	case c.exitCode != 0:
		return silentExit(c.exitCode)
	}
	return nil
}

// commandLine is argv as a shell would take it.
func commandLine(argv []string) string {
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = shellQuote(a)
	}
	return strings.Join(quoted, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// startCommand writes the session's start row before the command starts,
// with the command line in its metadata.
func (p *pipe) startCommand(now time.Time) {
	meta, _ := json.Marshal(map[string]any{"kind": "command", "command": commandLine(p.ag.cmd.argv)})
	p.started, p.startTime = true, now
	rec := p.sessionRecord(vibekit.EventStart, "", now)
	rec.Prompt, rec.Metadata = p.o.prompt, meta
	p.ag.redactRecord(&rec)
	p.m.generated++
	p.b.AddRecord(rec, "", now)
	if p.ag.mapper != nil {
		p.ag.mapper.Started()
	}
}

// endCommand writes the session's last row once the command has exited: an
// end row if it exited 0, else an error row; both with the exit code and the
// duration.
func (p *pipe) endCommand() {
	c := p.ag.cmd
	now := p.now()
	meta := map[string]any{
		"kind":      "exit",
		"command":   commandLine(c.argv),
		"exit_code": c.exitCode,
		"duration":  now.Sub(p.startTime).Milliseconds(),
		"lines":     p.m.lines,
	}
	t, status, text := vibekit.EventEnd, "success", ""
	switch {
	case c.startErr != nil:
		t, status, text = vibekit.EventError, "not started", c.startErr.Error()
	case c.signal != 0:
		t, status, text = vibekit.EventError, "killed", "killed by "+unix.SignalName(c.signal)
		meta["signal"] = unix.SignalName(c.signal)
	case c.exitCode != 0:
		t, status, text = vibekit.EventError, "failed", fmt.Sprintf("exit status %d", c.exitCode)
	}
	meta["status"] = status
	rec := p.sessionRecord(t, text, now)
	rec.Metadata, _ = json.Marshal(meta)
	p.ag.redactRecord(&rec)
	p.m.generated++
	p.b.AddRecord(rec, "", now)
}

// stderrLine stores a line the command wrote to stderr: a stream row of the
// session, marked as stderr, never read as a record or mapped.
func (p *pipe) stderrLine(l *reader.Line, source string, now time.Time) {
	p.b.CountLine(l.Length, false, now)
	p.m.rows++
	p.textLines++
	rec := p.sessionRecord(vibekit.EventStream, vibekit.ValidUTF8(l.Data), now)
	rec.Metadata = json.RawMessage(`{"stream":"stderr"}`)
	if l.Partial {
		rec.Metadata = json.RawMessage(`{"partial":true,"stream":"stderr"}`)
	}
	p.ag.redactText(&rec, source)
	p.b.AddRecordAt(rec, source, linePos(l), now)
}
