package cli

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/vibekit/vibekit-pipe/reader"
)

// documents joins a pretty-printed JSON document that a source prints over
// several lines (gemini -o json) into one line for the map program: a line
// that is "{" or "[" alone starts one, and the lines up to the one that
// closes it, if together they are valid JSON of at most max bytes, are one
// line, from the first line's offset to the last one's end. Anything else,
// and lines that turn out not to be such a document, pass on as they came.
// Lines of followed files and FIFOs are not joined: a document there would
// span checkpoints.
type documents struct {
	src source
	max int
}

func (d *documents) Run(ctx context.Context, emit func(reader.Line) error) error {
	var held []reader.Line
	size, depth := 0, 0
	var inString, escaped bool
	flush := func() error {
		for _, l := range held {
			if err := emit(l); err != nil {
				return err
			}
		}
		held, size = held[:0], 0
		return nil
	}
	err := d.src.Run(ctx, func(l reader.Line) error {
		if l.Kind == "file" || l.Kind == "fifo" || l.Mark || l.Overlong || l.Source == stderrSource {
			if err := flush(); err != nil {
				return err
			}
			return emit(l)
		}
		if len(held) == 0 {
			t := bytes.TrimSpace(l.Data)
			if len(t) != 1 || (t[0] != '{' && t[0] != '[') {
				return emit(l)
			}
			depth, inString, escaped = 0, false, false
		}
		held = append(held, l)
		size += len(l.Data) + 1
		if size > d.max {
			return flush()
		}
		for _, c := range l.Data {
			switch {
			case escaped:
				escaped = false
			case inString && c == '\\':
				escaped = true
			case c == '"':
				inString = !inString
			case inString:
			case c == '{' || c == '[':
				depth++
			case c == '}' || c == ']':
				depth--
			}
		}
		if inString {
			return flush() // a JSON string does not span lines
		}
		if depth > 0 {
			return nil
		}
		doc := make([]byte, 0, size)
		for i, h := range held {
			if i > 0 {
				doc = append(doc, '\n')
			}
			doc = append(doc, h.Data...)
		}
		if depth < 0 || !json.Valid(doc) {
			return flush()
		}
		one := held[0]
		last := held[len(held)-1]
		one.Data, one.Length, one.End, one.Value = doc, int64(len(doc)), last.End, nil
		held, size = held[:0], 0
		return emit(one)
	})
	if ferr := flush(); err == nil {
		err = ferr
	}
	return err
}
