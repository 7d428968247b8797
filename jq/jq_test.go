package jq

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

func runAll(t *testing.T, src string, v any) []string {
	t.Helper()
	p, err := Compile(src)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	r := p.NewRunner()
	defer r.Close()
	var out []string
	if err := r.Run(context.Background(), v, func(v any) error {
		out = append(out, string(AppendValue(nil, v)))
		return nil
	}); err != nil {
		t.Fatalf("Run(%q): %v", src, err)
	}
	return out
}

func TestRecordValue(t *testing.T) {
	rec := vibekit.Record{ID: 4, SessionID: "s1", EventType: vibekit.EventEnd, AgentType: "claude",
		Metadata: json.RawMessage(`{"cost":0.25,"big":123456789012345678901234567890,"tags":["a"]}`), Timestamp: 1732704000000}
	got := runAll(t, `{s: .sessionId, t: .eventType, m: .mode, big: .metadata.big, c: .metadata.cost, id, ts: .timestamp}`, RecordValue(&rec))
	want := `{"big":123456789012345678901234567890,"c":0.25,"id":4,"m":null,"s":"s1","t":"end","ts":1732704000000}`
	if len(got) != 1 || got[0] != want {
		t.Fatalf("got %v, want %s", got, want)
	}
	if got := runAll(t, `.metadata.tags[], empty`, RecordValue(&rec)); strings.Join(got, ",") != `"a"` {
		t.Fatalf("got %v", got)
	}
}

func TestCompileError(t *testing.T) {
	_, err := Compile(`{s: .sessionId,, t: .eventType}`)
	var ce *CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a CompileError", err)
	}
	msg := err.Error()
	lines := strings.Split(msg, "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "column 16") {
		t.Fatalf("message does not place the error:\n%s", msg)
	}
	// The caret sits under the second comma.
	if caret := strings.Index(lines[2], "^"); lines[1][caret] != ',' {
		t.Fatalf("caret under %q, want ','\n%s", lines[1][caret], msg)
	}
	if _, err := Compile(`undefined_function(1)`); !errors.As(err, &ce) {
		t.Fatalf("an unknown function: err = %v, want a CompileError", err)
	}
}

func TestRunner_Timeout(t *testing.T) {
	p, err := Compile(`def f: f; if . == null then f else . end`)
	if err != nil {
		t.Fatal(err)
	}
	p.Timeout = 200 * time.Millisecond
	r := p.NewRunner()
	defer r.Close()
	err = r.Run(context.Background(), nil, func(any) error { return nil })
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	// The runner still works after a timeout.
	if err := r.Run(context.Background(), 1, func(any) error { return nil }); err != nil {
		t.Fatalf("after a timeout: %v", err)
	}
}

func TestRunner_Error(t *testing.T) {
	p, _ := Compile(`.a.b`)
	r := p.NewRunner()
	defer r.Close()
	err := r.Run(context.Background(), "text", func(any) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "expected an object but got: string") {
		t.Fatalf("err = %v, want a jq type error", err)
	}
}

func TestRunner_NoTimeout(t *testing.T) {
	p, err := Compile(`[range(3)] | add`)
	if err != nil {
		t.Fatal(err)
	}
	p.Timeout = -1
	r := p.NewRunner()
	defer r.Close()
	got := runAllWith(t, r, nil)
	if len(got) != 1 || got[0] != "3" {
		t.Fatalf("got %v", got)
	}
}

func TestRunner_ParentCancelled(t *testing.T) {
	p, _ := Compile(`def f: f; f`)
	p.Timeout = 200 * time.Millisecond
	r := p.NewRunner()
	defer r.Close()
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("stopped by signal"))
	err := r.Run(ctx, nil, func(any) error { return nil })
	if err == nil || err.Error() != "stopped by signal" {
		t.Fatalf("err = %v, want the parent's cause", err)
	}
	// A new parent gets a fresh context, and the limit still holds.
	if err := r.Run(context.Background(), 1, func(any) error { return nil }); !errors.Is(err, ErrTimeout) {
		t.Fatalf("after a cancelled parent: err = %v, want ErrTimeout", err)
	}
}

func runAllWith(t *testing.T, r *Runner, vars []any) []string {
	t.Helper()
	var out []string
	if err := r.RunWith(context.Background(), nil, vars, func(v any) error {
		out = append(out, string(AppendValue(nil, v)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
