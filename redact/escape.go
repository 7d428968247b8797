package redact

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// unescaped is a text with its JSON escapes decoded, and for each byte of
// it the span of the original text it came from.
type unescaped struct {
	text       string
	start, end []int // of text[k] in the original
}

// unescape decodes the JSON escapes in s (\" \\ \/ \b \f \n \r \t \uXXXX,
// surrogate pairs included); anything else is kept as it is. ok is false
// when s has no escape to decode.
func unescape(s string) (u unescaped, ok bool) {
	var b []byte
	for i := 0; i < len(s); {
		c := s[i]
		n, dec := 1, [utf8.UTFMax]byte{c}
		size := 1
		if c == '\\' && i+1 < len(s) {
			switch e := s[i+1]; e {
			case '"', '\\', '/':
				n, dec[0] = 2, e
			case 'b':
				n, dec[0] = 2, '\b'
			case 'f':
				n, dec[0] = 2, '\f'
			case 'n':
				n, dec[0] = 2, '\n'
			case 'r':
				n, dec[0] = 2, '\r'
			case 't':
				n, dec[0] = 2, '\t'
			case 'u':
				if r, ok := hex4(s, i+2); ok {
					n = 6
					if 0xD800 <= r && r < 0xDC00 && i+12 <= len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
						if lo, ok := hex4(s, i+8); ok && 0xDC00 <= lo && lo < 0xE000 {
							r, n = (r-0xD800)<<10+(lo-0xDC00)+0x10000, 12
						}
					}
					size = utf8.EncodeRune(dec[:], r)
				}
			}
		}
		if n > 1 {
			ok = true
		}
		if b == nil {
			b = make([]byte, 0, len(s))
			u.start, u.end = make([]int, 0, len(s)), make([]int, 0, len(s))
		}
		for k := range size {
			b = append(b, dec[k])
			u.start = append(u.start, i)
			u.end = append(u.end, i+n)
		}
		i += n
	}
	u.text = string(b)
	return u, ok
}

// hidesASCII reports whether s has a JSON escape that could hide part of a
// secret: \/ or a \u escape of a character that secrets are made of (a
// letter, a digit, - _ . / : @ + = ~). Other escapes, such as the \u003c
// of an HTML-safe encoder, only separate words: see boundary.
func hidesASCII(s string) bool {
	for i := 0; ; {
		j := strings.IndexByte(s[i:], '\\')
		if j < 0 || i+j+1 >= len(s) {
			return false
		}
		i += j + 1
		switch {
		case s[i] == '/':
			return true
		case s[i] == 'u' && i+4 < len(s) && s[i+1] == '0' && s[i+2] == '0' && hexChar(s[i+3]) && hexChar(s[i+4]):
			if c := unhex(s[i+3])<<4 | unhex(s[i+4]); keyChar(c) || strings.IndexByte("./:@+=~", c) >= 0 {
				return true
			}
		case s[i] == '\\':
			i++ // an escaped backslash
		}
	}
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// escapeBefore reports whether the word starting at s[i] follows a JSON
// escape: \n, \t, \r, \b, \f or \uXXXX.
func escapeBefore(s string, i int) bool {
	if i >= 2 && s[i-2] == '\\' && strings.IndexByte("nrtbf", s[i-1]) >= 0 {
		return true
	}
	return i >= 6 && s[i-6] == '\\' && s[i-5] == 'u' && hexChar(s[i-4]) && hexChar(s[i-3]) && hexChar(s[i-2]) && hexChar(s[i-1])
}

// hex4 reads the 4 hex digits at s[i:].
func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	v, err := strconv.ParseUint(s[i:i+4], 16, 32)
	return rune(v), err == nil
}
