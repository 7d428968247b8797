package reader

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func readAll(t *testing.T, sp *Splitter) (lines []Line, partial *Line) {
	t.Helper()
	for {
		line, err := sp.Next()
		if err != nil {
			if err != io.EOF {
				t.Fatalf("Next: %v", err)
			}
			if p, ok := sp.Partial(); ok {
				partial = &p
			}
			return lines, partial
		}
		lines = append(lines, line)
	}
}

func TestSplitter(t *testing.T) {
	in := "\xef\xbb\xbffirst\r\nsecond\n\nthird\xff\x00\npart"
	// One byte at a time as well as whole: the result must not depend on reads.
	for name, r := range map[string]io.Reader{"whole": strings.NewReader(in), "onebyte": iotest.OneByteReader(strings.NewReader(in))} {
		t.Run(name, func(t *testing.T) {
			lines, partial := readAll(t, NewSplitter(r, "src", 0, 0, 0))
			want := []struct {
				data          string
				num, off, end int64
			}{
				{"first", 1, 0, 10}, {"second", 2, 10, 17}, {"", 3, 17, 18}, {"third\xff\x00", 4, 18, 26},
			}
			if len(lines) != len(want) {
				t.Fatalf("got %d lines, want %d", len(lines), len(want))
			}
			for i, w := range want {
				l := lines[i]
				if string(l.Data) != w.data || l.Num != w.num || l.Offset != w.off || l.End != w.end || l.Source != "src" {
					t.Errorf("line %d = %q num %d [%d,%d), want %q num %d [%d,%d)", i, l.Data, l.Num, l.Offset, l.End, w.data, w.num, w.off, w.end)
				}
			}
			if partial == nil || string(partial.Data) != "part" || partial.Offset != 26 || partial.End != 30 || partial.Num != 5 {
				t.Fatalf("partial = %+v, want \"part\" at 26..30, line 5", partial)
			}
		})
	}
}

// zeroes yields n bytes of 'x' without holding them: a 10 MB line costs no memory.
type xs struct{ n int }

func (x *xs) Read(p []byte) (int, error) {
	if x.n == 0 {
		return 0, io.EOF
	}
	k := min(len(p), x.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	x.n -= k
	return k, nil
}

func TestSplitter_Overlong(t *testing.T) {
	const long = 10 << 20
	r := io.MultiReader(strings.NewReader("before\n"), &xs{long}, strings.NewReader("\nafter\n"), &xs{long})
	sp := NewSplitter(r, "src", 1<<20, 0, 0)
	lines, partial := readAll(t, sp)
	if got, want := len(lines), 3; got != want {
		t.Fatalf("got %d lines, want %d", got, want)
	}
	if got := lines[1]; !got.Overlong || got.Length != long || got.Offset != 7 || got.End != 7+long+1 || len(got.Data) != keepOfLong {
		t.Errorf("overlong line = len %d overlong %v [%d,%d) kept %d", got.Length, got.Overlong, got.Offset, got.End, len(got.Data))
	}
	if got := string(lines[2].Data); got != "after" {
		t.Errorf("line after the long one = %q, want \"after\"", got)
	}
	if partial == nil || !partial.Overlong || partial.Length != long {
		t.Errorf("overlong unfinished last line = %+v", partial)
	}
	if got := cap(sp.buf); got > 2<<20 {
		t.Errorf("buffer grew to %d bytes for a 1 MiB limit", got)
	}
}

func TestSplitter_LineAtLimit(t *testing.T) {
	line := bytes.Repeat([]byte("y"), 100)
	in := append(append(append([]byte{}, line...), '\n'), append(line, 'z', '\n')...)
	lines, _ := readAll(t, NewSplitter(bytes.NewReader(in), "src", 100, 0, 0))
	if len(lines) != 2 || lines[0].Overlong || !lines[1].Overlong || lines[1].Length != 101 {
		t.Fatalf("lines at and over a 100-byte limit: %+v", lines)
	}
}
