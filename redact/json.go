package redact

import (
	"bytes"
	"encoding/json"
	"slices"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// frame is an object or array being walked, with the object's current key.
type frame struct {
	obj bool
	key string
}

// rewriteJSON redacts every string in the JSON text src (object keys
// included), replaces the values at hashed paths with their hash, and, at
// level All, card numbers written as JSON numbers. Everything else is
// copied byte for byte: key order, number literals (so no precision is
// lost) and the escapes of strings left alone. src must be valid JSON (the
// caller checks); ok is false if its brackets or strings do not close.
func (r *Redactor) rewriteJSON(src []byte) (out []byte, ok bool) {
	var (
		stack []frame
		pem   pemState // a private key split over strings (an array of lines)
	)
	out = make([]byte, 0, len(src)+16)
	expectKey := false
	for i := 0; i < len(src); {
		switch c := src[i]; c {
		case ' ', '\t', '\n', '\r', ':':
			out = append(out, c)
			i++
		case ',':
			out = append(out, c)
			i++
			expectKey = len(stack) > 0 && stack[len(stack)-1].obj
		case '{', '[':
			if !expectKey && r.hashed(stack) {
				end, ok := skipComposite(src, i)
				if !ok {
					return nil, false
				}
				out = vibekit.AppendString(out, r.hash(src[i:end]))
				i = end
				continue
			}
			stack = append(stack, frame{obj: c == '{'})
			expectKey = c == '{'
			out = append(out, c)
			i++
		case '}', ']':
			if len(stack) == 0 || stack[len(stack)-1].obj != (c == '}') {
				return nil, false
			}
			stack = stack[:len(stack)-1]
			expectKey = false
			out = append(out, c)
			i++
		case '"':
			end := stringEnd(src, i)
			if end < 0 {
				return nil, false
			}
			raw := src[i:end]
			str, ok := unquote(raw)
			if !ok {
				return nil, false
			}
			switch {
			case expectKey:
				stack[len(stack)-1].key = str
				expectKey = false
				out = r.appendRedacted(out, raw, str, nil)
			case r.hashed(stack) && !isHash(str):
				out = vibekit.AppendString(out, r.hash([]byte(str)))
			case r.level != None && len(stack) > 0 && stack[len(stack)-1].obj && (len(str) == 40 || len(str) == 88):
				// A member's name may say that its value is a secret.
				if kind, ok := assignedValue(stack[len(stack)-1].key, str); ok {
					out = vibekit.AppendString(out, markerStart+kind+"]")
				} else {
					out = r.appendRedacted(out, raw, str, &pem)
				}
			default:
				out = r.appendRedacted(out, raw, str, &pem)
			}
			i = end
		default: // a number, true, false or null
			end := i
			for end < len(src) && !delimiter(src[end]) {
				end++
			}
			lit := src[i:end]
			if len(lit) == 0 || expectKey {
				return nil, false
			}
			switch {
			case r.hashed(stack) && string(lit) != "null":
				out = vibekit.AppendString(out, r.hash(lit))
			case r.level == All && isCardNumber(lit):
				out = vibekit.AppendString(out, markerStart+KindCard+"]")
			default:
				out = append(out, lit...)
			}
			i = end
		}
	}
	if len(stack) != 0 {
		return nil, false
	}
	return out, true
}

func delimiter(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\n', '\r', ':', '"', '{', '[':
		return true
	}
	return false
}

// hashed reports whether the value about to be read, inside stack, is at
// one of the hashed metadata paths.
func (r *Redactor) hashed(stack []frame) bool {
	if len(r.paths) == 0 || len(stack) == 0 {
		return false
	}
	for _, p := range r.paths {
		if len(p) != len(stack) {
			continue
		}
		if slices.EqualFunc(p, stack, func(k string, f frame) bool { return f.obj && f.key == k }) {
			return true
		}
	}
	return false
}

// appendRedacted appends the string str, read from raw, redacted; raw as it
// was when nothing in it is a secret.
func (r *Redactor) appendRedacted(out, raw []byte, str string, st *pemState) []byte {
	red := r.redact(str, st)
	if red == str {
		return append(out, raw...)
	}
	return vibekit.AppendString(out, red)
}

// stringEnd returns the index after the string that starts at src[i], or
// -1 if it does not end.
func stringEnd(src []byte, i int) int {
	for j := i + 1; j < len(src); {
		switch src[j] {
		case '"':
			return j + 1
		case '\\':
			j += 2
		default:
			j++
		}
	}
	return -1
}

// unquote decodes a JSON string with its quotes.
func unquote(raw []byte) (string, bool) {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// skipComposite returns the index after the object or array at src[i].
func skipComposite(src []byte, i int) (int, bool) {
	depth := 0
	for i < len(src) {
		switch src[i] {
		case '"':
			end := stringEnd(src, i)
			if end < 0 {
				return 0, false
			}
			i = end
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, true
			}
		}
		i++
	}
	return 0, false
}

// isCardNumber reports whether a JSON number literal is a card number.
func isCardNumber(lit []byte) bool {
	if len(lit) < 13 || len(lit) > 19 || lit[0] < '2' || lit[0] > '6' {
		return false
	}
	for _, c := range lit {
		if !isDigit(c) {
			return false
		}
	}
	return luhn(lit)
}
