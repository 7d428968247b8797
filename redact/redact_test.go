package redact

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"

	vibekit "github.com/vibekit/vibekit-pipe"
)

func MustNew(tb testing.TB, o Options) *Redactor {
	tb.Helper()
	r, err := New(o)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func TestRedactor_String(t *testing.T) {
	tests := []struct {
		name, in, want string
		level          Level
	}{
		{"openai", "key=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t end", "key=[REDACTED:openai] end", Secrets},
		{"openai legacy", `"sk-0123456789abcdefghij0123456789abcdefghijKLMN"`, `"[REDACTED:openai]"`, Secrets},
		{"openai too short", "apiKey: sk-1234567890", "apiKey: sk-1234567890", Secrets},
		{"openai without digits", "use sk-learn-style-naming-convention", "use sk-learn-style-naming-convention", Secrets},
		{"sk- inside a word", "risk-assessment-2024-quarterly-report1", "risk-assessment-2024-quarterly-report1", Secrets},
		{"anthropic", "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa-AbCdEf", "[REDACTED:anthropic]", Secrets},
		{"anthropic too short", "sk-ant-api03-short", "sk-ant-api03-short", Secrets},
		{"aws", "id AKIAIOSFODNN7EXAMPLE.", "id [REDACTED:aws].", Secrets},
		{"aws temporary", "ASIAY34FZKBOKMUTVV7A", "[REDACTED:aws]", Secrets},
		{"aws 19 chars", "AKIAIOSFODNN7EXAMPL", "AKIAIOSFODNN7EXAMPL", Secrets},
		{"aws 21 chars", "AKIAIOSFODNN7EXAMPLE1", "AKIAIOSFODNN7EXAMPLE1", Secrets},
		{"aws lower case", "AKIAiosfodnn7example", "AKIAiosfodnn7example", Secrets},
		{"github classic", "token ghp_abcdefghijklmnopqrstuvwxyz0123456789 ok", "token [REDACTED:github] ok", Secrets},
		{"github oauth", "gho_abcdefghijklmnopqrstuvwxyz0123456789", "[REDACTED:github]", Secrets},
		{"github 35 chars", "ghp_abcdefghijklmnopqrstuvwxyz012345678", "ghp_abcdefghijklmnopqrstuvwxyz012345678", Secrets},
		{"github fine-grained", "github_pat_11ABCDEFG0123456789abc_defghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456", "[REDACTED:github]", Secrets},
		{"github pat short", "github_pat_short", "github_pat_short", Secrets},
		{"slack", "xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "[REDACTED:slack]", Secrets},
		{"slack user", "xoxp-1234567890-abc", "[REDACTED:slack]", Secrets},
		{"slack no digits", "xoxb-not-a-token", "xoxb-not-a-token", Secrets},
		{"jwt", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk", "Bearer [REDACTED:jwt]", Secrets},
		{"jwt unsigned", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxMjM0NTY3ODkwIn0.", "[REDACTED:jwt]", Secrets},
		{"jwt header alone", "eyJhbGciOiJIUzI1NiJ9", "eyJhbGciOiJIUzI1NiJ9", Secrets},
		{"jwt payload not JSON", "eyJhbGciOiJIUzI1NiJ9.abcdefghijklmnop.sig", "eyJhbGciOiJIUzI1NiJ9.abcdefghijklmnop.sig", Secrets},
		{"pem", "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAAAA\n-----END RSA PRIVATE KEY-----\ndone", "key:\n[REDACTED:pem]\ndone", Secrets},
		{"pem openssh", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----", "[REDACTED:pem]", Secrets},
		{"pem unterminated", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq", "[REDACTED:pem]", Secrets},
		{"pem after sk", " sk-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----", " sk[REDACTED:pem]", Secrets},
		{"pem public", "-----BEGIN PUBLIC KEY-----\nMIIBIj\n-----END PUBLIC KEY-----", "-----BEGIN PUBLIC KEY-----\nMIIBIj\n-----END PUBLIC KEY-----", Secrets},
		{"pem certificate", "-----BEGIN CERTIFICATE-----\nMIID", "-----BEGIN CERTIFICATE-----\nMIID", Secrets},
		{"url password", "postgres://deploy:hunter2@db:5432/app", "postgres://deploy:[REDACTED:url-password]@db:5432/app", Secrets},
		{"url password with # and ?", "https://u:p#a?ss@host/x", "https://u:[REDACTED:url-password]@host/x", Secrets},
		{"url user only", "https://deploy@git.example.com/r.git", "https://deploy@git.example.com/r.git", Secrets},
		{"url port", "http://localhost:8080/health", "http://localhost:8080/health", Secrets},
		{"url empty password", "ftp://anon:@host/", "ftp://anon:@host/", Secrets},
		{"url @ in path", "https://host/users/@me:x", "https://host/users/@me:x", Secrets},
		{"email kept at secrets", "jane@example.com", "jane@example.com", Secrets},
		{"email", "mail jane.doe+ci@mail.example.co.uk.", "mail [REDACTED:email].", All},
		{"email no dot", "user@localhost", "user@localhost", All},
		{"email mention", "@vibekit", "@vibekit", All},
		{"email not in url password", "https://u:pw@example.com/", "https://u:[REDACTED:url-password]@example.com/", All},
		{"email in a url query", "https://host?to=a.b@example.com", "https://host?to=[REDACTED:email]", All},
		{"card spaces", "card 4111 1111 1111 1111.", "card [REDACTED:card].", All},
		{"card dashes", "5555-5555-5555-4444", "[REDACTED:card]", All},
		{"card amex", "3782 822463 10005", "[REDACTED:card]", All},
		{"card kept at secrets", "4111 1111 1111 1111", "4111 1111 1111 1111", Secrets},
		{"card luhn invalid", "4111 1111 1111 1112", "4111 1111 1111 1112", All},
		{"card timestamp", "1732704000000", "1732704000000", All},
		{"card too long", "41111111111111111111", "41111111111111111111", All},
		{"card in a decimal", "0.4111111111111111", "0.4111111111111111", All},
		{"card odd groups", "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", All},
		{"git sha", "85997d8c1f0e4b6a9d2c3e5f7a8b9c0d1e2f3a4b", "85997d8c1f0e4b6a9d2c3e5f7a8b9c0d1e2f3a4b", All},
		{"uuid", "123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456-426614174000", All},
		{"none", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t", None},
		{"several", "a sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t b AKIAIOSFODNN7EXAMPLE c", "a [REDACTED:openai] b [REDACTED:aws] c", Secrets},
		{"utf-8 around", "é sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t 日本", "é [REDACTED:openai] 日本", Secrets},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := MustNew(t, Options{Level: tt.level})
			if got := r.String(tt.in); got != tt.want {
				t.Fatalf("String(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			if got := r.String(tt.want); got != tt.want {
				t.Fatalf("not idempotent: String(%q) = %q", tt.want, got)
			}
		})
	}
}

func TestParse(t *testing.T) {
	for s, want := range map[string]Level{"none": None, "secrets": Secrets, "all": All} {
		if got, err := ParseLevel(s); err != nil || got != want || got.String() != s {
			t.Errorf("ParseLevel(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseLevel("most"); err == nil {
		t.Error("ParseLevel(most) did not fail")
	}
	p, err := ParsePattern(`ticket=TICKET-[0-9]{8}`)
	if err != nil || p.Name != "ticket" || !p.Re.MatchString("TICKET-12345678") {
		t.Errorf("ParsePattern = %+v, %v", p, err)
	}
	for _, bad := range []string{"noequals", "=x", "a b=x", "n=(", "n="} {
		if _, err := ParsePattern(bad); err == nil {
			t.Errorf("ParsePattern(%q) did not fail", bad)
		}
	}
	if _, err := New(Options{HashFields: []string{"metadata.userId"}}); !errors.Is(err, ErrNoHashKey) {
		t.Errorf("hash fields without a key: err = %v", err)
	}
	for _, bad := range []string{"metadata", "metadata.", "metadata.a..b", "eventType", "userId"} {
		if _, err := New(Options{HashFields: []string{bad}, HashKey: []byte("k")}); err == nil {
			t.Errorf("hash field %q accepted", bad)
		}
	}
}

func TestRedactor_Patterns(t *testing.T) {
	p, _ := ParsePattern(`ticket=TICKET-[0-9]{8}`)
	empty, _ := ParsePattern(`blank=x*`)
	r := MustNew(t, Options{Level: None, Patterns: []NamedPattern{p, empty}})
	if got, want := r.String("see TICKET-20481234 and TICKET-2048"), "see [REDACTED:ticket] and TICKET-2048"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if !r.Enabled() || MustNew(t, Options{Level: None}).Enabled() {
		t.Fatal("Enabled is wrong")
	}
}

func TestRedactor_Record(t *testing.T) {
	p, _ := ParsePattern(`ticket=TICKET-[0-9]{8}`)
	r := MustNew(t, Options{Level: All, Patterns: []NamedPattern{p}, HashFields: []string{"metadata.userId", "metadata.user.id", "sandboxId"}, HashKey: []byte("k1")})
	rec := vibekit.Record{
		Prompt:     "use sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t",
		StreamData: "AKIAIOSFODNN7EXAMPLE",
		SandboxID:  "sbx-1",
		RepoURL:    "https://x-access-token:ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/o/r",
		Metadata: json.RawMessage(`{"z":123456789012345678901234567890,"userId":"u-456","user":{"id":42},"nested":[{"k":"https:\/\/u:pw@h\/"}],` +
			`"card":4111111111111111,"ts":1732704000000,"sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t":1,"esc":"caf\u00e9 \"q\"","t":"TICKET-12345678","f":1.50}`),
	}
	r.Record(&rec)
	h := func(s string) string { return r.hash([]byte(s)) }
	want := `{"z":123456789012345678901234567890,"userId":"` + h("u-456") + `","user":{"id":"` + h("42") + `"},"nested":[{"k":"https://u:[REDACTED:url-password]@h/"}],` +
		`"card":"[REDACTED:card]","ts":1732704000000,"[REDACTED:openai]":1,"esc":"caf\u00e9 \"q\"","t":"[REDACTED:ticket]","f":1.50}`
	if string(rec.Metadata) != want {
		t.Errorf("metadata\n got %s\nwant %s", rec.Metadata, want)
	}
	if !json.Valid(rec.Metadata) {
		t.Error("metadata is not JSON")
	}
	if rec.Prompt != "use [REDACTED:openai]" || rec.StreamData != "[REDACTED:aws]" || rec.SandboxID != h("sbx-1") ||
		rec.RepoURL != "https://x-access-token:[REDACTED:github]@github.com/o/r" {
		t.Errorf("fields: %+v", rec)
	}
	if !strings.HasPrefix(rec.SandboxID, "hmac-sha256:") || len(rec.SandboxID) != len("hmac-sha256:")+64 {
		t.Errorf("hash format: %s", rec.SandboxID)
	}
	again := rec
	r.Record(&again)
	if string(again.Metadata) != string(rec.Metadata) || again.SandboxID != rec.SandboxID {
		t.Errorf("not idempotent:\n%s\n%s", again.Metadata, rec.Metadata)
	}
	other := MustNew(t, Options{HashFields: []string{"sandboxId"}, HashKey: []byte("k2")})
	rec2 := vibekit.Record{SandboxID: "sbx-1"}
	other.Record(&rec2)
	if rec2.SandboxID == rec.SandboxID {
		t.Error("the hash does not depend on the key")
	}
}

func TestRedactor_MetadataUntouched(t *testing.T) {
	r := MustNew(t, Options{Level: All})
	for _, m := range []string{
		`{"model":{"name":"claude-sonnet-4-5","provider":"anthropic"},"cwd":"/workspace","git":{"branch":"feat/dump-jq","dirty":false},"n":1e400}`,
		`{"url":"https://github.com/acme/webshop","é":"caf\u00e9"}`,
	} {
		rec := vibekit.Record{Metadata: json.RawMessage(m)}
		r.Record(&rec)
		if string(rec.Metadata) != m {
			t.Errorf("metadata changed:\n got %s\nwant %s", rec.Metadata, m)
		}
	}
	// Not JSON (written by another tool): redacted as text.
	rec := vibekit.Record{Metadata: json.RawMessage(`not json sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t`)}
	r.Record(&rec)
	if string(rec.Metadata) != `not json [REDACTED:openai]` {
		t.Errorf("got %s", rec.Metadata)
	}
}

func TestStream_PEMOverLines(t *testing.T) {
	s := MustNew(t, Options{Level: Secrets}).NewStream()
	lines := []string{"$ cat key", "-----BEGIN EC PRIVATE KEY-----", "MHcCAQEEIBase64Line1", "AwEHoUQDQgAELine2", "-----END EC PRIVATE KEY----- trailing", "after"}
	var got []string
	for i, l := range lines {
		if i == 2 { // a reject in the middle is a line too
			rej := vibekit.Reject{Raw: l, Reason: "why"}
			s.Reject(&rej)
			got = append(got, rej.Raw)
			continue
		}
		rec := vibekit.Record{StreamData: l}
		s.Record(&rec)
		got = append(got, rec.StreamData)
	}
	want := []string{"$ cat key", "[REDACTED:pem]", "[REDACTED:pem]", "[REDACTED:pem]", "[REDACTED:pem] trailing", "after"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

// canaryEntry is a line of testdata/redact/canary.txt: a value that must go
// (secret) or stay (keep). A pem entry's values are its block's lines.
type canaryEntry struct {
	secret bool
	kind   string
	values []string
}

// contextKinds are secrets only after their name: the canary's value holds
// both, and the secret is the part after its last space.
var contextKinds = map[string]bool{"bearer": true, "basic-auth": true, "aws-secret": true}

func readCanary(t testing.TB) (text string, entries []canaryEntry) {
	t.Helper()
	b, err := os.ReadFile("../testdata/redact/canary.txt")
	if err != nil {
		t.Fatal(err)
	}
	text = string(b)
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		f := strings.Split(lines[i], "\t")
		if len(f) < 3 || (f[0] != "secret" && f[0] != "keep") {
			continue
		}
		e := canaryEntry{secret: f[0] == "secret", kind: f[1]}
		if e.kind == "pem" {
			for i++; i < len(lines); i++ {
				if l := lines[i]; !strings.HasPrefix(l, "-----") {
					e.values = append(e.values, l) // the key material
				} else if strings.HasPrefix(l, "-----END") {
					break
				}
			}
		} else {
			e.values = []string{f[2]}
			if contextKinds[e.kind] && e.secret {
				e.values = []string{f[2][strings.LastIndexByte(f[2], ' ')+1:]}
			}
			if e.kind == "url-password" && e.secret {
				u, err := url.Parse(f[2])
				if err != nil {
					t.Fatal(err)
				}
				pw, _ := u.User.Password()
				e.values = []string{pw}
				entries = append(entries, canaryEntry{secret: false, kind: "url-user", values: []string{u.User.Username() + ":", u.Host}})
			}
		}
		entries = append(entries, e)
	}
	return text, entries
}

// checkCanary checks that out holds no secret and every near miss; at level
// Secrets the email and card secrets must stay too.
func checkCanary(t *testing.T, out string, entries []canaryEntry, level Level) {
	t.Helper()
	kinds := map[string]bool{}
	for _, e := range entries {
		kinds[e.kind] = true
		gone := e.secret && (level == All || e.kind != KindEmail && e.kind != KindCard)
		for _, v := range e.values {
			if has := strings.Contains(out, v); gone && has {
				t.Errorf("%s secret remains: %q", e.kind, v)
			} else if !gone && !has {
				t.Errorf("%s near miss (or kept value) lost: %q", e.kind, v)
			}
		}
	}
	for _, k := range []string{KindOpenAI, KindAnthropic, KindAWS, KindGitHub, KindSlack, KindJWT, KindPEM, KindURLPassword, KindEmail, KindCard, "custom", "sha", "uuid",
		KindStripe, KindGitLab, KindGCP, KindHuggingFace, KindNPM, KindPyPI, KindSendGrid, KindTwilio, KindSlackWebhook, KindBearer, KindBasicAuth, "aws-secret"} {
		if !kinds[k] {
			t.Errorf("the canary has no %s entry", k)
		}
	}
}

func TestCanary(t *testing.T) {
	text, entries := readCanary(t)
	ticket, _ := ParsePattern(`custom=TICKET-[0-9]{8}`)
	for _, level := range []Level{Secrets, All} {
		r := MustNew(t, Options{Level: level, Patterns: []NamedPattern{ticket}})
		t.Run(level.String()+"/lines", func(t *testing.T) {
			// As vibekit-pipe stores plain text: one record per line.
			s := r.NewStream()
			var out []string
			for _, l := range strings.Split(text, "\n") {
				rec := vibekit.Record{StreamData: l}
				s.Record(&rec)
				out = append(out, rec.StreamData)
			}
			checkCanary(t, strings.Join(out, "\n"), entries, level)
		})
		t.Run(level.String()+"/one string", func(t *testing.T) {
			// As a preset stores a tool result: the whole file in one field.
			checkCanary(t, r.String(text), entries, level)
		})
		t.Run(level.String()+"/metadata", func(t *testing.T) {
			// Every line as a metadata value, nested, and the file as one.
			var lines []any
			for _, l := range strings.Split(text, "\n") {
				lines = append(lines, map[string]any{"line": l})
			}
			m, _ := json.Marshal(map[string]any{"lines": lines, "all": text})
			rec := vibekit.Record{Metadata: m}
			r.Record(&rec)
			var back struct {
				Lines []struct{ Line string }
				All   string
			}
			if err := json.Unmarshal(rec.Metadata, &back); err != nil {
				t.Fatalf("redacted metadata is not JSON: %v", err)
			}
			var sb strings.Builder
			for _, l := range back.Lines {
				sb.WriteString(l.Line + "\n")
			}
			checkCanary(t, back.All, entries, level)
			checkCanary(t, sb.String(), entries, level)
			checkCanary(t, string(rec.Metadata), entries, level)
		})
		t.Run(level.String()+"/rejects", func(t *testing.T) {
			s := r.NewStream()
			var out []string
			for _, l := range strings.Split(text, "\n") {
				rej := vibekit.Reject{Raw: l, Reason: "eventType " + l}
				s.Reject(&rej)
				out = append(out, rej.Raw)
				if rej.Reason != "eventType "+r.String(l) {
					t.Errorf("reason not redacted: %q", rej.Reason)
				}
			}
			checkCanary(t, strings.Join(out, "\n"), entries, level)
		})
	}
}

// TestRedactor_Escaped finds secrets that JSON text escapes: a key whose
// first letter is a \u escape, one after an escaped newline, a URL with
// escaped slashes, in text that is not valid JSON (a rejected line).
func TestRedactor_Escaped(t *testing.T) {
	r := MustNew(t, Options{Level: Secrets})
	key := "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
	for _, tt := range []struct{ in, want string }{
		{`{"sessionId":"s","eventType":"bogus","streamData":"\u0073k-proj-` + key + `"`, `{"sessionId":"s","eventType":"bogus","streamData":"[REDACTED:openai]"`},
		{`{"x":"line one\nsk-proj-` + key + `\tnext"`, `{"x":"line one\n[REDACTED:openai]\tnext"`},
		{`"\u0067\u0068\u0070\u005f` + "abcdefghijklmnopqrstuvwxyz0123456789" + `"`, `"[REDACTED:github]"`},
		{`"postgres:\/\/app:hunter2@db\/x"`, `"postgres:\/\/app:[REDACTED:url-password]@db\/x"`},
		{`"caf\u00e9 \\u0073k-kept"`, `"caf\u00e9 \\u0073k-kept"`},
		{`"\u003csk-proj-` + key + `\u003e"`, `"\u003c[REDACTED:openai]\u003e"`}, // an HTML-safe encoder's escapes
	} {
		if got := r.String(tt.in); got != tt.want {
			t.Errorf("String(%s)\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
	// In metadata the same: the quick look must not take it for clean.
	for in, want := range map[string]string{
		`{"note":"a\nsk-proj-` + key + `"}`:                         `{"note":"a\n[REDACTED:openai]"}`,
		`{"html":"\u003csk-proj-` + key + `\u003e"}`:                `{"html":"<[REDACTED:openai]>"}`, // re-encoded: same JSON value
		`{"k":"\u0073k-proj-` + key + `"}`:                          `{"k":"[REDACTED:openai]"}`,
		`{"u":"postgres:\/\/app:hunter2@db\/x"}`:                    `{"u":"postgres://app:[REDACTED:url-password]@db/x"}`,
		`{"html":"\u003cb\u003e bold \u0026 plain \u003c/b\u003e"}`: `{"html":"\u003cb\u003e bold \u0026 plain \u003c/b\u003e"}`,
	} {
		rec := vibekit.Record{Metadata: json.RawMessage(in)}
		r.Record(&rec)
		if string(rec.Metadata) != want {
			t.Errorf("metadata %s\n got %s\nwant %s", in, rec.Metadata, want)
		}
	}
}

// TestStream_PEMOverRecords redacts a private key whose lines come as the
// streamData of several records of one source, as an agent that streams a
// file's lines does, with a record of another kind in between.
func TestStream_PEMOverRecords(t *testing.T) {
	s := MustNew(t, Options{Level: Secrets}).NewStream()
	lines := []string{"-----BEGIN PRIVATE KEY-----", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "", "Bm5hbWUiOiJKb2huIERvZSIsImlhdCI6", "-----END PRIVATE KEY-----", "next"}
	var got []string
	for _, l := range lines {
		rec := vibekit.Record{EventType: vibekit.EventStream, StreamData: l, Metadata: json.RawMessage(`{"n":1}`)}
		s.Record(&rec)
		got = append(got, rec.StreamData)
	}
	want := []string{"[REDACTED:pem]", "[REDACTED:pem]", "", "[REDACTED:pem]", "[REDACTED:pem]", "next"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

// TestRedactor_GCPServiceAccount redacts a service account's key file, as
// one string and printed line by line, leaving its public fields.
func TestRedactor_GCPServiceAccount(t *testing.T) {
	pem := "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\\nZmFrZSBrZXkgbWF0ZXJpYWw=\\n-----END PRIVATE KEY-----\\n"
	file := `{
  "type": "service_account",
  "project_id": "acme-prod",
  "private_key_id": "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b",
  "private_key": "` + pem + `",
  "client_email": "ci@acme-prod.iam.gserviceaccount.com"
}`
	r := MustNew(t, Options{Level: Secrets})
	check := func(got string) {
		t.Helper()
		for _, gone := range []string{"4f3c2b1a0e9d8c7b6a5f", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "ZmFrZSBrZXkgbWF0ZXJpYWw"} {
			if strings.Contains(got, gone) {
				t.Errorf("%q remains in\n%s", gone, got)
			}
		}
		for _, kept := range []string{`"private_key_id": "[REDACTED:gcp]"`, `"private_key": "[REDACTED:pem]`, "acme-prod.iam.gserviceaccount.com"} {
			if !strings.Contains(got, kept) {
				t.Errorf("%q missing in\n%s", kept, got)
			}
		}
	}
	check(r.String(file))
	s := r.NewStream()
	var out []string
	for _, l := range strings.Split(file, "\n") {
		rec := vibekit.Record{StreamData: l}
		s.Record(&rec)
		out = append(out, rec.StreamData)
	}
	check(strings.Join(out, "\n"))
	var v map[string]any
	if err := json.Unmarshal([]byte(file), &v); err != nil {
		t.Fatal(err)
	}
	rec := vibekit.Record{Metadata: json.RawMessage(file)}
	r.Record(&rec)
	if !strings.Contains(string(rec.Metadata), `"private_key": "[REDACTED:pem]`) || !strings.Contains(string(rec.Metadata), `"private_key_id": "[REDACTED:gcp]"`) || strings.Contains(string(rec.Metadata), "MIIEvQ") {
		t.Errorf("metadata: %s", rec.Metadata)
	}
}

// TestTrimCut drops a cut line's last word, which may start a secret.
func TestTrimCut(t *testing.T) {
	for in, want := range map[string]string{
		"export KEY=sk-proj-Ab3dE":  "export ",
		`{"k":"glpat-abc`:           `{"k":"`,
		"ends at a space ":          "ends at a space ",
		"sk-proj-Ab3dEf6hIj9kLm2nO": "",
		strings.Repeat("Z", 2000):   strings.Repeat("Z", 2000),
	} {
		if got := TrimCut(in); got != want {
			t.Errorf("TrimCut(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStream_PEMEndCutOff: an over-long line cut to a reject holds a key's
// BEGIN whose END was in the part cut off. The lines after it are the
// input's own, not the key's: they are kept (they were all redacted whole
// before), while a real key's next lines still are redacted.
func TestStream_PEMEndCutOff(t *testing.T) {
	s := MustNew(t, Options{Level: Secrets}).NewStream()
	rej := vibekit.Reject{Raw: strings.Repeat("a ", 100) + "-----BEGIN RSA PRIVATE KEY-----" + strings.Repeat("Q", 500), Reason: "line too long"}
	s.Reject(&rej)
	if strings.Contains(rej.Raw, "QQQQ") {
		t.Errorf("the key's text in the reject was kept: %.80q", rej.Raw)
	}
	for _, l := range []string{"normal line two", `{"k": "normal record three"}`} {
		rec := vibekit.Record{StreamData: l}
		s.Record(&rec)
		if rec.StreamData != l {
			t.Errorf("%q stored as %q", l, rec.StreamData)
		}
	}
	s = MustNew(t, Options{Level: Secrets}).NewStream()
	for i, l := range []string{"-----BEGIN RSA PRIVATE KEY-----", "Proc-Type: 4,ENCRYPTED", "DEK-Info: AES-128-CBC,3F17F5316E2BAC89", "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo", "-----END RSA PRIVATE KEY-----"} {
		rec := vibekit.Record{StreamData: l}
		s.Record(&rec)
		if rec.StreamData != "[REDACTED:pem]" {
			t.Errorf("line %d of an encrypted key stored as %q", i, rec.StreamData)
		}
	}
}

// TestRedactor_SentryOrgToken: an org token is sntrys_, the base64 of its
// claims, "_", and a base64url secret; the secret goes with the rest. The
// sample is made the way Sentry makes one, not from the rule's alphabet.
func TestRedactor_SentryOrgToken(t *testing.T) {
	claims := base64.StdEncoding.EncodeToString([]byte(`{"iat":1700000000.123,"url":"https://sentry.io","region_url":"https://us.sentry.io","org":"acme"}`))
	secret := "Ab_cD-efGhIjKlMnOpQrStUvWxYz0123456789abcdef"[:43]
	token := "sntrys_" + claims + "_" + secret
	r := MustNew(t, Options{Level: Secrets})
	got := r.String("SENTRY_AUTH_TOKEN=" + token + " done")
	if strings.Contains(got, secret[:20]) || strings.Contains(got, claims[:20]) || !strings.HasSuffix(got, " done") {
		t.Errorf("got %q", got)
	}
}

// TestRedactor_AuthorizationUpperCase: a header name in capitals hides its
// credentials as well as one written Authorization.
func TestRedactor_AuthorizationUpperCase(t *testing.T) {
	r := MustNew(t, Options{Level: Secrets})
	for in, want := range map[string]string{
		"AUTHORIZATION: Bearer 9f8e7d6c5b4a39281706aBcD":       "AUTHORIZATION: Bearer [REDACTED:bearer]",
		"PROXY-AUTHORIZATION: Bearer 9f8e7d6c5b4a39281706aBcD": "PROXY-AUTHORIZATION: Bearer [REDACTED:bearer]",
		"AUTHORIZATION: Bearer token":                          "AUTHORIZATION: Bearer token",
		"UNAUTHORIZED: 401":                                    "UNAUTHORIZED: 401",
	} {
		if got := r.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRedactor_Databricks: a Databricks personal access token, with and
// without its "-N" suffix, goes; words that start so stay.
func TestRedactor_Databricks(t *testing.T) {
	r := MustNew(t, Options{Level: Secrets})
	tok := "dapi" + "0123456789abcdef0123456789abcdef"
	for in, want := range map[string]string{
		"DATABRICKS_TOKEN=" + tok:           "DATABRICKS_TOKEN=[REDACTED:databricks]",
		`{"token":"` + tok + `-2"}`:         `{"token":"[REDACTED:databricks]"}`,
		"see the dapi docs":                 "see the dapi docs",
		"dapi0123456789abcdef0123456789abc": "dapi0123456789abcdef0123456789abc", // 29 hex digits
		"xdapi" + tok[4:]:                   "xdapi" + tok[4:],                   // part of a longer word
	} {
		if got := r.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}
