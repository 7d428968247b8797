package vibekit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Line kinds, as DecodeLine classifies an input line.
type LineKind int

const (
	// LineText is not a telemetry record (plain text, or another tool's JSON):
	// it is stored as a stream row whose streamData is the line.
	LineText LineKind = iota
	// LineRecord is a telemetry record, decoded field for field.
	LineRecord
	// LineReject is a telemetry record with a field that cannot be coerced;
	// it goes to the rejects table with the reason.
	LineReject
)

// Timestamps outside (0, maxTimestamp] are not sane and give way to the read time.
const (
	maxTimestamp = 253402300799999 // 9999-12-31T23:59:59.999Z
	// A number below this is taken as Unix seconds, not milliseconds (it would
	// otherwise be a time in early 1973).
	secondsBelow = 100_000_000_000
)

// DecodeLine classifies line and, for a record, fills rec. The rules, which the
// README documents:
//   - A JSON object with an "eventType" or "sessionId" key is a record. Anything
//     else, including invalid JSON and JSON nested too deep to decode, is text.
//   - String fields take strings; a number is kept as its literal text; null is
//     empty. A boolean, object or array in a string field rejects the record.
//   - eventType must be start, stream, end or error.
//   - metadata must be an object (or null); it is stored compacted.
//   - timestamp is Unix ms; a number below 1e11 is Unix seconds; a fraction is
//     dropped; a string holding a number or an RFC 3339 time is converted.
//     Missing, null or not sane (not after 1970, after 9999): the read time.
//   - Other keys are kept in metadata under their own names, unless metadata
//     already has that key; "id" is dropped, as the store assigns ids.
//   - Invalid UTF-8 in strings becomes U+FFFD, as in encoding/json.
//
// The returned error is the reject reason when the kind is LineReject.
func DecodeLine(line []byte, readTime time.Time, rec *Record) (LineKind, error) {
	*rec = Record{}
	d := decoder{data: line}
	d.skipWS()
	if d.pos >= len(d.data) || d.data[d.pos] != '{' {
		return LineText, nil
	}
	var (
		isRecord  bool
		fieldErr  error
		haveTS    bool
		extras    []extraField
		metaSeen  bool
		eventType string
	)
	reject := func(err error) {
		if fieldErr == nil {
			fieldErr = err
		}
	}
	d.pos++
	d.skipWS()
	if d.peek() == '}' {
		d.pos++
	} else {
		for {
			d.skipWS()
			key, ok := d.readString()
			if !ok {
				return LineText, nil
			}
			d.skipWS()
			if d.peek() != ':' {
				return LineText, nil
			}
			d.pos++
			d.skipWS()
			start := d.pos
			kind, ok := d.skipValue()
			if !ok {
				return LineText, nil
			}
			raw := d.data[start:d.pos]
			switch key {
			case "sessionId":
				isRecord = true
				rec.SessionID = stringField(key, kind, raw, reject)
			case "eventType":
				isRecord = true
				eventType = stringField(key, kind, raw, reject)
				if kind == 'n' {
					reject(fmt.Errorf("eventType is null"))
				}
			case "agentType":
				rec.AgentType = stringField(key, kind, raw, reject)
			case "mode":
				rec.Mode = stringField(key, kind, raw, reject)
			case "prompt":
				rec.Prompt = stringField(key, kind, raw, reject)
			case "streamData":
				rec.StreamData = stringField(key, kind, raw, reject)
			case "sandboxId":
				rec.SandboxID = stringField(key, kind, raw, reject)
			case "repoUrl":
				rec.RepoURL = stringField(key, kind, raw, reject)
			case "metadata":
				switch kind {
				case '{':
					metaSeen = true
					rec.Metadata = raw
				case 'n':
				default:
					reject(fmt.Errorf("metadata must be a JSON object, got %s", kindName(kind)))
				}
			case "timestamp":
				ts, present, err := timestampField(kind, raw)
				if err != nil {
					reject(err)
				}
				if present {
					rec.Timestamp, haveTS = ts, true
				}
			case "id":
			default:
				extras = append(extras, extraField{key, raw})
			}
			d.skipWS()
			c := d.peek()
			d.pos++
			if c == '}' {
				break
			}
			if c != ',' {
				return LineText, nil
			}
		}
	}
	d.skipWS()
	if d.pos != len(d.data) || !isRecord {
		return LineText, nil
	}
	// Validate and compact the metadata now that the line is known to be a
	// record: text lines never pay for it.
	if metaSeen || len(extras) > 0 {
		meta, err := buildMetadata(rec.Metadata, extras)
		if err != nil {
			return LineText, nil
		}
		rec.Metadata = meta
	}
	if fieldErr != nil {
		return LineReject, fieldErr
	}
	if eventType == "" {
		return LineReject, fmt.Errorf("eventType is missing")
	}
	t, err := ParseEventType(eventType)
	if err != nil {
		return LineReject, err
	}
	rec.EventType = t
	if !haveTS {
		rec.Timestamp = readTime.UnixMilli()
	}
	return LineRecord, nil
}

