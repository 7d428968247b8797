package redact

import (
	"slices"
	"strings"
)

// match is a span of text to replace with "[REDACTED:<kind>]".
type match struct {
	start, end int
	kind       string
}

const markerStart = "[REDACTED:"

// Minimum lengths after the prefix: real keys are far longer, and the
// guide's own example "sk-1234567890" is a near miss, kept.
const (
	minOpenAI    = 20 // after "sk-"
	minAnthropic = 20 // after "sk-ant-"
	lenAWS       = 16 // after "AKIA"/"ASIA", exactly
	minGitHub    = 36 // after "ghp_" etc.
	minGitHubPAT = 30 // after "github_pat_"
	minSlack     = 10 // after "xoxb-" etc.
	minJWTPart   = 10 // header and payload
)

// find appends the secrets in s to ms. With st, s is the next line of a
// stream: a private key left open by the line before is closed here, and
// one this line leaves open is remembered.
func (r *Redactor) find(s string, ms []match, st *pemState) []match {
	from := 0
	if st != nil && st.in {
		end := strings.Index(s, st.end)
		st.lines++
		switch {
		case end >= 0:
			st.in = false
			from = end + len(st.end)
			ms = append(ms, match{0, from, KindPEM})
		case st.lines > maxPEMLines:
			st.in = false
		case !pemBody(s):
			// Not a line of a key: the block's END was lost (in the part of
			// an over-long line that was cut off, say), and this line is
			// the input's own, scanned as any other.
			st.in = false
		default:
			return append(ms, match{0, len(s), KindPEM})
		}
	}
	text := s[from:]
	n := len(ms)
	ms = r.scan(text, ms, st)
	if hidesASCII(text) {
		// A secret inside JSON text may be escaped in part ("\u0073k-",
		// "https:\/\/"): look at the text unescaped too, and redact the
		// escaped text it came from. (An escape next to a secret, as in
		// "\nsk-...", is a word boundary: see boundary.)
		if u, ok := unescape(text); ok {
			for _, m := range r.scan(u.text, nil, nil) {
				ms = append(ms, match{u.start[m.start], u.end[m.end-1], m.kind})
			}
		}
	}
	if from > 0 {
		for i := n; i < len(ms); i++ {
			ms[i].start += from
			ms[i].end += from
		}
	}
	return ms
}

// pemBody reports whether s may be a line inside a PEM block: base64 (a
// line of the key), a header of an encrypted key (Proc-Type: ..., DEK-Info:
// ...), or blank.
func pemBody(s string) bool {
	t := strings.TrimSpace(s)
	if i := strings.Index(t, ": "); i > 0 && i < 20 && strings.Trim(t[:i], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-") == "" {
		return true
	}
	for i := 0; i < len(t); i++ {
		if !b64Char(t[i]) {
			return false
		}
	}
	return true
}

// scan appends the secrets in text to ms: the built-in kinds of r's level,
// then r's patterns.
func (r *Redactor) scan(text string, ms []match, st *pemState) []match {
	if r.level != None {
		has := markersOf(text)
		for k := range len(triggers) {
			if has&(1<<k) != 0 {
				ms = scanTrigger(text, triggers[k], ms, st)
			}
		}
		if has&markerJ != 0 {
			ms = scanJWT(text, ms)
		}
		ms = scanAnchored(text, ms, has) // after the others: a known kind wins over bearer
		ms = scanDatabricks(text, ms)
		if has&markerAt != 0 {
			ms = scanURLPassword(text, ms)
			if r.level == All {
				ms = scanEmail(text, ms)
			}
		}
		if r.level == All {
			ms = scanCards(text, ms)
		}
	}
	for _, p := range r.patterns {
		if p.prefix != "" && !strings.Contains(text, p.prefix) {
			continue
		}
		for _, loc := range p.Re.FindAllStringIndex(text, -1) {
			if loc[1] > loc[0] {
				ms = append(ms, match{loc[0], loc[1], p.Name})
			}
		}
	}
	return ms
}

