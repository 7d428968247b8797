package redact

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// FuzzRedact checks that redaction never panics, is idempotent (a redacted
// text has nothing left to redact), keeps metadata valid JSON and leaves no
// built-in secret it would find on a second look.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"", "sk-", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t", "xoxb-1234567890-x", "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.", "-----BEGIN RSA PRIVATE KEY-----\nAAAA",
		"https://u:p@h", "a@b.co", "4111 1111 1111 1111", "[REDACTED:x]sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t",
		`{"a":"https:\/\/u:p@h","userId":7,"n":[4111111111111111]}`,
	} {
		f.Add(s)
	}
	if b, err := os.ReadFile("../testdata/redact/canary.txt"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f.Add(l)
		}
		f.Add(string(b))
	}
	ticket, _ := ParsePattern(`ticket=TICKET-[0-9]{8}`)
	var rs []*Redactor
	for _, l := range []Level{None, Secrets, All} {
		r, err := New(Options{Level: l, Patterns: []NamedPattern{ticket}, HashFields: []string{"metadata.userId", "repoUrl"}, HashKey: []byte("k")})
		if err != nil {
			f.Fatal(err)
		}
		rs = append(rs, r)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range rs {
			once := r.String(s)
			if twice := r.String(once); twice != once {
				t.Fatalf("level %v: not idempotent:\n in    %q\n once  %q\n twice %q", r.level, s, once, twice)
			}
			if r.level != None {
				if ms := r.find(once, nil, nil); apply(once, ms) != once {
					t.Fatalf("level %v: %q still holds %v", r.level, once, ms)
				}
			}
			meta, _ := json.Marshal(map[string]any{"k": s, "a": []any{s, map[string]any{s: 1}}, "userId": s})
			metas := [][]byte{meta}
			if strings.HasPrefix(s, "{") && json.Valid([]byte(s)) {
				metas = append(metas, []byte(s))
			}
			for _, m := range metas {
				rec := vibekit.Record{Prompt: s, StreamData: s, RepoURL: s, Metadata: m}
				r.Record(&rec)
				if !json.Valid(rec.Metadata) {
					t.Fatalf("level %v: metadata %s became invalid: %s", r.level, m, rec.Metadata)
				}
				again := rec
				r.Record(&again)
				if string(again.Metadata) != string(rec.Metadata) || again.StreamData != rec.StreamData || again.RepoURL != rec.RepoURL {
					t.Fatalf("level %v: Record not idempotent:\n %s\n %s", r.level, rec.Metadata, again.Metadata)
				}
			}
		}
	})
}
