package cli

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// Output formats of the commands that print rows (dump, sessions, query,
// export-user-data):
//
//	ndjson  one JSON object per line, keys in column order (the default)
//	json    one JSON array of those objects
//	csv     RFC 4180: a header row, CRLF line ends, quotes where needed
//	table   aligned columns for people, values cut to fit the terminal
var rowFormats = []string{"ndjson", "json", "csv", "table"}

func checkRowFormat(format string) error {
	if !slices.Contains(rowFormats, format) {
		return usageErrorf("--format %q: use one of %s", format, strings.Join(rowFormats, ", "))
	}
	return nil
}

// colKind tells the table format how to show a column's values to people;
// the other formats print the values as they are.
type colKind int

const (
	kindPlain    colKind = iota
	kindTime             // Unix ms, shown as local time
	kindDuration         // ms, shown as 2m 34s
	kindJSON             // text holding JSON (metadata): JSON output embeds it
)

type column struct {
	name string
	kind colKind
}

// rowWriter writes rows in one output format. Values are nil, int64, int,
// float64, bool, string, []byte, time.Time or json.RawMessage (JSON text,
// embedded as it is).
type rowWriter interface {
	header(cols []column) error
	row(vals []any) error
	// close ends the output (the closing bracket of json) and flushes it.
	close() error
}

// newRowWriter returns a writer of format to w; width and color matter to
// tables only.
func newRowWriter(format string, w io.Writer, width int, color bool) rowWriter {
	bw := bufio.NewWriterSize(w, 64<<10)
	switch format {
	case "json":
		return &jsonWriter{w: bw, array: true}
	case "csv":
		return &csvWriter{w: bw}
	case "table":
		return &tableWriter{w: bw, width: width, color: color}
	}
	return &jsonWriter{w: bw}
}

// jsonWriter writes NDJSON, or with array set one JSON array.
type jsonWriter struct {
	w     *bufio.Writer
	array bool
	cols  []column
	keys  [][]byte // the cols' names as JSON strings
	n     int
	buf   []byte
}

func (j *jsonWriter) header(cols []column) error {
	j.cols = cols
	seen := map[string]int{}
	for _, c := range cols {
		name := c.name
		// Keys of an object must differ: a second "n" becomes "n_2".
		if seen[name]++; seen[name] > 1 {
			name += "_" + strconv.Itoa(seen[name])
		}
		j.keys = append(j.keys, vibekit.AppendString(nil, name))
	}
	return nil
}

func (j *jsonWriter) row(vals []any) error {
	b := j.buf[:0]
	if j.array {
		if j.n == 0 {
			b = append(b, "[\n"...)
		} else {
			b = append(b, ",\n"...)
		}
	}
	b = append(b, '{')
	for i, v := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, j.keys[i]...)
		b = append(b, ':')
		if s, ok := v.(string); ok && j.cols[i].kind == kindJSON && json.Valid([]byte(s)) {
			v = json.RawMessage(s)
		}
		b = appendJSONValue(b, v)
	}
	b = append(b, '}')
	if !j.array {
		b = append(b, '\n')
	}
	j.n++
	j.buf = b
	_, err := j.w.Write(b)
	return err
}

// raw writes one JSON value as a row: a record from the fast path, or a
// value a jq program made.
func (j *jsonWriter) raw(v []byte) error {
	if j.array {
		sep := ",\n"
		if j.n == 0 {
			sep = "[\n"
		}
		j.w.WriteString(sep)
	}
	j.n++
	_, err := j.w.Write(v)
	if !j.array {
		// bufio errors stick: the last write reports any earlier one.
		return j.w.WriteByte('\n')
	}
	return err
}

func (j *jsonWriter) close() error {
	if j.array {
		if j.n == 0 {
			j.w.WriteString("[]\n")
		} else {
			j.w.WriteString("\n]\n")
		}
	}
	return j.w.Flush()
}

func appendJSONValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return append(b, "null"...)
		}
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	case bool:
		return strconv.AppendBool(b, v)
	case string:
		return vibekit.AppendString(b, v)
	case json.RawMessage:
		if len(v) == 0 {
			return append(b, "null"...)
		}
		if json.Valid(v) {
			return append(b, v...)
		}
		return vibekit.AppendString(b, string(v))
	case []byte:
		return vibekit.AppendString(b, base64.StdEncoding.EncodeToString(v))
	case time.Time:
		return vibekit.AppendString(b, v.Format(time.RFC3339Nano))
	}
	return vibekit.AppendString(b, fmt.Sprint(v))
}

