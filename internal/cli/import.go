package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/jq"
	"github.com/vibekit/vibekit-pipe/reader"
	"github.com/vibekit/vibekit-pipe/redact"
)

// importBatch is how many records are handed to the store at a time, and
// importBatchBytes about how many bytes of input; all of them are still
// committed in one transaction.
const (
	importBatch      = 1000
	importBatchBytes = 8 << 20
)

// maxTransformOutputs bounds the records --transform may make of one input,
// as the pipe's map programs are bounded: they are held until the input is
// done.
const maxTransformOutputs = 10000

// maxRejectRaw bounds the text of an invalid record kept in vk_rejects.
const maxRejectRaw = 64 << 10

func newImportCommand(e *env) *ffcli.Command {
	fs := flag.NewFlagSet("vibekit telemetry import", flag.ContinueOnError)
	var (
		wf          writerFlags
		format      string
		file        string
		transform   string
		jqTimeout   time.Duration
		skipInvalid bool
		maxLine     int
		ro          importRedaction
	)
	wf.register(fs)
	ro.register(fs)
	fs.StringVar(&format, "format", "auto", "input `format`: ndjson, json (one array of records), csv, or auto (by the file's extension, else its first byte)")
	fs.StringVar(&file, "file", "-", "read this `file` (- for stdin)")
	fs.StringVar(&transform, "transform", "", "reshape each input object with this jq `program` first; it may emit 0 or more records")
	fs.DurationVar(&jqTimeout, "jq-timeout", jq.DefaultTimeout, "longest the --transform program may run on one input")
	fs.BoolVar(&skipInvalid, "skip-invalid", false, "store invalid records in the rejects table and go on, instead of failing")
	fs.IntVar(&maxLine, "max-line-bytes", reader.DefaultMaxLine, "longest NDJSON line or JSON array element stored; a longer line becomes a reject")
	addConfigFlag(fs)
	return &ffcli.Command{
		Name:       "import",
		ShortUsage: "vibekit telemetry import [flags] [--file FILE]",
		ShortHelp:  "import records from NDJSON, JSON or CSV",
		LongHelp: `Reads telemetry records and stores them, all in one transaction: if any
record is invalid, the error names its line and nothing is stored, unless
--skip-invalid sends invalid records to the rejects table instead.

A record is a JSON object with the guide's fields (as dump prints them), read
by the same rules as vibekit-pipe's input: eventType must be start, stream,
end or error; metadata must be an object; timestamp is Unix ms or seconds, or
an RFC 3339 time (the import time when missing); ids are assigned anew; other
keys go into metadata. CSV needs a header row of field names; its metadata
cells hold JSON, and empty cells are null.

Secrets are redacted before anything is stored, as vibekit-pipe does
(--redact none|secrets|all, default secrets; --redact-pattern, --hash-field).

Memory stays bounded whatever the input: a JSON array is read one element at
a time, and an NDJSON line or array element longer than --max-line-bytes
becomes a reject (with its line and byte offset) while reading goes on. An
array element too long to hold (over the limit by more than 128 KiB) stops
the import, since the rest of the array cannot be told apart from it.

--transform takes the place of the guide's JS transform script: a jq program
that gets each input object (a CSV row as an object of strings) and emits
the records to store; emitting nothing skips the input.

On a terminal a progress bar shows on stderr; the count of imported records
is printed on stdout at the end.

Examples:
  vibekit telemetry import --format json --file existing-data.json
  vibekit telemetry import --format csv --file telemetry.csv
  vibekit telemetry dump --db old.db | vibekit telemetry import --db new.db
  vibekit telemetry import --file data.json --transform '{sessionId: .session, eventType: "stream", agentType: "claude", streamData: .text, timestamp: .ts}'
  vibekit telemetry import --file events.ndjson --skip-invalid`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErrorf("import: unexpected argument %q (use --file)", args[0])
			}
			if err := applySettings(fs, "db", "enable-indexes", "jq-timeout", "max-line-bytes",
				"redact", "redact-pattern", "hash-field", "hash-key"); err != nil {
				return err
			}
			if maxLine < 1 {
				return usageErrorf("--max-line-bytes must be at least 1")
			}
			if err := checkJQTimeout(jqTimeout); err != nil {
				return err
			}
			red, err := ro.redactor()
			if err != nil {
				return err
			}
			switch format {
			case "auto", "ndjson", "json", "csv":
			default:
				return usageErrorf("--format %q: use ndjson, json, csv or auto", format)
			}
			im := &importer{e: e, skipInvalid: skipInvalid, now: e.now(), maxLine: maxLine, red: red}
			if transform != "" {
				prog, err := jq.Compile(transform)
				if err != nil {
					return err
				}
				prog.Timeout = jqTimeout
				prog.MemoryLimit = jqMemoryLimit
				prog.Abort = abortJQ(e, "import") // nothing is committed: all or nothing
				im.runner = prog.NewRunner()
				defer im.runner.Close()
			}
			in, size, name, err := openInput(e, file)
			if err != nil {
				return err
			}
			defer in.Close()
			im.source = name
			counted := &countingReader{r: in}
			br := bufio.NewReaderSize(counted, 64<<10)
			if format == "auto" {
				format = sniffFormat(file, br)
			}
			stopProgress := func() {}
			if isTerminal(e.stderr) {
				stopProgress = startProgress(e.stderr, counted, size, &im.records)
				defer stopProgress()
			}
			store, err := wf.openOrCreate(ctx, e.stderr)
			if err != nil {
				return err
			}
			defer store.Close()
			next, err := im.items(format, br)
			if err != nil {
				return err
			}
			n, err := store.Import(ctx, func(b *vibekit.Batch) (bool, error) { return im.fill(ctx, b, next) })
			stopProgress()
			if err != nil {
				return err
			}
			msg := "Imported " + plural(n.Events, "record")
			if n.Rejects > 0 {
				msg += "; " + plural(n.Rejects, "invalid record") + " went to the rejects table"
			}
			if im.skipped > 0 {
				msg += fmt.Sprintf("; the transform dropped %s", plural(im.skipped, "input"))
			}
			fmt.Fprintln(e.stdout, msg+".")
			return store.Close()
		},
	}
}

