package vibekit

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"unicode/utf8"
)

// RecordFromMap builds rec from m, a JSON object already decoded (the output
// of a jq map program), by the rules DecodeLine applies to an input line:
//   - String fields take strings; a number becomes its JSON text; a boolean,
//     object or array is an error.
//   - eventType must be start, stream, end or error.
//   - metadata must be an object; it is stored as compact JSON, keys sorted.
//   - timestamp is Unix ms (below 1e11: seconds), or a string holding a number
//     or an RFC 3339 time; a time that is not sane keeps def's timestamp.
//   - Other keys go into metadata under their own names, unless metadata has
//     that key; "id" is dropped.
//
// A field that is absent or null keeps its value from def, so def carries
// the defaults (session, agent, event type, read time). On error rec is
// left in an unspecified state.
func RecordFromMap(m map[string]any, def *Record, rec *Record) error {
	*rec = *def
	var (
		extras   []string
		metadata map[string]any
		metaSet  bool
	)
	for k, v := range m {
		var err error
		switch k {
		case "sessionId":
			err = stringValue(k, v, &rec.SessionID)
		case "eventType":
			var s string
			if err = stringValue(k, v, &s); err == nil && v != nil {
				rec.EventType, err = ParseEventType(s)
			}
		case "agentType":
			err = stringValue(k, v, &rec.AgentType)
		case "mode":
			err = stringValue(k, v, &rec.Mode)
		case "prompt":
			err = stringValue(k, v, &rec.Prompt)
		case "streamData":
			err = stringValue(k, v, &rec.StreamData)
		case "sandboxId":
			err = stringValue(k, v, &rec.SandboxID)
		case "repoUrl":
			err = stringValue(k, v, &rec.RepoURL)
		case "metadata":
			switch v := v.(type) {
			case nil:
			case map[string]any:
				metadata, metaSet = v, true
			default:
				err = fmt.Errorf("metadata must be a JSON object, got %s", KindOf(v))
			}
		case "timestamp":
			err = timestampValue(v, &rec.Timestamp)
		case "id":
		default:
			extras = append(extras, k)
		}
		if err != nil {
			return err
		}
	}
	if !rec.EventType.Valid() {
		return fmt.Errorf("eventType is missing")
	}
	if !metaSet && len(extras) == 0 {
		return nil
	}
	if len(extras) > 0 {
		merged := make(map[string]any, len(metadata)+len(extras))
		for k, v := range metadata {
			merged[k] = v
		}
		for _, k := range extras {
			if _, dup := merged[k]; !dup {
				merged[k] = m[k]
			}
		}
		metadata = merged
	}
	b, err := AppendValue(nil, metadata)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	rec.Metadata = b
	return nil
}

// stringValue sets *dst from a string field's value; null keeps *dst.
func stringValue(key string, v any, dst *string) error {
	switch v := v.(type) {
	case nil:
	case string:
		if !utf8.ValidString(v) {
			v = ValidUTF8([]byte(v))
		}
		*dst = v
	case bool, map[string]any, []any:
		return fmt.Errorf("%s must be a string, got %s", key, KindOf(v))
	default:
		b, err := AppendValue(nil, v)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		*dst = string(b)
	}
	return nil
}

// timestampValue sets *dst from a timestamp value when it is a sane time.
func timestampValue(v any, dst *int64) error {
	kind, raw := byte('0'), []byte(nil)
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		kind, raw = '"', AppendString(nil, v)
	case bool, map[string]any, []any:
		return fmt.Errorf("timestamp must be a number, got %s", KindOf(v))
	default:
		b, err := AppendValue(nil, v)
		if err != nil {
			return fmt.Errorf("timestamp: %w", err)
		}
		if string(b) == "null" { // NaN
			return nil
		}
		raw = b
	}
	ms, ok, err := timestampField(kind, raw)
	if ok {
		*dst = ms
	}
	return err
}

// KindOf names the JSON kind of a decoded value, for error messages:
// "null", "a boolean", "a string", "an object", "an array" or "a number".
func KindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return "a number"
}

// AppendValue appends v as compact JSON, object keys sorted. v holds the
// values DecodeValue and jq programs produce: nil, bool, string, int, int64,
// float64, *big.Int, json.Number, []any and map[string]any. NaN is written as
// null and infinities as the largest finite float, as jq does.
func AppendValue(dst []byte, v any) ([]byte, error) {
	return appendValue(dst, v, 0)
}

func appendValue(dst []byte, v any, depth int) ([]byte, error) {
	if depth > maxValueDepth {
		return dst, fmt.Errorf("value nested deeper than %d", maxValueDepth)
	}
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		return strconv.AppendBool(dst, v), nil
	case string:
		return AppendString(dst, v), nil
	case int:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(dst, v, 10), nil
	case float64:
		return appendFloat(dst, v), nil
	case *big.Int:
		return v.Append(dst, 10), nil
	case json.Number:
		if !json.Valid([]byte(v)) {
			return dst, fmt.Errorf("invalid number %q", string(v))
		}
		return append(dst, v...), nil
	case []any:
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendValue(dst, e, depth+1); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, k)
			dst = append(dst, ':')
			var err error
			if dst, err = appendValue(dst, v[k], depth+1); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	}
	return dst, fmt.Errorf("cannot encode a %T as JSON", v)
}

// appendFloat formats f as encoding/json does.
func appendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "null"...)
	case math.IsInf(f, 1):
		f = math.MaxFloat64
	case math.IsInf(f, -1):
		f = -math.MaxFloat64
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		if n := len(dst) - start; n >= 4 && dst[len(dst)-4] == 'e' && dst[len(dst)-3] == '-' && dst[len(dst)-2] == '0' {
			dst[len(dst)-2] = dst[len(dst)-1]
			dst = dst[:len(dst)-1]
		}
	}
	return dst
}
