// Package redact removes secrets from telemetry records before they are
// stored: API keys, tokens, private keys and passwords in URLs become
// "[REDACTED:<kind>]", and chosen fields can be stored as a keyed hash.
//
// Redaction runs on every record, so it is built to cost little when there
// is nothing to find: each kind of secret has a fixed marker (the '-', '_'
// or '.' of a prefix such as "sk-", "ghp_", "SG."; an upper-case letter of
// one such as "AKIA"; "eyJ", "-----BEGIN", "://", the 'z' of
// "Authorization"), one SIMD byte search per marker byte finds the
// candidates, and only those are examined. No regular expression runs for
// the built-in kinds.
package redact

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unsafe"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// Level is how much is redacted.
type Level int

const (
	// None redacts no built-in kind; patterns and hash fields still apply.
	None Level = iota
	// Secrets redacts API keys and tokens by their issuers' formats
	// (openai, anthropic, aws, github, gitlab, gcp, slack, stripe and more:
	// see rules), Authorization header credentials, JWTs, PEM private keys
	// and passwords in URLs. It is the default.
	Secrets
	// All redacts secrets, email addresses and card numbers (Luhn-valid).
	All
)

// ParseLevel reads "none", "secrets" or "all".
func ParseLevel(s string) (Level, error) {
	switch s {
	case "none":
		return None, nil
	case "secrets", "":
		return Secrets, nil
	case "all":
		return All, nil
	}
	return Secrets, fmt.Errorf("redact level %q is not none, secrets or all", s)
}

func (l Level) String() string {
	switch l {
	case None:
		return "none"
	case All:
		return "all"
	}
	return "secrets"
}

// The kinds of secret, as they appear in "[REDACTED:<kind>]".
const (
	KindOpenAI      = "openai"
	KindAnthropic   = "anthropic"
	KindAWS         = "aws"
	KindGitHub      = "github"
	KindSlack       = "slack"
	KindJWT         = "jwt"
	KindPEM         = "pem"
	KindURLPassword = "url-password"
	KindEmail       = "email"
	KindCard        = "card"
)

// NamedPattern is a user's own kind of secret: every match of Re becomes
// "[REDACTED:<Name>]".
type NamedPattern struct {
	Name string
	Re   *regexp.Regexp
}

