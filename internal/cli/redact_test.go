package cli

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// canaryEntry is a line of testdata/redact/canary.txt: values that must go
// (secret) or stay (keep), and the value as an agent would print it. A pem
// entry's values are the lines of its block.
type canaryEntry struct {
	secret  bool
	kind    string
	values  []string
	printed string
}

// contextKinds are secrets only after their name: the canary's value holds
// both, and the secret is the part after its last space.
var contextKinds = map[string]bool{"bearer": true, "basic-auth": true, "aws-secret": true}

func readCanary(t *testing.T) (text string, entries []canaryEntry) {
	t.Helper()
	b, err := os.ReadFile("../../testdata/redact/canary.txt")
	if err != nil {
		t.Fatal(err)
	}
	text = string(b)
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		f := strings.Split(lines[i], "\t")
		if len(f) < 4 || (f[0] != "secret" && f[0] != "keep") {
			continue
		}
		e := canaryEntry{secret: f[0] == "secret", kind: f[1], values: []string{f[2]}, printed: f[3]}
		switch {
		case contextKinds[e.kind] && e.secret:
			e.values = []string{f[2][strings.LastIndexByte(f[2], ' ')+1:]}
		case e.kind == "pem":
			e.values, e.printed = nil, ""
			for i++; i < len(lines); i++ {
				e.printed += lines[i] + "\n"
				if l := lines[i]; !strings.HasPrefix(l, "-----") {
					e.values = append(e.values, l) // the key material
				} else if strings.HasPrefix(l, "-----END") {
					break
				}
			}
		case e.kind == "url-password" && e.secret:
			// The password goes; the user and host stay.
			u, err := url.Parse(f[2])
			if err != nil {
				t.Fatal(err)
			}
			pw, _ := u.User.Password()
			e.values = []string{pw}
			entries = append(entries, canaryEntry{kind: "url-user", values: []string{u.User.Username() + ":", u.Host}})
		}
		entries = append(entries, e)
	}
	return text, entries
}

// canaryFlags redact every kind of the canary, its custom one included.
var canaryFlags = []string{"--redact", "all", "--redact-pattern", "custom=TICKET-[0-9]{8}"}

