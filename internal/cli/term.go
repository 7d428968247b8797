package cli

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), ioctlReadTermios)
	return err == nil
}

// terminalWidth is the width in columns of the terminal w, or 0.
func terminalWidth(w any) int {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0
	}
	return int(ws.Col)
}

// tableWidth is the width tables are cut to: the terminal's, else $COLUMNS,
// else 0 for no limit (a table sent to a file or pipe is not cut).
func (e *env) tableWidth() int {
	if n := terminalWidth(e.stdout); n > 0 {
		return n
	}
	if n, err := strconv.Atoi(e.getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 0
}

// color reports whether stdout may carry colour: a terminal, NO_COLOR
// unset (https://no-color.org) and TERM not dumb.
func (e *env) color() bool {
	return isTerminal(e.stdout) && e.getenv("NO_COLOR") == "" && e.getenv("TERM") != "dumb"
}
