package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

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

// termText makes a stored value safe to print for people: every character
// a terminal would act on instead of showing becomes a visible escape, so
// that data cannot move the cursor, retitle the window, write the
// clipboard (OSC 52) or fake lines of a report. Line breaks and tabs
// become \n, \r and \t; other C0 controls and DEL \xHH (ESC is \x1b); C1
// controls (U+0080 to U+009F, such as U+009B, a one-character CSI) and the
// bidirectional overrides and isolates \uHHHH; a byte that is not UTF-8
// \xHH. Printable text is left as it is.
func termText(s string) string { return termEscape(s, false) }

// termLines is termText for a message of several lines: its line breaks
// stay.
func termLines(s string) string { return termEscape(s, true) }

func termEscape(s string, keepNewline bool) string {
	i := 0
	for i < len(s) && s[i] >= 0x20 && s[i] < 0x7f || i < len(s) && keepNewline && s[i] == '\n' {
		i++
	}
	if i == len(s) {
		return s // the common case: printable ASCII
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	const hex = "0123456789abcdef"
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c >= 0x20 && c < 0x7f, c == '\n' && keepNewline:
				b.WriteByte(c)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\t':
				b.WriteString(`\t`)
			default:
				b.WriteString(`\x`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// unsafeRune reports whether r is a C1 control or reorders the text around
// it when shown (bidirectional embeddings, overrides and isolates).
func unsafeRune(r rune) bool {
	return r >= 0x80 && r <= 0x9f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 || r == 0x061c
}

// termWriter passes what a report prints through termLines, so that no
// value in it reaches the terminal raw, whatever printed it.
type termWriter struct{ w io.Writer }

func (t termWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(t.w, termLines(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
