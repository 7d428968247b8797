// Package cli is the command-line interface of vibekit-pipe and vibekit: flag
// trees, settings from flags, environment and config file, exit codes and
// output formats. The mains in cmd/ only wire signals and streams to it.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/vibekit/vibekit-pipe/jq"
)

// Exit codes, as DESIGN.md sets them.
const (
	ExitOK      = 0
	ExitFailure = 1 // a runtime failure
	ExitUsage   = 2 // bad flags or arguments
	ExitJQ      = 3 // a jq program that does not compile
)

// exitError carries the exit code an error ends the program with.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf is an error in how the program was called: exit code 2.
func usageErrorf(format string, args ...any) error {
	return &exitError{ExitUsage, fmt.Errorf(format, args...)}
}

// silentExit ends the program with code after its message was printed.
type silentExit int

func (e silentExit) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// report prints err once, as "<prog>: <what failed>: <why>", and returns the
// exit code it calls for.
func report(stderr io.Writer, prog string, err error) int {
	if err == nil {
		return ExitOK
	}
	var se silentExit
	if errors.As(err, &se) {
		return int(se)
	}
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	code := ExitFailure
	var ee *exitError
	var ce *jq.CompileError
	switch {
	case errors.As(err, &ce):
		code = ExitJQ
	case errors.As(err, &ee):
		code = ee.code
	case isFlagError(err):
		code = ExitUsage
	}
	msg := err.Error()
	fmt.Fprintf(stderr, "%s: %s\n", prog, termLines(msg)) // it may quote stored values
	if code == ExitUsage && !strings.Contains(msg, "--help") {
		help := prog + " --help"
		if prog == "vibekit" {
			help = "vibekit telemetry <command> --help"
		}
		fmt.Fprintf(stderr, "Run '%s' for usage.\n", help)
	}
	return code
}

// isFlagError recognises the errors ff and flag return for bad flags.
func isFlagError(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "error parsing commandline arguments") ||
		strings.Contains(msg, "error parsing environment variables") ||
		strings.Contains(msg, "error parsing config file")
}