type extraField struct {
	key string
	raw []byte
}

// buildMetadata compacts meta (an object, or nil) and adds the extra fields
// that it does not already hold. It fails if any part is not valid JSON.
func buildMetadata(meta []byte, extras []extraField) (json.RawMessage, error) {
	var buf bytes.Buffer
	if meta == nil {
		buf.WriteString("{}")
	} else if err := json.Compact(&buf, meta); err != nil {
		return nil, err
	}
	if len(extras) == 0 {
		return buf.Bytes(), nil
	}
	var have map[string]json.RawMessage
	if meta != nil {
		if err := json.Unmarshal(buf.Bytes(), &have); err != nil {
			return nil, err
		}
	}
	out := buf.Bytes()[:buf.Len()-1] // drop the closing brace
	empty := len(out) == 1
	for _, e := range extras {
		if _, dup := have[e.key]; dup {
			continue
		}
		var v bytes.Buffer
		if err := json.Compact(&v, e.raw); err != nil {
			return nil, err
		}
		if !empty {
			out = append(out, ',')
		}
		empty = false
		k, _ := json.Marshal(e.key)
		out = append(out, k...)
		out = append(out, ':')
		out = append(out, v.Bytes()...)
	}
	return append(out, '}'), nil
}

func kindName(kind byte) string {
	switch kind {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// stringField coerces a string field: strings as they are, numbers as their
// literal text, null as empty; anything else is a reject reason.
func stringField(key string, kind byte, raw []byte, reject func(error)) string {
	switch kind {
	case '"':
		s, _ := unquote(raw)
		return s
	case '0':
		return string(raw)
	case 'n':
		return ""
	}
	reject(fmt.Errorf("%s must be a string, got %s", key, kindName(kind)))
	return ""
}

// timestampField reads a timestamp value. present is false for null, and for
// values that are not sane, which take the read time instead.
func timestampField(kind byte, raw []byte) (ms int64, present bool, err error) {
	switch kind {
	case 'n':
		return 0, false, nil
	case '0':
		ms, ok := numberMillis(string(raw))
		return ms, ok, nil
	case '"':
		s, _ := unquote(raw)
		s = strings.TrimSpace(s)
		if ms, ok := numberMillis(s); ok {
			return ms, true, nil
		}
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return 0, false, nil // a number, but not a sane time
		}
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			ms := t.UnixMilli()
			return ms, ms > 0 && ms <= maxTimestamp, nil
		}
		return 0, false, fmt.Errorf("timestamp %q is not Unix milliseconds or an RFC 3339 time", s)
	}
	return 0, false, fmt.Errorf("timestamp must be a number, got %s", kindName(kind))
}

// numberMillis converts a JSON number of seconds or milliseconds to sane
// milliseconds; ok is false when it is no number or no sane time.
func numberMillis(s string) (int64, bool) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms > 0 && ms < secondsBelow {
			ms *= 1000
		}
		return ms, ms > 0 && ms <= maxTimestamp
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f || f <= 0 || f > maxTimestamp {
		return 0, false
	}
	if f < secondsBelow {
		f *= 1000
	}
	return int64(f), true
}

// decoder scans one JSON text in place. It never recurses, so nesting depth
// costs no stack; json.Compact later bounds the depth of what is kept.
type decoder struct {
	data []byte
	pos  int
	keys *ValueDecoder // nil: object keys are not kept
}