// text is a value as CSV holds it: null is empty, JSON is its text, bytes
// are base64.
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case int:
		return strconv.Itoa(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case json.RawMessage:
		return string(v)
	case []byte:
		return base64.StdEncoding.EncodeToString(v)
	case time.Time:
		return v.Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// csvWriter writes RFC 4180 CSV: a header row, CRLF after each record, and
// fields holding a comma, quote, CR or LF in quotes, with quotes doubled.
// Newlines inside fields are kept as they are, so values round-trip.
type csvWriter struct {
	w    *bufio.Writer
	cols []column
	// spreadsheetSafe prefixes a ' to text cells that start with = + - @,
	// a tab or a CR, which spreadsheets run as formulas (OWASP's advice for
	// CSV injection). Numbers stay as they are: they cannot be formulas.
	spreadsheetSafe bool
}

func (c *csvWriter) header(cols []column) error {
	c.cols = cols
	names := make([]any, len(cols))
	for i, col := range cols {
		names[i] = col.name
	}
	return c.row(names)
}

func (c *csvWriter) row(vals []any) error {
	for i, v := range vals {
		if i > 0 {
			c.w.WriteByte(',')
		}
		s := text(v)
		if c.spreadsheetSafe && formulaStart(v, s) {
			s = "'" + s
		}
		if !strings.ContainsAny(s, ",\"\r\n") {
			c.w.WriteString(s)
			continue
		}
		c.w.WriteByte('"')
		c.w.WriteString(strings.ReplaceAll(s, `"`, `""`))
		c.w.WriteByte('"')
	}
	_, err := c.w.WriteString("\r\n")
	return err
}

func (c *csvWriter) close() error { return c.w.Flush() }

// formulaStart reports whether a spreadsheet would take the cell s (the
// text of v) for a formula.
func formulaStart(v any, s string) bool {
	switch v.(type) {
	case int64, int, float64, nil:
		return false
	}
	return s != "" && strings.IndexByte("=+-@\t\r", s[0]) >= 0
}

// tableSample is how many rows a table reads to size its columns; later
// rows are cut to those widths, so memory stays bounded.
const tableSample = 1000

// tableWriter writes aligned columns separated by two spaces. When width is
// set, the widest columns are narrowed until a line fits, and values are cut
// with "…".
type tableWriter struct {
	w      *bufio.Writer
	width  int
	color  bool
	cols   []column
	sample [][]string
	widths []int // nil until sized
}

func (t *tableWriter) header(cols []column) error {
	t.cols = cols
	return nil
}

func (t *tableWriter) row(vals []any) error {
	cells := make([]string, len(vals))
	for i, v := range vals {
		cells[i] = tableCell(v, t.cols[i].kind)
	}
	if t.widths != nil {
		return t.line(cells, false)
	}
	t.sample = append(t.sample, cells)
	if len(t.sample) >= tableSample {
		return t.flushSample()
	}
	return nil
}

func (t *tableWriter) flushSample() error {
	t.widths = make([]int, len(t.cols))
	for i, c := range t.cols {
		t.widths[i] = displayWidth(termText(c.name))
	}
	for _, cells := range t.sample {
		for i, s := range cells {
			t.widths[i] = max(t.widths[i], displayWidth(s))
		}
	}
	fitWidths(t.widths, t.width)
	names := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = termText(c.name) // a query's column names come from its SQL
	}
	if err := t.line(names, true); err != nil {
		return err
	}
	for _, cells := range t.sample {
		if err := t.line(cells, false); err != nil {
			return err
		}
	}
	t.sample = nil
	return nil
}

// fitWidths makes the columns and their two-space gaps fit in total (0: no
// limit). Columns narrower than a fair share of the room keep their width;
// the wider ones share what is left equally, down to 4 columns each.
func fitWidths(widths []int, total int) {
	if total <= 0 || len(widths) == 0 {
		return
	}
	room := total - 2*(len(widths)-1)
	order := make([]int, len(widths))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return widths[a] - widths[b] })
	for k, i := range order {
		left := len(order) - k
		share := room / left
		if widths[i] <= share {
			room -= widths[i]
			continue
		}
		// This column and all wider ones get the share; the first few
		// take the remainder's extra column each.
		extra := room - share*left
		if share < 4 {
			share, extra = 4, 0
		}
		for j, wide := range order[k:] {
			widths[wide] = share
			if j < extra {
				widths[wide]++
			}
		}
		return
	}
}

func (t *tableWriter) line(cells []string, head bool) error {
	var b strings.Builder
	for i, s := range cells {
		s = cut(s, t.widths[i])
		if head && t.color {
			b.WriteString("\x1b[1m" + s + "\x1b[0m")
		} else {
			b.WriteString(s)
		}
		if i < len(cells)-1 {
			b.WriteString(strings.Repeat(" ", t.widths[i]-displayWidth(s)+2))
		}
	}
	// An empty last cell leaves the padding before it: drop it.
	_, err := t.w.WriteString(strings.TrimRight(b.String(), " ") + "\n")
	return err
}

func (t *tableWriter) close() error {
	if t.widths == nil && t.cols != nil {
		if err := t.flushSample(); err != nil {
			return err
		}
	}
	return t.w.Flush()
}

// tableEscaper shows line breaks and tabs in table cells as escapes, so that
// a row stays on one line; termText escapes the other controls.
var tableEscaper = strings.NewReplacer("\r\n", `\n`, "\n", `\n`, "\r", `\r`, "\t", `\t`)

