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
)

// importBatch is how many records are handed to the store at a time; all
// of them are still committed in one transaction.
const importBatch = 1000

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
	)
	wf.register(fs)
	fs.StringVar(&format, "format", "auto", "input `format`: ndjson, json (one array of records), csv, or auto (by the file's extension, else its first byte)")
	fs.StringVar(&file, "file", "-", "read this `file` (- for stdin)")
	fs.StringVar(&transform, "transform", "", "reshape each input object with this jq `program` first; it may emit 0 or more records")
	fs.DurationVar(&jqTimeout, "jq-timeout", jq.DefaultTimeout, "longest the --transform program may run on one input")
	fs.BoolVar(&skipInvalid, "skip-invalid", false, "store invalid records in the rejects table and go on, instead of failing")
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
			if err := applySettings(fs, "db", "enable-indexes", "jq-timeout"); err != nil {
				return err
			}
			switch format {
			case "auto", "ndjson", "json", "csv":
			default:
				return usageErrorf("--format %q: use ndjson, json, csv or auto", format)
			}
			im := &importer{e: e, skipInvalid: skipInvalid, now: e.now()}
			if transform != "" {
				prog, err := jq.Compile(transform)
				if err != nil {
					return err
				}
				prog.Timeout = jqTimeout
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
	raw    []byte
	line   int
	offset int64 // byte offset of the item's start in the input (0 for CSV rows)
}

// importer turns input objects into records and rejects.
type importer struct {
	e           *env
	source      string
	skipInvalid bool
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
		data, err := io.ReadAll(br)
		if err != nil {
			return nil, fmt.Errorf("import: read %s: %w", im.source, err)
		}
		return jsonArrayItems(data)
	case "csv":
		return im.csvItems(br)
	}
	line, offset := 0, int64(0)
	return func() (item, error) {
		for {
			b, err := br.ReadBytes('\n')
			if len(b) == 0 && err != nil {
				return item{}, err
			}
			line++
			start := offset
			offset += int64(len(b))
			if len(bytes.TrimSpace(b)) == 0 {
				continue
			}
			return item{raw: bytes.TrimRight(b, "\r\n"), line: line, offset: start}, nil
		}
	}, nil
}

// jsonArrayItems walks one JSON array, giving each element's first line.
func jsonArrayItems(data []byte) (func() (item, error), error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('[') {
		return nil, errors.New("import: --format json wants one JSON array of records (NDJSON is --format ndjson)")
	}
	line, counted := 1, 0
	lineAt := func(off int) int {
		line += bytes.Count(data[counted:off], []byte{'\n'})
		counted = off
		return line
	}
	done := false
	return func() (item, error) {
		if done || !dec.More() {
			if !done {
				done = true
				if _, err := dec.Token(); err != nil {
					return item{}, fmt.Errorf("line %d: %w", lineAt(int(dec.InputOffset())), err)
				}
			}
			return item{}, io.EOF
		}
		start := int(dec.InputOffset())
		for start < len(data) && strings.IndexByte(" \t\r\n,", data[start]) >= 0 {
			start++
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return item{}, fmt.Errorf("line %d: invalid JSON: %w", lineAt(start), err)
		}
		return item{raw: raw, line: lineAt(start), offset: int64(start)}, nil
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
	for len(b.Records)+len(b.Rejects) < importBatch {
		it, err := next()
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
		emitted++
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
	b.Rejects = append(b.Rejects, vibekit.Reject{
		Source: im.source, Line: int64(it.line), Offset: it.offset, Length: int64(len(it.raw)),
		Reason: reason, Raw: vibekit.ValidUTF8(raw), Time: im.now.UnixMilli(),
	})
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