// openInput opens file ("-": stdin) and returns its size (0 if unknown) and
// the name rejects record it by.
func openInput(e *env, file string) (io.ReadCloser, int64, string, error) {
	if file == "-" || file == "" {
		return io.NopCloser(e.stdin), 0, "stdin", nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, 0, "", fmt.Errorf("import: %w", err)
	}
	var size int64
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	return f, size, file, nil
}

// sniffFormat guesses the format: by the file's extension, else json when
// the first non-space byte opens an array, else ndjson.
func sniffFormat(file string, br *bufio.Reader) string {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".csv":
		return "csv"
	case ".ndjson", ".jsonl":
		return "ndjson"
	}
	head, _ := br.Peek(4096) // fewer bytes at the end of the input
	if rest := bytes.TrimLeft(head, " \t\r\n"); len(rest) > 0 && rest[0] == '[' {
		return "json"
	}
	return "ndjson"
}

// item is one input object (JSON text) and the line it starts on.
type item struct {
	raw      []byte
	line     int
	offset   int64 // byte offset of the item's start in the input (0 for CSV rows)
	length   int64 // its full length when raw holds only its start (overlong); else 0
	overlong bool
}

// importer turns input objects into records and rejects.
type importer struct {
	e           *env
	source      string
	skipInvalid bool
	maxLine     int
	red         *redact.Redactor // nil: nothing to redact
	runner      *jq.Runner
	now         time.Time
	records     atomic.Int64 // read so far, for the progress bar
	skipped     int64        // inputs a transform emitted nothing for
}

// items returns the iterator over the input's objects; it returns io.EOF
// at the end.
func (im *importer) items(format string, br *bufio.Reader) (func() (item, error), error) {
	switch format {
	case "json":
		return jsonArrayItems(br, im.maxLine)
	case "csv":
		return im.csvItems(br)
	}
	// The pipe's splitter: an overlong line is cut to its start, counted
	// whole, and reading goes on after it.
	sp := reader.NewSplitter(br, im.source, im.maxLine, 0, 0)
	atEOF := false
	return func() (item, error) {
		for {
			var l reader.Line
			if atEOF {
				var ok bool
				if l, ok = sp.Partial(); !ok {
					return item{}, io.EOF
				}
			} else {
				var err error
				if l, err = sp.Next(); reader.IsEOF(err) {
					atEOF = true
					continue
				} else if err != nil {
					return item{}, err
				}
			}
			if l.Overlong {
				return item{raw: l.Data, line: int(l.Num), offset: l.Offset, length: l.Length, overlong: true}, nil
			}
			if len(bytes.TrimSpace(l.Data)) == 0 {
				continue
			}
			return item{raw: l.Data, line: int(l.Num), offset: l.Offset}, nil
		}
	}, nil
}

