package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/vibekit/vibekit-pipe/reader"
)

// linesOf emits its lines as a reader would, with offsets.
type linesOf []string

func (ls linesOf) Run(ctx context.Context, emit func(reader.Line) error) error {
	var off int64
	for i, s := range ls {
		l := reader.Line{Source: "stdin", Num: int64(i + 1), Offset: off, Data: []byte(s), Length: int64(len(s))}
		off += int64(len(s)) + 1
		l.End = off
		if err := emit(l); err != nil {
			return err
		}
	}
	return nil
}

func TestDocuments(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"a pretty-printed document is one line", []string{"{", `  "a": 1,`, `  "b": {"c": "}"}`, "}", "after"},
			[]string{"{\n  \"a\": 1,\n  \"b\": {\"c\": \"}\"}\n}", "after"}},
		{"an array too", []string{"[", "  1,", "  2", "]"}, []string{"[\n  1,\n  2\n]"}},
		{"NDJSON passes as it is", []string{`{"a":1}`, `{"b":2}`}, []string{`{"a":1}`, `{"b":2}`}},
		{"a code listing is not JSON", []string{"func f() {", "{", "  x := 1", "}", "done"},
			[]string{"func f() {", "{", "  x := 1", "}", "done"}},
		{"unclosed at the end", []string{"{", `  "a": 1,`}, []string{"{", `  "a": 1,`}},
		{"a string across lines is not JSON", []string{"{", `  "a": "x`, `y"`, "}"}, []string{"{", `  "a": "x`, `y"`, "}"}},
		{"too large", []string{"{", `  "a": "` + strings.Repeat("x", 100) + `"`, "}"}, []string{"{", `  "a": "` + strings.Repeat("x", 100) + `"`, "}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			var ends []int64
			d := &documents{src: linesOf(tt.in), max: 64}
			if tt.name != "too large" {
				d.max = 1 << 20
			}
			err := d.Run(context.Background(), func(l reader.Line) error {
				got = append(got, string(l.Data))
				ends = append(ends, l.End)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			var total int64
			for _, s := range tt.in {
				total += int64(len(s)) + 1
			}
			if len(ends) > 0 && ends[len(ends)-1] != total {
				t.Errorf("the last line ends at %d, want %d (the input's end)", ends[len(ends)-1], total)
			}
		})
	}
}
