package vibekit

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends r as one JSON object with the guide's field names in the
// table's column order. Empty optional fields are null, as the NULL they are
// stored as; metadata is the stored object itself (a string if it is not JSON).
func AppendJSON(dst []byte, r *Record) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, r.ID, 10)
	dst = append(dst, `,"sessionId":`...)
	dst = AppendString(dst, r.SessionID)
	dst = append(dst, `,"eventType":`...)
	dst = AppendString(dst, string(r.EventType))
	dst = append(dst, `,"agentType":`...)
	dst = AppendString(dst, r.AgentType)
	dst = append(dst, `,"mode":`...)
	dst = appendOptional(dst, r.Mode)
	dst = append(dst, `,"prompt":`...)
	dst = appendOptional(dst, r.Prompt)
	dst = append(dst, `,"streamData":`...)
	dst = appendOptional(dst, r.StreamData)
	dst = append(dst, `,"sandboxId":`...)
	dst = appendOptional(dst, r.SandboxID)
	dst = append(dst, `,"repoUrl":`...)
	dst = appendOptional(dst, r.RepoURL)
	dst = append(dst, `,"metadata":`...)
	switch {
	case len(r.Metadata) == 0:
		dst = append(dst, "null"...)
	case json.Valid(r.Metadata):
		dst = append(dst, r.Metadata...)
	default:
		dst = AppendString(dst, string(r.Metadata))
	}
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, r.Timestamp, 10)
	return append(dst, '}')
}

func appendOptional(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	return AppendString(dst, s)
}

// safe[c] is true for the ASCII bytes a JSON string holds as they are.
var safe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string, escaped as encoding/json does but
// without HTML escaping: invalid UTF-8 becomes \ufffd.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