func (d *decoder) peek() byte {
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

func (d *decoder) skipWS() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// readString reads a string at pos and returns it unescaped.
func (d *decoder) readString() (string, bool) {
	start := d.pos
	if !d.skipString() {
		return "", false
	}
	return unquote(d.data[start:d.pos])
}

// plainInString[c] is true for the bytes a JSON string holds unescaped.
var plainInString = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// skipString moves past a string, checking that it is well formed.
func (d *decoder) skipString() bool {
	if d.peek() != '"' {
		return false
	}
	data := d.data
	i := d.pos + 1
	for i < len(data) {
		c := data[i]
		if plainInString[c] {
			i++
			continue
		}
		switch c {
		case '"':
			d.pos = i + 1
			return true
		case '\\':
			if i+1 >= len(data) {
				return false
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(data) || !isHex4(data[i+2:i+6]) {
					return false
				}
				i += 6
			default:
				return false
			}
		default: // a control character
			return false
		}
	}
	return false
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// skipValue moves past one value and returns its kind: '{', '[', '"', '0'
// (number), 't' (true or false) or 'n' (null).
func (d *decoder) skipValue() (byte, bool) {
	switch c := d.peek(); c {
	case '"':
		return '"', d.skipString()
	case '{', '[':
		return c, d.skipComposite()
	case 't':
		return 't', d.literal("true")
	case 'f':
		return 't', d.literal("false")
	case 'n':
		return 'n', d.literal("null")
	default:
		return '0', d.skipNumber()
	}
}

func (d *decoder) literal(word string) bool {
	if !bytes.HasPrefix(d.data[d.pos:], []byte(word)) {
		return false
	}
	d.pos += len(word)
	return true
}

// skipComposite finds the end of an object or array by matching brackets
// outside strings. It checks bracket balance only; buildMetadata validates
// what is kept.
func (d *decoder) skipComposite() bool {
	depth := 0
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case '"':
			if !d.skipString() {
				return false
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				d.pos++
				return true
			}
		}
		d.pos++
	}
	return false
}