var patternName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,40}$`)

// ParsePattern reads NAME=REGEX (Go regexp syntax), as --redact-pattern
// takes it.
func ParsePattern(s string) (NamedPattern, error) {
	name, expr, ok := strings.Cut(s, "=")
	if !ok || expr == "" {
		return NamedPattern{}, fmt.Errorf("redact pattern %q is not NAME=REGEX", s)
	}
	if !patternName.MatchString(name) {
		return NamedPattern{}, fmt.Errorf("redact pattern name %q: use letters, digits, '_', '.' or '-'", name)
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return NamedPattern{}, fmt.Errorf("redact pattern %s: %w", name, err)
	}
	return NamedPattern{Name: name, Re: re}, nil
}

// Options configure a Redactor.
type Options struct {
	Level    Level
	Patterns []NamedPattern
	// HashFields are stored as "hmac-sha256:<64 hex digits>", the HMAC-SHA256
	// of the value under HashKey, instead of the value: "metadata.userId"
	// (a dotted path into metadata; numbers, booleans, objects and arrays are
	// hashed as their JSON text) or a string field of the record (sessionId,
	// mode, prompt, streamData, sandboxId, repoUrl). Equal values keep equal
	// hashes, so rows can still be grouped and found by them; without the
	// key the values cannot be recovered by trying likely ones.
	HashFields []string
	HashKey    []byte
}

// hashPrefix starts every hashed value.
const hashPrefix = "hmac-sha256:"

// Redactor redacts records and strings. It is safe for concurrent use; a
// Stream, which carries state from line to line, is not.
type Redactor struct {
	level    Level
	patterns []pattern
	top      []string   // record fields to hash
	paths    [][]string // metadata paths to hash
	pathKeys []string   // `"key"` of each path's last key, to find them fast
	key      []byte
}

type pattern struct {
	NamedPattern
	prefix string // a literal every match starts with, to skip the regexp
}

// ErrNoHashKey means hash fields were asked for without a key.
var ErrNoHashKey = errors.New("hash fields need a key")

// New makes a Redactor.
func New(o Options) (*Redactor, error) {
	r := &Redactor{level: o.Level, key: o.HashKey}
	for _, p := range o.Patterns {
		if p.Re == nil || p.Name == "" {
			return nil, fmt.Errorf("redact pattern without a name or regexp")
		}
		prefix, _ := p.Re.LiteralPrefix()
		r.patterns = append(r.patterns, pattern{p, prefix})
	}
	for _, f := range o.HashFields {
		switch f {
		case "sessionId", "mode", "prompt", "streamData", "sandboxId", "repoUrl":
			r.top = append(r.top, f)
			continue
		}
		rest, ok := strings.CutPrefix(f, "metadata.")
		path := strings.Split(rest, ".")
		if !ok || rest == "" || strings.Contains(rest, "..") || strings.HasSuffix(rest, ".") {
			return nil, fmt.Errorf("hash field %q is not metadata.<key>[.<key>...] or one of sessionId, mode, prompt, streamData, sandboxId, repoUrl", f)
		}
		r.paths = append(r.paths, path)
		q, _ := json.Marshal(path[len(path)-1])
		r.pathKeys = append(r.pathKeys, string(q))
	}
	if (len(r.top) > 0 || len(r.paths) > 0) && len(o.HashKey) == 0 {
		return nil, ErrNoHashKey
	}
	return r, nil
}

// Enabled reports whether r changes anything at all.
func (r *Redactor) Enabled() bool {
	return r.level != None || len(r.patterns) > 0 || len(r.top) > 0 || len(r.paths) > 0
}

// String returns s with every secret redacted. An unterminated private key
// is redacted to the end of s.
func (r *Redactor) String(s string) string { return r.redact(s, nil) }

// Record redacts rec in place: prompt, streamData, sandboxId, repoUrl and
// every string in metadata (keys and nested values included; numbers too
// for cards), after hashing the hash fields.
func (r *Redactor) Record(rec *vibekit.Record) { r.record(rec, nil) }

// Reject redacts a rejected line and its reason (which may quote a value).
func (r *Redactor) Reject(rej *vibekit.Reject) {
	rej.Raw = r.redact(rej.Raw, nil)
	rej.Reason = r.redact(rej.Reason, nil)
}

// Stream redacts the lines of one input in order. Beside what a Redactor
// does, it redacts a private key printed over several lines: from a line
// with "-----BEGIN ... PRIVATE KEY-----" and no END, every following
// line's text (streamData, or a reject's line) is redacted whole until the
// line with the matching END.
type Stream struct {
	r   *Redactor
	pem pemState
}

// pemState is an unterminated private key block being redacted.
type pemState struct {
	in    bool
	end   string // the END line that closes it
	lines int
}

// maxPEMLines bounds how many lines an unterminated block swallows (an
// 8192-bit RSA key is about 100 lines of base64).
const maxPEMLines = 400

// NewStream starts a Stream for one input.
func (r *Redactor) NewStream() *Stream { return &Stream{r: r} }

// Record redacts rec, taking its streamData as the input's next line.
func (s *Stream) Record(rec *vibekit.Record) { s.r.record(rec, &s.pem) }

// Reject redacts rej, taking its line as the input's next line.
func (s *Stream) Reject(rej *vibekit.Reject) {
	rej.Raw = s.r.redact(rej.Raw, &s.pem)
	rej.Reason = s.r.redact(rej.Reason, nil)
}

func (r *Redactor) record(rec *vibekit.Record, st *pemState) {
	for _, f := range r.top {
		switch f {
		case "sessionId":
			rec.SessionID = r.hashString(rec.SessionID)
		case "mode":
			rec.Mode = r.hashString(rec.Mode)
		case "prompt":
			rec.Prompt = r.hashString(rec.Prompt)
		case "streamData":
			rec.StreamData = r.hashString(rec.StreamData)
		case "sandboxId":
			rec.SandboxID = r.hashString(rec.SandboxID)
		case "repoUrl":
			rec.RepoURL = r.hashString(rec.RepoURL)
		}
	}
	rec.Prompt = r.redact(rec.Prompt, nil)
	rec.StreamData = r.redact(rec.StreamData, st)
	rec.SandboxID = r.redact(rec.SandboxID, nil)
	rec.RepoURL = r.redact(rec.RepoURL, nil)
	if len(rec.Metadata) > 0 {
		rec.Metadata = r.metadata(rec.Metadata)
	}
}

// hashString hashes a non-empty string that is not a hash already.
func (r *Redactor) hashString(s string) string {
	if s == "" || isHash(s) {
		return s
	}
	return r.hash([]byte(s))
}

func (r *Redactor) hash(b []byte) string {
	m := hmac.New(sha256.New, r.key)
	m.Write(b)
	var sum [sha256.Size]byte
	return hashPrefix + hex.EncodeToString(m.Sum(sum[:0]))
}

func isHash(s string) bool {
	h, ok := strings.CutPrefix(s, hashPrefix)
	if !ok || len(h) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// redact returns s with its secrets replaced, s itself when there are none.
func (r *Redactor) redact(s string, st *pemState) string {
	if s == "" {
		return s
	}
	ms := r.find(s, nil, st)
	if len(ms) == 0 {
		return s
	}
	out := apply(s, ms)
	// A replacement can make a secret of what is around it (a marker's ']'
	// is a word boundary): redact again until nothing changes, so that
	// redacting a redacted text changes nothing.
	for range 4 {
		ms = r.find(out, ms[:0], nil)
		next := apply(out, ms)
		if next == out {
			break
		}
		out = next
	}
	return out
}

// metadata redacts and hashes inside a metadata object. It returns m
// unchanged, without decoding it, unless a quick look at the JSON text finds
// a candidate: a marker, an escape that could hide one, or a hashed key.
func (r *Redactor) metadata(m json.RawMessage) json.RawMessage {
	s := unsafe.String(unsafe.SliceData(m), len(m)) // read only, while m is unchanged
	need := false
	for _, k := range r.pathKeys {
		if strings.Contains(s, k) {
			need = true
			break
		}
	}
	if !need && len(r.patterns) > 0 && strings.IndexByte(s, '\\') >= 0 {
		// A user's pattern may match a quote or newline that the JSON text
		// escapes. (find sees through the escapes that can hide a built-in
		// kind: see hidesASCII and boundary.)
		need = true
	}
	if !need && len(r.find(s, nil, nil)) == 0 {
		return m
	}
	out, ok := []byte(nil), json.Valid(m)
	if ok {
		out, ok = r.rewriteJSON(m)
	}
	if !ok {
		// Not JSON (written by another tool): redact it as text.
		if t := r.redact(string(m), nil); t != string(m) {
			return json.RawMessage(t)
		}
		return m
	}
	return out
}

// TrimCut drops the last word of a text that was cut at a length limit
// (an overlong line kept for a reject): it may be the start of a secret,
// too short to be recognised as one. A word ends at a space or at a
// quote, bracket, comma or semicolon. A last word of maxCutWord bytes or
// more is kept: a secret that long is recognised as it is.
func TrimCut(s string) string {
	i := strings.LastIndexFunc(s, func(r rune) bool {
		return r <= ' ' || strings.ContainsRune("\"'`<>()[]{},;", r)
	})
	if len(s)-(i+1) >= maxCutWord {
		return s
	}
	return s[:i+1]
}

// maxCutWord bounds the word TrimCut drops: longer than the shortest body
// of every built-in kind.
const maxCutWord = 1024