// TestRedaction_Canary stores each secret of the canary, and its near miss,
// in every way vibekit-pipe takes input: plain text, records (each field,
// metadata nested, keys), rejected lines (the line and the reason that
// quotes it), an overlong line, the claude preset, a --map program, a
// program's error, a wrapped command's stdout and stderr, and the flags.
// Then no secret may be anywhere in the database's files, WAL included,
// and every near miss must be stored.
func TestRedaction_Canary(t *testing.T) {
	pipeBin, _ := programs(t)
	text, entries := readCanary(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "t.db")
	write := func(name string, lines []string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	j := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	run := func(stdin string, args ...string) {
		t.Helper()
		cmd := exec.Command(pipeBin, append([]string{"--db", db, "--quiet"}, args...)...)
		if stdin != "" {
			f, err := os.Open(stdin)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cmd.Stdin = f
		}
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("vibekit-pipe %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
	}

	var records, rejects, claude, values []string
	claude = append(claude, j(map[string]any{"type": "system", "subtype": "init", "session_id": "c1", "model": "m"}))
	for i, e := range entries {
		p := e.printed
		if p == "" {
			continue
		}
		records = append(records,
			j(map[string]any{"sessionId": "j", "eventType": "stream", "prompt": p, "streamData": p, "sandboxId": p, "repoUrl": p,
				"metadata": map[string]any{"line": p, "nested": map[string]any{"list": []any{p, map[string]any{p: true}}}}}),
			j(map[string]any{"sessionId": "j", "eventType": "stream", "streamData": "chunk", "extra": p}),
		)
		rejects = append(rejects,
			j(map[string]any{"sessionId": "r", "eventType": "bogus " + p}),
			j(map[string]any{"sessionId": "r", "eventType": "stream", "prompt": map[string]any{"text": p}}),
			j(map[string]any{"sessionId": "r", "eventType": "stream", "timestamp": "at " + p}),
		)
		id := fmt.Sprintf("toolu_%02d", i)
		claude = append(claude,
			j(map[string]any{"type": "user", "session_id": "c1", "message": map[string]any{"role": "user", "content": p}}),
			j(map[string]any{"type": "assistant", "session_id": "c1", "message": map[string]any{"content": []any{
				map[string]any{"type": "text", "text": p},
				map[string]any{"type": "tool_use", "id": id, "name": "Bash", "input": map[string]any{"command": p}}}}}),
			j(map[string]any{"type": "user", "session_id": "c1", "message": map[string]any{"content": []any{
				map[string]any{"type": "tool_result", "tool_use_id": id, "content": p}}}}),
		)
		values = append(values, j(map[string]any{"x": p}))
	}
	// The whole file as one field, and as one tool result.
	records = append(records, j(map[string]any{"sessionId": "j", "eventType": "stream", "streamData": text, "metadata": map[string]any{"all": text}}))
	claude = append(claude,
		j(map[string]any{"type": "user", "session_id": "c1", "message": map[string]any{"content": []any{
			map[string]any{"type": "tool_result", "tool_use_id": "toolu_all", "content": []any{map[string]any{"type": "text", "text": text}}}}}}),
		j(map[string]any{"type": "result", "subtype": "success", "session_id": "c1", "result": text, "is_error": false}),
	)

	canary := filepath.Join("..", "..", "testdata", "redact", "canary.txt")
	run(canary, canaryFlags...) // plain text, line by line
	// A reader holds the database open, so that the WAL stays (the last
	// connection to close would checkpoint and delete it).
	conn, err := sql.Open("sqlite3", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.QueryRow(`SELECT count(*) FROM telemetry`).Scan(new(int)); err != nil {
		t.Fatal(err)
	}
	run(write("records.ndjson", records), canaryFlags...)
	run(write("rejects.ndjson", rejects), canaryFlags...)
	run(write("claude.ndjson", claude), append([]string{"--preset", "claude"}, canaryFlags...)...)
	run(write("values.ndjson", values), append([]string{"--map", `{streamData: .x, metadata: {v: .x, (.x): 1}}`}, canaryFlags...)...)
	run(write("errors.ndjson", values), append([]string{"--map", `error(.x)`}, canaryFlags...)...)
	long := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.printed != "" && !strings.Contains(e.printed, "\n") {
			long = append(long, e.printed+" "+strings.Repeat("x", 300))
		}
	}
	run(write("long.txt", long), append([]string{"--max-line-bytes", "200"}, canaryFlags...)...)
	var flagged []string
	for _, e := range entries {
		if e.secret && e.kind != "pem" {
			flagged = append(flagged, e.printed)
		}
	}
	run("", append(canaryFlags, "--session", "w", "--prompt", strings.Join(flagged, " "),
		"--repo-url", "https://deploy:s3cr3t-Pa55w0rd!x@git.example.com/acme/webshop.git",
		"--", "sh", "-c", `cat "$1"; cat "$1" >&2`, "sh", canary)...)

	var stored strings.Builder
	for _, q := range []string{
		`SELECT concat_ws(char(10), sessionId, prompt, streamData, sandboxId, repoUrl, metadata) FROM telemetry`,
		`SELECT concat_ws(char(10), reason, raw) FROM vk_rejects`,
	} {
		rows, err := conn.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			rows.Scan(&s)
			stored.WriteString(s + "\n")
		}
		rows.Close()
	}
	files := map[string][]byte{"rows": []byte(stored.String())}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(db + suffix)
		if err != nil {
			t.Fatal(err)
		}
		files["t.db"+suffix] = b
	}
	if len(files["t.db-wal"]) == 0 {
		t.Fatal("the WAL is empty: the test would not look at it")
	}
	kinds := map[string]bool{}
	for _, e := range entries {
		kinds[e.kind] = true
		for _, v := range e.values {
			for name, b := range files {
				has := bytes.Contains(b, []byte(v))
				if e.secret && has {
					t.Errorf("%s secret %q remains in %s", e.kind, v, name)
				}
				if !e.secret && !has && name == "rows" {
					t.Errorf("%s near miss %q lost", e.kind, v)
				}
			}
		}
	}
	for _, k := range []string{"openai", "anthropic", "aws", "github", "slack", "jwt", "pem", "url-password", "email", "card", "custom", "sha", "uuid",
		"stripe", "gitlab", "gcp", "huggingface", "npm", "pypi", "sendgrid", "twilio", "slack-webhook", "bearer", "basic-auth", "aws-secret"} {
		if !kinds[k] {
			t.Errorf("the canary has no %s entry", k)
		}
	}
	for _, want := range []string{"[REDACTED:anthropic]", "[REDACTED:pem]", "[REDACTED:custom]", "[REDACTED:card]"} {
		if !strings.Contains(stored.String(), want) {
			t.Errorf("no %s in the rows", want)
		}
	}
}