func tableCell(v any, kind colKind) string {
	switch v := v.(type) {
	case nil:
		return ""
	case int64:
		switch kind {
		case kindTime:
			return time.UnixMilli(v).Format("2006-01-02 15:04:05")
		case kindDuration:
			return formatDuration(v)
		}
	case []byte:
		return "x'" + hex.EncodeToString(v) + "'"
	}
	return termText(tableEscaper.Replace(text(v)))
}

// cut shortens s to w columns, ending it with "…" if anything was cut.
func cut(s string, w int) string {
	if displayWidth(s) <= w {
		return s
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		rw := runeWidth(r)
		if n+rw > w-1 {
			break
		}
		b.WriteRune(r)
		n += rw
	}
	b.WriteString("…")
	return b.String()
}

func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		n += runeWidth(r)
	}
	return n
}

// runeWidth is the columns r takes in a terminal: 0 for combining marks, 2
// for East Asian wide characters and emoji, 1 otherwise.
func runeWidth(r rune) int {
	switch {
	case r < 0x300:
		return 1
	case unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf):
		return 0
	case r >= 0x1100 && r <= 0x115f, r >= 0x2e80 && r <= 0xa4cf && r != 0x303f,
		r >= 0xac00 && r <= 0xd7a3, r >= 0xf900 && r <= 0xfaff, r >= 0xfe30 && r <= 0xfe4f,
		r >= 0xff00 && r <= 0xff60, r >= 0xffe0 && r <= 0xffe6, r >= 0x1f300 && r <= 0x1f64f,
		r >= 0x1f900 && r <= 0x1f9ff, r >= 0x20000 && r <= 0x3fffd:
		return 2
	}
	return 1
}

// formatDuration shows ms as the guide does: 2m 34s, 1h 5m, 3d 2h, 450ms.
func formatDuration(ms int64) string {
	if ms < 0 {
		return "-" + formatDuration(-ms)
	}
	if ms < 1000 {
		return strconv.FormatInt(ms, 10) + "ms"
	}
	d := time.Duration(ms) * time.Millisecond
	days, h, m, s := int64(d/(24*time.Hour)), int64(d/time.Hour)%24, int64(d/time.Minute)%60, int64(d/time.Second)%60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm %ds", m, s)
	}
	return fmt.Sprintf("%.1fs", float64(ms)/1000)
}

// formatCount writes n with thousands separators: 1,234.
func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// formatBytes shows a size in decimal units: 15.2 MB.
func formatBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), 0
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", f, []string{"B", "kB", "MB", "GB", "TB"}[i])
}

// recordColumns are a record's fields, in the table's column order.
var recordColumns = []column{
	{"id", kindPlain}, {"sessionId", kindPlain}, {"eventType", kindPlain}, {"agentType", kindPlain},
	{"mode", kindPlain}, {"prompt", kindPlain}, {"streamData", kindPlain}, {"sandboxId", kindPlain},
	{"repoUrl", kindPlain}, {"metadata", kindPlain}, {"timestamp", kindTime},
}

// recordValue is field i (in recordColumns order) of r; empty optional
// fields are nil, as the NULL they are stored as.
func recordValue(r *vibekit.Record, i int) any {
	opt := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	switch i {
	case 0:
		return r.ID
	case 1:
		return r.SessionID
	case 2:
		return string(r.EventType)
	case 3:
		return r.AgentType
	case 4:
		return opt(r.Mode)
	case 5:
		return opt(r.Prompt)
	case 6:
		return opt(r.StreamData)
	case 7:
		return opt(r.SandboxID)
	case 8:
		return opt(r.RepoURL)
	case 9:
		if len(r.Metadata) == 0 {
			return nil
		}
		return r.Metadata
	}
	return r.Timestamp
}

// selectColumns applies --fields (a comma-separated list, in the order
// given) and --exclude to cols, returning the chosen indexes.
func selectColumns(cols []column, fields, exclude string) ([]int, error) {
	index := func(flag, name string) (int, error) {
		for i, c := range cols {
			if c.name == name {
				return i, nil
			}
		}
		names := make([]string, len(cols))
		for i, c := range cols {
			names[i] = c.name
		}
		return 0, usageErrorf("%s: no field %q (fields: %s)", flag, name, strings.Join(names, ", "))
	}
	var out []int
	if fields == "" {
		for i := range cols {
			out = append(out, i)
		}
	} else {
		for _, name := range strings.Split(fields, ",") {
			if name = strings.TrimSpace(name); name == "" {
				continue
			}
			i, err := index("--fields", name)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(out, i) {
				out = append(out, i)
			}
		}
	}
	for _, name := range strings.Split(exclude, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		i, err := index("--exclude", name)
		if err != nil {
			return nil, err
		}
		out = slices.DeleteFunc(out, func(j int) bool { return j == i })
	}
	if len(out) == 0 {
		return nil, usageErrorf("--fields and --exclude leave no field to print")
	}
	return out, nil
}
