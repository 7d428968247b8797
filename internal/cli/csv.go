package cli

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// csvReader reads RFC 4180 CSV as csvWriter writes it. Unlike encoding/csv
// it keeps the bytes inside quotes exactly (encoding/csv turns a quoted
// CRLF into LF), so that every value round-trips. Records end at LF or
// CRLF; a quote inside an unquoted field is taken as it is.
type csvReader struct {
	r    *bufio.Reader
	line int // lines consumed so far
}

func newCSVReader(r io.Reader) *csvReader {
	return &csvReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// read returns the next record and the line it starts on; io.EOF at the end.
func (c *csvReader) read() ([]string, int, error) {
	start := c.line + 1
	var (
		fields []string
		field  strings.Builder
		quoted bool // inside quotes
		wasQ   bool // the field was quoted (text may not follow its end)
		any    bool // anything read for this record
	)
	for {
		b, err := c.r.ReadByte()
		if err == io.EOF {
			if quoted {
				return nil, start, fmt.Errorf("line %d: a quoted field is not closed", start)
			}
			if !any {
				return nil, start, io.EOF
			}
			return append(fields, field.String()), start, nil
		}
		if err != nil {
			return nil, start, err
		}
		any = true
		if b == '\n' {
			c.line++
		}
		switch {
		case quoted && b == '"':
			next, err := c.r.ReadByte()
			if err == nil && next == '"' {
				field.WriteByte('"')
				continue
			}
			if err == nil {
				c.r.UnreadByte()
			}
			quoted = false
		case quoted:
			field.WriteByte(b)
		case b == '"' && field.Len() == 0 && !wasQ:
			quoted, wasQ = true, true
		case b == ',':
			fields = append(fields, field.String())
			field.Reset()
			wasQ = false
		case b == '\n':
			s := field.String()
			if !wasQ {
				s = strings.TrimSuffix(s, "\r")
			}
			return append(fields, s), start, nil
		case b == '\r' && wasQ:
			// CR of the CRLF after a closing quote.
		case wasQ:
			return nil, start, fmt.Errorf("line %d: text after the closing quote of a field", c.line+1)
		default:
			field.WriteByte(b)
		}
	}
}