// TestRedaction_HashField stores metadata.userId as a keyed hash: equal
// values keep equal hashes, the value is gone, and without a key the flag is
// refused.
func TestRedaction_HashField(t *testing.T) {
	pipeBin, _ := programs(t)
	db := filepath.Join(t.TempDir(), "t.db")
	in := `{"sessionId":"h","eventType":"stream","metadata":{"userId":"alice@corp.example","n":1}}
{"sessionId":"h","eventType":"stream","metadata":{"userId":"alice@corp.example","n":2}}
{"sessionId":"h","eventType":"stream","metadata":{"userId":"bob@corp.example","n":3}}
`
	cmd := exec.Command(pipeBin, "--db", db, "--quiet", "--hash-field", "metadata.userId")
	cmd.Stdin = strings.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if got := exitCode(t, cmd.Run()); got != ExitUsage || !strings.Contains(stderr.String(), "VIBEKIT_HASH_KEY") {
		t.Fatalf("without a key: exit %d, %q; want a usage error naming VIBEKIT_HASH_KEY", got, stderr.String())
	}
	cmd = exec.Command(pipeBin, "--db", db, "--quiet", "--hash-field", "metadata.userId")
	cmd.Env = append(os.Environ(), "VIBEKIT_HASH_KEY=test-key")
	cmd.Stdin = strings.NewReader(in)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var ids []string
	for _, r := range readRows(t, db) {
		ids = append(ids, r.Meta["userId"].(string))
	}
	if len(ids) != 3 || !strings.HasPrefix(ids[0], "hmac-sha256:") || ids[0] != ids[1] || ids[0] == ids[2] {
		t.Fatalf("userIds %q, want equal hashes for equal values", ids)
	}
	b, _ := os.ReadFile(db + "-wal")
	b2, _ := os.ReadFile(db)
	if bytes.Contains(append(b, b2...), []byte("alice@corp")) {
		t.Error("a hashed value remains in the database")
	}
}

// TestRedaction_AcrossLines stores what a line-by-line look cannot see: a
// private key whose lines are the streamData of several records, a key
// JSON-escaped inside a rejected line, and a key that the cut of an
// overlong line (kept for its reject) leaves too short to recognise.
func TestRedaction_AcrossLines(t *testing.T) {
	pipeBin, _ := programs(t)
	db := filepath.Join(t.TempDir(), "t.db")
	rec := func(data string) string {
		b, _ := json.Marshal(map[string]any{"sessionId": "k", "eventType": "stream", "streamData": data})
		return string(b)
	}
	key := "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
	// A line over the limit is cut to its first 64 KiB: 11 bytes of the key.
	pad := strings.Repeat("x", 64<<10-12) + " "
	in := strings.Join([]string{
		rec("-----BEGIN OPENSSH PRIVATE KEY-----"),
		rec("b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"),
		rec("QyNTUxOQAAACBRmFrZSBrZXkgbWF0ZXJpYWwgZm9yIGEgdGVzdCBvbmx5AAAAJGFrZXk="),
		rec("-----END OPENSSH PRIVATE KEY-----"),
		rec("after the key"),
		`{"sessionId":"k","eventType":"bogus","streamData":"\u0073k-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"}`,
		pad + key + " " + strings.Repeat("y", 1<<20),
	}, "\n") + "\n"
	cmd := exec.Command(pipeBin, "--db", db, "--quiet")
	cmd.Stdin = strings.NewReader(in)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var stored []string
	for _, r := range readRows(t, db) {
		stored = append(stored, r.Data)
	}
	conn, err := sql.Open("sqlite3", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(`SELECT raw FROM vk_rejects ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var rejects []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		rejects = append(rejects, s)
	}
	rows.Close()
	all := strings.Join(stored, "\n") + strings.Join(rejects, "\n")
	for _, gone := range []string{"b3BlbnNzaC1rZXktdjE", "QyNTUxOQAAACBRmFrZSBr", key[:11], `\u0073k-proj`} {
		if strings.Contains(all, gone) {
			t.Errorf("%q is stored", gone)
		}
	}
	if got := strings.Join(stored, "|"); got != "[REDACTED:pem]|[REDACTED:pem]|[REDACTED:pem]|[REDACTED:pem]|after the key" {
		t.Errorf("rows %q", got)
	}
	if len(rejects) != 2 || !strings.Contains(rejects[0], `"streamData":"[REDACTED:openai]"`) || !strings.HasPrefix(rejects[1], "xxxx") {
		t.Errorf("rejects %.200q", rejects)
	}
}