// errElementTooLong stops reading a JSON array element over the limit.
var errElementTooLong = errors.New("element too long")

// elementGuard lets a json.Decoder read at most max bytes (plus some read
// ahead) past the end of the last element it decoded, so that one huge
// element cannot grow memory. It keeps what was read since the last
// position asked about, to count that position's line.
type elementGuard struct {
	r        io.Reader
	max      int64
	read     int64  // bytes handed to the decoder
	win      []byte // the input from offset winStart to read
	winStart int64
	lines    int   // newlines before winStart
	lastEnd  int64 // offset after the last element decoded
	overflow bool
}

const guardChunk = 64 << 10

func (g *elementGuard) Read(p []byte) (int, error) {
	if g.read-g.lastEnd > g.max+2*guardChunk {
		g.overflow = true
		return 0, errElementTooLong
	}
	n, err := g.r.Read(p[:min(len(p), guardChunk)])
	g.read += int64(n)
	g.win = append(g.win, p[:n]...)
	return n, err
}

// nextStart is the offset of the first byte after the last element that is
// neither space nor comma: where the next element starts.
func (g *elementGuard) nextStart() int64 {
	i := max(g.lastEnd-g.winStart, 0)
	for i < int64(len(g.win)) && strings.IndexByte(" \t\r\n,", g.win[i]) >= 0 {
		i++
	}
	return g.winStart + i
}

// lineAt is the line of the byte at offset off; offsets asked about must
// not decrease.
func (g *elementGuard) lineAt(off int64) int {
	k := min(max(off-g.winStart, 0), int64(len(g.win)))
	g.lines += bytes.Count(g.win[:k], []byte{'\n'})
	g.win = g.win[k:]
	g.winStart += k
	return g.lines + 1
}

// jsonArrayItems streams one JSON array, one element at a time, giving each
// element's first line and byte offset. Memory is bounded by maxElem: a
// longer element stops the import (the decoder cannot step over it).
func jsonArrayItems(r io.Reader, maxElem int) (func() (item, error), error) {
	g := &elementGuard{r: r, max: int64(maxElem)}
	dec := json.NewDecoder(g)
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('[') {
		return nil, errors.New("import: --format json wants one JSON array of records (NDJSON is --format ndjson)")
	}
	lineAt := g.lineAt
	tooLong := func() error {
		start := g.nextStart()
		return fmt.Errorf("line %d: the JSON array element at byte %d is over %d bytes (--max-line-bytes); nothing was imported",
			lineAt(start), start, maxElem)
	}
	done := false
	return func() (item, error) {
		if done {
			return item{}, io.EOF
		}
		if !dec.More() {
			done = true
			if _, err := dec.Token(); err != nil {
				if g.overflow {
					return item{}, tooLong()
				}
				return item{}, fmt.Errorf("line %d: %w", lineAt(dec.InputOffset()), err)
			}
			return item{}, io.EOF
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			done = true
			if g.overflow {
				return item{}, tooLong()
			}
			return item{}, fmt.Errorf("line %d: invalid JSON: %w", lineAt(dec.InputOffset()), err)
		}
		end := dec.InputOffset()
		g.lastEnd = end
		start := end - int64(len(raw))
		line := lineAt(start)
		if len(raw) > maxElem {
			return item{raw: raw[:min(len(raw), maxRejectRaw)], line: line, offset: start, length: int64(len(raw)), overlong: true}, nil
		}
		return item{raw: raw, line: line, offset: start}, nil
	}, nil
}