// The marker bytes the scanners search for, as bits: the triggers first
// (bit k for triggers[k]), then the anchors (bit len(triggers)+k for
// anchors[k]), then 'J' (JWTs) and '@' (URL passwords, addresses).
const (
	markerJ   = 1 << (len(triggers) + len(anchors))
	markerAt  = markerJ << 1
	markerAll = markerAt<<1 - 1
)

var markerBit = func() (t [256]uint16) {
	for k := range len(triggers) {
		t[triggers[k]] |= 1 << k
	}
	for k := range len(anchors) {
		t[anchors[k]] |= 1 << (len(triggers) + k)
	}
	t['J'] |= markerJ
	t['@'] |= markerAt
	return t
}()

// shortText is the length under which one look at every byte, to learn
// which markers a text holds, costs less than a byte search per marker.
const shortText = 64

// markersOf returns the bits of the marker bytes in s; for a long s, all
// of them (each scanner's own byte search is then the cheaper look).
func markersOf(s string) uint16 {
	if len(s) >= shortText {
		return markerAll
	}
	var has uint16
	for i := 0; i < len(s); i++ {
		has |= markerBit[s[i]]
	}
	return has
}

// apply replaces the matches in s. Overlapping matches merge. Text inside
// an earlier "[REDACTED:...]" marker is never matched again: a match is cut
// back to the text around the markers, so that redacting twice changes
// nothing.
func apply(s string, ms []match) string {
	// Stable: of matches that start together, the first found names the kind.
	slices.SortStableFunc(ms, func(a, b match) int { return a.start - b.start })
	markers := markersIn(s)
	var b strings.Builder
	b.Grow(len(s))
	last := 0
	for i := 0; i < len(ms); i++ {
		m := clip(ms[i], markers)
		for i+1 < len(ms) && ms[i+1].start < m.end {
			i++
			if n := clip(ms[i], markers); n.end > n.start {
				m.end = max(m.end, n.end)
			}
		}
		m.start = max(m.start, last)
		if m.end <= m.start {
			continue
		}
		b.WriteString(s[last:m.start])
		b.WriteString(markerStart)
		b.WriteString(m.kind)
		b.WriteByte(']')
		last = m.end
	}
	b.WriteString(s[last:])
	return b.String()
}

// clip cuts m so that it neither starts nor ends inside a marker.
func clip(m match, markers []match) match {
	for _, k := range markers {
		if m.start >= k.start && m.start < k.end {
			m.start = k.end
		}
		if m.end > k.start && m.end <= k.end {
			m.end = k.start
		}
	}
	return m
}

