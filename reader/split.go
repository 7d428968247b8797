// Package reader turns inputs (stdin, followed files, FIFOs) into lines that
// know where they came from: the source, the line number and the byte offsets
// before and after the line, so a store can commit where reading stopped.
package reader

import (
	"bytes"
	"errors"
	"io"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// DefaultMaxLine is the longest line kept whole; longer lines are cut to a
// reject so that one huge line never stops the input or grows memory.
const DefaultMaxLine = 1 << 20

// Line is one input line, without its line ending, and where it came from.
type Line struct {
	Source string // the name rows record: "stdin", a FIFO's or a file's path
	Origin
	// Mark is set on a position without a line (where a follower starts
	// reading a file with --from-end, or a copy it recognised): only its
	// checkpoint is committed. Offset, End and Num hold the position.
	Mark     bool
	Num      int64  // 1-based line number in the source
	Offset   int64  // byte offset of the line's first byte
	End      int64  // byte offset after the line's newline (or its last byte)
	Data     []byte // the line, owned by the receiver; cut to the limit if Overlong
	Length   int64  // the line's full length, before any cut
	Overlong bool   // longer than the limit: Data holds its start only
	Partial  bool   // cut off by a stop before its newline arrived
	// Gap is set on a run of NUL bytes where a line would start (a hole that
	// a writer not in append mode leaves after a truncation): not a line,
	// Offset..End are the bytes skipped. A follower reports it.
	Gap bool
	// Warn, on a Mark, is a report about reading (a gap, a re-read) to be
	// committed with the position.
	Warn *vibekit.Warning

	// Value is what a stage between reading and handling made of the line:
	// vibekit-pipe decodes lines for its map program as they are read.
	Value any
}

// Origin is what a checkpoint records about the input a line came from, so
// that reading can resume there.
type Origin struct {
	Key         string // the checkpoint's identity; "" means the line's Source
	Kind        string // stdin, file or fifo; "" means stdin
	Dev, Ino    uint64
	Fingerprint []byte // a file's first bytes; shared between lines, never modified
	Size        int64  // the file's size when the line was read
	Birth       int64  // the file's birth time, Unix ns; 0 if unknown
	Gone        bool   // the file can no longer be found (reported)
	Release     bool   // the file is let go: its claim ends with this position
}

var bom = []byte("\xef\xbb\xbf")

// Splitter reads lines from r with memory bounded by the line limit. It strips
// "\r\n" endings to the line and a UTF-8 byte order mark at offset 0.
type Splitter struct {
	r      io.Reader
	source string
	max    int
	buf    []byte // read buffer: buf[start:end] is unread data
	start  int
	end    int
	err    error // the error that ended reading, once buf is drained

	offset int64 // byte offset of buf[start]
	num    int64
	// An overlong line being skipped: its start, kept bytes and length so far.
	long       []byte
	longOffset int64
	longLen    int64
	inLong     bool
	// skipNUL makes runs of NUL bytes at a line's start Gap lines; nulLen
	// counts the run in progress.
	skipNUL bool
	nulLen  int64
}

// NewSplitter reads lines of at most max bytes (DefaultMaxLine if max <= 0)
// from r, starting at byte offset offset and line number num (lines already
// read), as when resuming a file.
func NewSplitter(r io.Reader, source string, max int, offset, num int64) *Splitter {
	if max <= 0 {
		max = DefaultMaxLine
	}
	return &Splitter{r: r, source: source, max: max, buf: make([]byte, 64<<10), offset: offset, num: num}
}

// Reset makes s read lines of source from r as NewSplitter would, keeping
// its buffer unless a long line grew it.
func (s *Splitter) Reset(r io.Reader, source string, offset, num int64) {
	buf := s.buf
	if cap(buf) > 64<<10 {
		buf = make([]byte, 64<<10)
	}
	*s = Splitter{r: r, source: source, max: s.max, buf: buf[:cap(buf)], offset: offset, num: num, skipNUL: s.skipNUL}
}

// SkipNUL makes s return a run of NUL bytes where a line would start as a
// Gap line, instead of as part of a line.
func (s *Splitter) SkipNUL() { s.skipNUL = true }

// Holding reports whether s holds part of a line: bytes of an unfinished line,
// or the start of an overlong one being skipped.
func (s *Splitter) Holding() bool { return s.start < s.end || s.inLong || s.nulLen > 0 }

// Offset is the byte offset after the last line returned.
func (s *Splitter) Offset() int64 {
	if s.inLong {
		return s.longOffset
	}
	return s.offset
}

// Lines is the number of lines returned so far (plus the start number).
func (s *Splitter) Lines() int64 { return s.num }

// Next returns the next complete line. At the end of the input (or on a read
// error) it returns the error; bytes of an unfinished last line stay held and
// Partial returns them.
func (s *Splitter) Next() (Line, error) {
	for {
		if line, ok := s.scan(); ok {
			return line, nil
		}
		if s.err != nil {
			if s.nulLen > 0 { // the run goes on to the end of what there is
				return s.nulRun(), nil
			}
			return Line{}, s.err
		}
		s.fill()
	}
}

// scan looks for a newline in the buffered data.
func (s *Splitter) scan() (Line, bool) {
	if s.skipNUL && !s.inLong {
		// A run of NULs where a line starts: consumed as it comes.
		if s.nulLen > 0 || s.start < s.end && s.buf[s.start] == 0 {
			n := 0
			for s.start+n < s.end && s.buf[s.start+n] == 0 {
				n++
			}
			s.nulLen += int64(n)
			s.start += n
			s.offset += int64(n)
			if s.start == s.end {
				return Line{}, false
			}
			return s.nulRun(), true
		}
	}
	data := s.buf[s.start:s.end]
	i := bytes.IndexByte(data, '\n')
	if s.inLong {
		if i < 0 {
			s.longLen += int64(len(data))
			s.offset += int64(len(data))
			s.start = s.end
			return Line{}, false
		}
		s.longLen += int64(i)
		s.start += i + 1
		s.offset += int64(i + 1)
		s.inLong = false
		s.num++
		line := Line{Source: s.source, Num: s.num, Offset: s.longOffset, End: s.offset, Data: s.long, Length: s.longLen, Overlong: true}
		s.long = nil
		return line, true
	}
	if i < 0 {
		if len(data) > s.max {
			// Keep the line's start for the reject; skip the rest as it comes.
			s.inLong = true
			s.long = append([]byte(nil), data[:min(len(data), keepOfLong)]...)
			s.longOffset = s.offset
			s.longLen = int64(len(data))
			s.offset += int64(len(data))
			s.start = s.end
		}
		return Line{}, false
	}
	s.num++
	line := s.makeLine(data[:i], int64(i+1))
	s.start += i + 1
	return line, true
}

// nulRun returns the run of NULs just consumed as a Gap line.
func (s *Splitter) nulRun() Line {
	line := Line{Source: s.source, Num: s.num, Offset: s.offset - s.nulLen, End: s.offset, Length: s.nulLen, Gap: true}
	s.nulLen = 0
	return line
}

// keepOfLong is how much of an overlong line a reject keeps.
const keepOfLong = 64 << 10

func (s *Splitter) makeLine(data []byte, consumed int64) Line {
	line := Line{Source: s.source, Num: s.num, Offset: s.offset, End: s.offset + consumed, Length: int64(len(data))}
	if s.offset == 0 && bytes.HasPrefix(data, bom) {
		data = data[len(bom):]
	}
	data = bytes.TrimSuffix(data, []byte{'\r'})
	if len(data) > s.max {
		line.Overlong = true
		data = data[:min(len(data), keepOfLong)]
	}
	line.Data = append([]byte(nil), data...)
	s.offset += consumed
	return line
}

// fill reads more input, first moving unread data to the buffer's front.
func (s *Splitter) fill() {
	if s.start > 0 {
		n := copy(s.buf, s.buf[s.start:s.end])
		s.start, s.end = 0, n
	}
	if s.end == len(s.buf) {
		// A partial line fills the buffer but is within the limit: grow,
		// up to one byte past the limit, which marks the line overlong.
		grown := make([]byte, max(len(s.buf)+1, min(2*len(s.buf), s.max+1)))
		copy(grown, s.buf[:s.end])
		s.buf = grown
	}
	n, err := s.r.Read(s.buf[s.end:])
	s.end += n
	if err != nil {
		s.err = err
	} else if n == 0 {
		s.err = io.ErrNoProgress
	}
}

// Partial returns the unfinished last line held after Next returned an
// error, and consumes it. ok is false if there is none.
func (s *Splitter) Partial() (Line, bool) {
	if s.inLong {
		s.inLong = false
		s.longLen += int64(s.end - s.start)
		s.offset += int64(s.end - s.start)
		s.start = s.end
		s.num++
		line := Line{Source: s.source, Num: s.num, Offset: s.longOffset, End: s.offset, Data: s.long, Length: s.longLen, Overlong: true}
		s.long = nil
		return line, true
	}
	if s.start == s.end {
		return Line{}, false
	}
	s.num++
	line := s.makeLine(s.buf[s.start:s.end], int64(s.end-s.start))
	s.start = s.end
	return line, true
}

// Resume clears the error that stopped Next, so a follower can read on once
// a file has grown.
func (s *Splitter) Resume() { s.err = nil }

// Buffered reports whether unread bytes (a partial line) are held.
func (s *Splitter) Buffered() int { return s.end - s.start }

// IsEOF reports whether err marks the end of the input.
func IsEOF(err error) bool { return errors.Is(err, io.EOF) }