// csvItems turns CSV rows into JSON objects keyed by the header: empty cells
// are left out (null), metadata cells are JSON, others strings.
func (im *importer) csvItems(br *bufio.Reader) (func() (item, error), error) {
	cr := newCSVReader(br)
	header, _, err := cr.read()
	if err == io.EOF {
		return func() (item, error) { return item{}, io.EOF }, nil
	}
	if err != nil {
		return nil, fmt.Errorf("import: %s: %w", im.source, err)
	}
	for i := range header {
		header[i] = strings.TrimSpace(strings.TrimPrefix(header[i], "\ufeff"))
	}
	return func() (item, error) {
		for {
			row, line, err := cr.read()
			if err != nil {
				return item{}, err
			}
			if len(row) == 1 && row[0] == "" {
				continue // a blank line
			}
			if len(row) != len(header) {
				return item{line: line}, fmt.Errorf("%d fields, but the header names %d", len(row), len(header))
			}
			b := []byte{'{'}
			for i, v := range row {
				if v == "" {
					continue
				}
				if len(b) > 1 {
					b = append(b, ',')
				}
				b = vibekit.AppendString(b, header[i])
				b = append(b, ':')
				if header[i] == "metadata" {
					if !json.Valid([]byte(v)) {
						return item{line: line}, errors.New("metadata is not JSON")
					}
					b = append(b, v...)
				} else {
					b = vibekit.AppendString(b, v)
				}
			}
			return item{raw: append(b, '}'), line: line}, nil
		}
	}, nil
}

// fill adds the next records to b, up to importBatch; it reports whether
// more may follow.
func (im *importer) fill(ctx context.Context, b *vibekit.Batch, next func() (item, error)) (bool, error) {
	for size := 0; len(b.Records)+len(b.Rejects) < importBatch && size < importBatchBytes; {
		it, err := next()
		size += len(it.raw)
		switch {
		case err == io.EOF:
			return false, nil
		case err != nil && it.line > 0:
			// An invalid input the reader could step over.
			if err := im.invalid(b, it, err.Error()); err != nil {
				return false, err
			}
			continue
		case err != nil:
			return false, fmt.Errorf("%s: %w", im.source, err)
		}
		im.records.Add(1)
		if it.overlong {
			// As in the pipe: a line over the limit is always a reject.
			im.reject(b, it, fmt.Sprintf("line is %d bytes, over the limit of %d (--max-line-bytes)", it.length, im.maxLine))
			continue
		}
		if err := im.add(ctx, b, it); err != nil {
			return false, err
		}
	}
	return true, nil
}

// add decodes one input object (through the transform, if any) into b.
func (im *importer) add(ctx context.Context, b *vibekit.Batch, it item) error {
	if im.runner == nil {
		return im.decode(b, it, it.raw)
	}
	v, err := vibekit.DecodeValue(it.raw)
	if err != nil {
		return im.invalid(b, it, fmt.Sprintf("invalid JSON: %v", err))
	}
	emitted := 0
	var buf []byte
	err = im.runner.Run(ctx, v, func(out any) error {
		if emitted++; emitted > maxTransformOutputs {
			return fmt.Errorf("the transform made more than %d records of one input", maxTransformOutputs)
		}
		if _, ok := out.(map[string]any); !ok {
			return im.invalid(b, it, fmt.Sprintf("the transform made %s, not an object", vibekit.KindOf(out)))
		}
		buf = jq.AppendValue(buf[:0], out)
		return im.decode(b, it, buf)
	})
	if err != nil {
		var le *lineError
		if errors.As(err, &le) {
			return err
		}
		return im.invalid(b, it, fmt.Sprintf("transform: %v", err))
	}
	if emitted == 0 {
		im.skipped++
	}
	return nil
}

// decode applies the record rules to raw, adding a record or (with
// --skip-invalid) a reject to b.
func (im *importer) decode(b *vibekit.Batch, it item, raw []byte) error {
	var rec vibekit.Record
	switch kind, err := vibekit.DecodeLine(raw, im.now, &rec); kind {
	case vibekit.LineRecord:
		if im.red != nil {
			im.red.Record(&rec)
		}
		b.Records = append(b.Records, rec)
		return nil
	case vibekit.LineReject:
		return im.invalid(b, it, err.Error())
	}
	if !json.Valid(raw) {
		return im.invalid(b, it, "invalid JSON")
	}
	return im.invalid(b, it, "not a telemetry record: it has no sessionId or eventType")
}

// lineError is an invalid record: it stops the import.
type lineError struct {
	source string
	line   int
	reason string
}

func (e *lineError) Error() string {
	return fmt.Sprintf("%s: line %d: %s (nothing was imported; --skip-invalid stores such records as rejects)", e.source, e.line, e.reason)
}