// markersIn returns the spans of the "[REDACTED:...]" markers in s.
func markersIn(s string) []match {
	var markers []match
	for i := 0; ; {
		j := strings.Index(s[i:], markerStart)
		if j < 0 {
			return markers
		}
		k := strings.IndexByte(s[i+j:], ']')
		if k < 0 {
			return markers
		}
		markers = append(markers, match{i + j, i + j + k + 1, ""})
		i += j + k + 1
	}
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// boundary reports whether a token may start at s[i]: it is not the middle
// of a word. A JSON escape before it ("\n", "\u003c") ends the word
// before, as in the text of a JSON line that was not decoded.
func boundary(s string, i int) bool {
	return i == 0 || !isAlnum(s[i-1]) || escapeBefore(s, i)
}

// span returns the end of the run of bytes from i that ok accepts, and
// whether the run holds a digit and a letter.
func span(s string, i int, ok func(byte) bool) (end int, digit, letter bool) {
	for end = i; end < len(s) && ok(s[end]); end++ {
		if isDigit(s[end]) {
			digit = true
		} else if isAlnum(s[end]) {
			letter = true
		}
	}
	return end, digit, letter
}

func keyChar(c byte) bool    { return isAlnum(c) || c == '-' || c == '_' }
func base62(c byte) bool     { return isAlnum(c) }
func patChar(c byte) bool    { return isAlnum(c) || c == '_' }
func slackChar(c byte) bool  { return isAlnum(c) || c == '-' }
func upperDigit(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' }

// pemBlock matches a private key block starting at s[i] ("-----BEGIN ").
// Without its END line it runs to the end of s, and st (if any) is told to
// go on redacting the lines that follow.
func pemBlock(s string, i int, st *pemState) (match, bool) {
	const begin = "-----BEGIN "
	rest := s[i+len(begin):]
	k := strings.Index(rest[:min(len(rest), 80)], "-----")
	if k < 0 {
		return match{}, false
	}
	label := rest[:k]
	if !strings.HasSuffix(label, "PRIVATE KEY") && !strings.HasSuffix(label, "PRIVATE KEY BLOCK") {
		return match{}, false
	}
	end := "-----END " + label + "-----"
	after := i + len(begin) + k + 5
	if e := strings.Index(s[after:], end); e >= 0 {
		return match{i, after + e + len(end), KindPEM}, true
	}
	if st != nil {
		st.in, st.end, st.lines = true, end, 0
	}
	return match{i, len(s), KindPEM}, true
}

// scanJWT finds JSON Web Tokens: base64url header and payload, both JSON
// objects (so both start "eyJ"), and a signature, joined by dots.
func scanJWT(s string, ms []match) []match {
	b64 := func(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], 'J') // rare in text, unlike 'e'
		if j < 0 {
			break
		}
		i += j
		next := i + 1
		if start := i - 2; start >= 0 && s[start] == 'e' && s[start+1] == 'y' && boundary(s, start) {
			h, _, _ := span(s, start, b64)
			if h-start >= minJWTPart && h < len(s) && s[h] == '.' && strings.HasPrefix(s[h+1:], "eyJ") {
				p, _, _ := span(s, h+1, b64)
				if p-(h+1) >= minJWTPart && p < len(s) && s[p] == '.' {
					sig, _, _ := span(s, p+1, b64)
					ms = append(ms, match{start, sig, KindJWT})
					next = sig
				}
			}
		}
		i = next
	}
	return ms
}

// scanURLPassword finds the password in scheme://user:password@host. Only
// the password is redacted: the user and host stay readable. It starts from
// each '@', which text holds far less often than ':' or '/'.
func scanURLPassword(s string, ms []match) []match {
	const maxAuthority = 1024 // longer user info is not looked at
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '@')
		if j < 0 {
			break
		}
		at := i + j
		i = at + 1
		auth := at // the start of the authority, after "scheme://"
		for auth > 0 && at-auth < maxAuthority && !authorityEnd(s[auth-1]) {
			auth--
		}
		if auth < 4 || s[auth-1] != '/' || s[auth-2] != '/' || s[auth-3] != ':' || !isAlnum(s[auth-4]) {
			continue
		}
		end := at + 1
		for end < len(s) && end-at < maxAuthority && !authorityEnd(s[end]) {
			end++
		}
		if strings.IndexByte(s[at+1:end], '@') >= 0 {
			continue // the user info ends at a later '@'
		}
		colon := strings.IndexByte(s[auth:at], ':')
		if colon >= 0 && strings.Contains(s[auth:at], markerStart) {
			// The user info was redacted before: its colons are the markers'.
			colon = -1
			if k := strings.LastIndexByte(s[auth:at], ']'); k >= 0 {
				if c := strings.IndexByte(s[auth+k:at], ':'); c >= 0 {
					colon = k + c
				}
			}
		}
		if colon < 0 || auth+colon+1 == at {
			continue // no password
		}
		ms = append(ms, match{auth + colon + 1, at, KindURLPassword})
		i = end
	}
	return ms
}