// skipNumber moves past a number in JSON's grammar.
func (d *decoder) skipNumber() bool {
	start := d.pos
	digits := func() int {
		n := 0
		for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
			d.pos++
			n++
		}
		return n
	}
	if d.peek() == '-' {
		d.pos++
	}
	first := d.pos
	if n := digits(); n == 0 || (n > 1 && d.data[first] == '0') {
		d.pos = start
		return false
	}
	if d.peek() == '.' {
		d.pos++
		if digits() == 0 {
			return false
		}
	}
	if c := d.peek(); c == 'e' || c == 'E' {
		d.pos++
		if c := d.peek(); c == '+' || c == '-' {
			d.pos++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

// unquote decodes a well-formed JSON string (with its quotes). Each invalid
// UTF-8 byte and each lone surrogate becomes U+FFFD, as in encoding/json.
func unquote(raw []byte) (string, bool) {
	if len(raw) < 2 {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) {
		return string(body), true
	}
	var b strings.Builder
	b.Grow(len(body))
	for len(body) > 0 {
		j := bytes.IndexByte(body, '\\')
		if j < 0 {
			j = len(body)
		}
		writeValidUTF8(&b, body[:j])
		body = body[j:]
		if len(body) == 0 {
			break
		}
		n := 2
		switch body[1] {
		case 'u':
			r := hexRune(body[2:6])
			n = 6
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if len(body) >= 12 && body[6] == '\\' && body[7] == 'u' {
					r2 = utf16.DecodeRune(r, hexRune(body[8:12]))
				}
				if r2 != utf8.RuneError {
					n = 12
				}
				r = r2
			}
			b.WriteRune(r)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		default: // '"', '\\', '/'
			b.WriteByte(body[1])
		}
		body = body[n:]
	}
	return b.String(), true
}

// writeValidUTF8 writes p with each invalid byte replaced by U+FFFD.
func writeValidUTF8(b *strings.Builder, p []byte) {
	for len(p) > 0 {
		if utf8.Valid(p) {
			b.Write(p)
			return
		}
		i := 0
		for i < len(p) {
			r, size := utf8.DecodeRune(p[i:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			i += size
		}
		b.Write(p[:i])
		b.WriteRune(utf8.RuneError)
		p = p[i+1:]
	}
}

func hexRune(h []byte) rune {
	var r rune
	for _, c := range h {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// ValidUTF8 returns b as a string with each invalid UTF-8 byte replaced by
// U+FFFD, the rule strings in records follow.
func ValidUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	writeValidUTF8(&sb, b)
	return sb.String()
}

// maxValueDepth bounds the nesting DecodeValue follows, as encoding/json does.
const maxValueDepth = 10000

// DecodeValue decodes one JSON text into Go values: map[string]any, []any,
// string, bool, nil, and numbers as int when they fit, float64 when they
// have a fraction or exponent, and json.Number (exact) for larger integers.
// These are the values jq programs take; it is several times faster than
// encoding/json's decoding into any.
func DecodeValue(data []byte) (any, error) { return decodeValue(data, nil) }

func decodeValue(data []byte, keys *ValueDecoder) (any, error) {
	d := decoder{data: data, keys: keys}
	d.skipWS()
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	d.skipWS()
	if d.pos != len(d.data) {
		return nil, fmt.Errorf("invalid JSON: trailing data at byte %d", d.pos)
	}
	return v, nil
}

// ValueDecoder decodes JSON texts as DecodeValue does, and keeps the strings
// of the object keys it meets: inputs of one kind repeat a few dozen keys,
// which are then allocated once rather than once per value. The values it
// returns share those strings. Its zero value is ready to use; it is not
// safe for concurrent use.
type ValueDecoder struct {
	keys map[string]string
}

// Bounds of a ValueDecoder's keys: longer keys are not kept, nor any more
// once it holds maxKeys (inputs whose keys are data, not names).
const (
	maxKeyLen = 64
	maxKeys   = 4096
)

// Decode decodes one JSON text, as DecodeValue does.
func (vd *ValueDecoder) Decode(data []byte) (any, error) { return decodeValue(data, vd) }

// readKey reads an object key at pos: a kept string if the decoder has one.
func (d *decoder) readKey() (string, bool) {
	if d.keys == nil {
		return d.readString()
	}
	start := d.pos
	if !d.skipString() {
		return "", false
	}
	raw := d.data[start:d.pos]
	body := raw[1 : len(raw)-1]
	if len(body) > maxKeyLen {
		return unquote(raw)
	}
	if k, ok := d.keys.keys[string(body)]; ok { // the lookup does not allocate
		return k, true
	}
	k, ok := unquote(raw)
	// Only a key whose text is its value (no escapes, valid UTF-8) is kept.
	if ok && len(d.keys.keys) < maxKeys && k == string(body) {
		if d.keys.keys == nil {
			d.keys.keys = make(map[string]string, 64)
		}
		d.keys.keys[k] = k
	}
	return k, ok
}

func (d *decoder) syntaxError() error {
	return fmt.Errorf("invalid JSON at byte %d", d.pos)
}

func (d *decoder) value(depth int) (any, error) {
	if depth > maxValueDepth {
		return nil, fmt.Errorf("invalid JSON: nested deeper than %d", maxValueDepth)
	}
	switch c := d.peek(); c {
	case '{':
		d.pos++
		m := map[string]any{}
		d.skipWS()
		if d.peek() == '}' {
			d.pos++
			return m, nil
		}
		for {
			d.skipWS()
			k, ok := d.readKey()
			if !ok {
				return nil, d.syntaxError()
			}
			d.skipWS()
			if d.peek() != ':' {
				return nil, d.syntaxError()
			}
			d.pos++
			d.skipWS()
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			m[k] = v
			d.skipWS()
			switch d.peek() {
			case ',':
				d.pos++
			case '}':
				d.pos++
				return m, nil
			default:
				return nil, d.syntaxError()
			}
		}
	case '[':
		d.pos++
		a := []any{}
		d.skipWS()
		if d.peek() == ']' {
			d.pos++
			return a, nil
		}
		for {
			d.skipWS()
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
			d.skipWS()
			switch d.peek() {
			case ',':
				d.pos++
			case ']':
				d.pos++
				return a, nil
			default:
				return nil, d.syntaxError()
			}
		}
	case '"':
		s, ok := d.readString()
		if !ok {
			return nil, d.syntaxError()
		}
		return s, nil
	case 't':
		if d.literal("true") {
			return true, nil
		}
	case 'f':
		if d.literal("false") {
			return false, nil
		}
	case 'n':
		if d.literal("null") {
			return nil, nil
		}
	default:
		start := d.pos
		if d.skipNumber() {
			lit := string(d.data[start:d.pos])
			if n, err := strconv.ParseInt(lit, 10, 0); err == nil {
				return int(n), nil
			}
			if strings.ContainsAny(lit, ".eE") {
				if f, err := strconv.ParseFloat(lit, 64); err == nil {
					return f, nil
				}
			}
			return json.Number(lit), nil
		}
	}
	return nil, d.syntaxError()
}