// invalid stops the import, or with --skip-invalid keeps the input as a reject.
func (im *importer) invalid(b *vibekit.Batch, it item, reason string) error {
	if !im.skipInvalid {
		return &lineError{im.source, it.line, reason}
	}
	im.reject(b, it, reason)
	return nil
}

func (im *importer) reject(b *vibekit.Batch, it item, reason string) {
	raw := it.raw
	if len(raw) > maxRejectRaw {
		raw = raw[:maxRejectRaw]
	}
	length := it.length
	if !it.overlong {
		length = int64(len(it.raw))
	}
	rej := vibekit.Reject{
		Source: im.source, Line: int64(it.line), Offset: it.offset, Length: length,
		Reason: reason, Raw: vibekit.ValidUTF8(raw), Time: im.now.UnixMilli(),
	}
	if im.red != nil {
		im.red.Reject(&rej)
	}
	b.Rejects = append(b.Rejects, rej)
}

// countingReader counts the bytes read through it, for the progress bar.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// startProgress redraws a progress line on w (a terminal) ten times a
// second until stop is called.
func startProgress(w io.Writer, read *countingReader, size int64, records *atomic.Int64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				fmt.Fprint(w, "\r"+progressLine(read.n.Load(), size, records.Load(), 30)+"\x1b[K")
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			<-finished
			fmt.Fprint(w, "\r\x1b[K") // clear the line
		})
	}
}

// progressLine draws "[#####-----]  45%  1.2 MB of 2.6 MB  12,345 records",
// or without a known size just the bytes and records read.
func progressLine(read, size, records int64, width int) string {
	if size <= 0 {
		return fmt.Sprintf("importing: %s read, %s", formatBytes(read), plural(records, "record"))
	}
	frac := min(1, float64(read)/float64(size))
	n := int(frac * float64(width))
	return fmt.Sprintf("[%s%s] %3.0f%%  %s of %s  %s", strings.Repeat("#", n), strings.Repeat("-", width-n),
		frac*100, formatBytes(read), formatBytes(size), plural(records, "record"))
}

// importRedaction are import's redaction flags, vibekit-pipe's own with the
// same defaults: what the pipe would not store, import does not either.
type importRedaction struct {
	level      string
	patterns   repeated
	hashFields repeated
	hashKey    string
}

func (o *importRedaction) register(fs *flag.FlagSet) {
	fs.StringVar(&o.level, "redact", "secrets", "redact `level`: none, secrets (API keys, tokens, private keys, URL passwords) or all (also emails and card numbers)")
	fs.Var(&o.patterns, "redact-pattern", "also redact what this `NAME=REGEX` matches, as [REDACTED:NAME] (repeatable)")
	fs.Var(&o.hashFields, "hash-field", "store this `field` (metadata.userId, prompt, ...) as a keyed hash (repeatable; needs --hash-key)")
	fs.StringVar(&o.hashKey, "hash-key", "", "secret `key` of the --hash-field hashes (better set in VIBEKIT_HASH_KEY than on the command line)")
}

// redactor builds the redactor the flags ask for; nil if it changes nothing.
func (o *importRedaction) redactor() (*redact.Redactor, error) {
	level, err := redact.ParseLevel(o.level)
	if err != nil {
		return nil, usageErrorf("--redact: %v", err)
	}
	ro := redact.Options{Level: level, HashFields: o.hashFields, HashKey: []byte(o.hashKey)}
	for _, s := range o.patterns {
		p, err := redact.ParsePattern(s)
		if err != nil {
			return nil, usageErrorf("--redact-pattern: %v", err)
		}
		ro.Patterns = append(ro.Patterns, p)
	}
	r, err := redact.New(ro)
	switch {
	case errors.Is(err, redact.ErrNoHashKey):
		return nil, usageErrorf("--hash-field needs a key: set VIBEKIT_HASH_KEY (or --hash-key) to a secret kept apart from the database")
	case err != nil:
		return nil, usageErrorf("%v", err)
	}
	if !r.Enabled() {
		return nil, nil
	}
	return r, nil
}

// checkJQTimeout refuses a --jq-timeout that cannot be a limit: 0 or less.
func checkJQTimeout(d time.Duration) error {
	if d <= 0 {
		return usageErrorf("--jq-timeout %v: must be positive (a jq program is always stopped after some time)", d)
	}
	return nil
}