// authorityEnd reports whether c ends a URL's authority (user:pass@host).
// '?' and '#' do not: people write them unescaped in passwords.
func authorityEnd(c byte) bool {
	switch c {
	case '/', ' ', '\t', '\n', '\r', '"', '\'', '<', '>', '`':
		return true
	}
	return false
}

// scanEmail finds addresses: local@domain.tld, with a TLD of two letters or
// more. An '@' that ends the user info of a URL is not an address.
func scanEmail(s string, ms []match) []match {
	local := func(c byte) bool { return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-' }
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '@')
		if j < 0 {
			break
		}
		i += j
		at := i
		i++
		if urlUserInfo(s, ms, at) {
			continue
		}
		start := at
		for start > 0 && local(s[start-1]) {
			start--
		}
		for start < at && s[start] == '.' {
			start++
		}
		if start == at {
			continue
		}
		// domain: labels of letters, digits and '-', at least two, the last
		// all letters.
		end, lastLabel, labels := at+1, at+1, 0
		for {
			e := end
			for e < len(s) && (isAlnum(s[e]) || s[e] == '-') {
				e++
			}
			if e == end {
				break
			}
			labels++
			lastLabel, end = end, e
			if end+1 < len(s) && s[end] == '.' && isAlnum(s[end+1]) {
				end++
				continue
			}
			break
		}
		if labels < 2 || end-lastLabel < 2 || !allLetters(s[lastLabel:end]) {
			continue
		}
		ms = append(ms, match{start, end, KindEmail})
		i = end
	}
	return ms
}

// urlUserInfo reports whether the '@' at s[at] ends the user info of a URL:
// it ends a password found before (in ms), or it follows "scheme://" with
// no '/', '?', '#' or space in between ("https://deploy@host" names a user,
// not an address).
func urlUserInfo(s string, ms []match, at int) bool {
	for _, m := range ms {
		if m.kind == KindURLPassword && m.end == at {
			return true
		}
	}
	k := strings.LastIndex(s[:at], "://")
	if k < 0 {
		return false
	}
	for i := k + 3; i < at; i++ {
		if authorityEnd(s[i]) || s[i] == '?' || s[i] == '#' {
			return false
		}
	}
	return true
}

func allLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) || isDigit(s[i]) {
			return false
		}
	}
	return true
}

// scanCards finds card numbers: 13 to 19 digits, as one run or in groups of
// 3 to 6 split by single spaces or dashes, starting with 2 to 6 (the card
// networks' ranges; so Unix-ms timestamps, which start with 1, are not
// cards), and passing the Luhn check.
func scanCards(s string, ms []match) []match {
	var digits [19]byte
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		start := i
		n, groups, ok := 0, 0, true
		end := i
		for {
			g := end
			for end < len(s) && isDigit(s[end]) {
				if n < len(digits) {
					digits[n] = s[end]
				}
				n++
				end++
			}
			groups++
			if glen := end - g; glen < 3 || glen > 6 {
				ok = false
			}
			if end+1 < len(s) && (s[end] == ' ' || s[end] == '-') && isDigit(s[end+1]) {
				end++
				continue
			}
			break
		}
		i = end
		if groups == 1 {
			ok = true // one run: no group rule
		}
		if !ok || n < 13 || n > 19 || digits[0] < '2' || digits[0] > '6' {
			continue
		}
		if start > 0 && (isAlnum(s[start-1]) || s[start-1] == '.' || s[start-1] == '_') {
			continue
		}
		if end < len(s) && (isAlnum(s[end]) || s[end] == '_' || (s[end] == '.' && end+1 < len(s) && isDigit(s[end+1]))) {
			continue
		}
		if luhn(digits[:n]) {
			ms = append(ms, match{start, end, KindCard})
		}
	}
	return ms
}

// luhn reports whether the digits pass the Luhn check.
func luhn(digits []byte) bool {
	sum, double := 0, false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}
