package jq

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/itchyny/gojq"
)

// The checks change no result: each program gives what gojq gives without
// them, errors included.
func TestGuard_SameResults(t *testing.T) {
	input := map[string]any{"a": 1, "b": 2, "s": "ab", "arr": []any{1, 2, 3}, "o": map[string]any{"x": map[string]any{"y": 1}}}
	for _, src := range []string{
		`.a + .b`, `(1,2) + (10,20)`, `(1,2) * (10,20)`, `.s + "cd"`, `.s * 3`, `3 * .s`, `.s * 0`, `.s * -1`, `.s * 0.5`,
		`.arr + [4]`, `{x: 1} + {y: 2}`, `.o * {o: 2}`, `null + 1`, `.a + null`, `try (.s + 1) catch .`, `try ({} * 2) catch .`,
		`.a += 1`, `.arr[] += 1`, `.a *= 3`, `.a -= 1`, `.a |= . + 1`, `.x //= 5`, `.arr[0] = 5`, `.arr[1:2] = ["x", "y"]`,
		`[paths]`, `path(.arr[0])`, `[path(..)]`, `del(.arr[0])`, `to_entries`, `.arr[1:]`, `.arr[-1]`, `.arr[.a]`,
		`setpath(["z", 1]; 5)`, `getpath(["o", "x", "y"])`, `path(getpath(["o", "x"]))`, `reduce .arr[] as $x (0; . + $x)`,
		`[.arr[] | . * 2]`, `_add(1; 2)`, `_multiply("ab"; 2)`, `"\(.a + .b)"`, `-(.a + .b)`, `[limit(3; repeat(1))]`,
		`label $f | 1, break $f`, `[[1, 2], [3, 4]] | .[] as [$p, $q] | $p + $q`, `[.arr[] | {k: .}]`,
		`9223372036854775807 + 1`, `9223372036854775807 * 9223372036854775807`, `1e1000 * 2`, `[range(5)] | .[2:4] = ["x"]`,
		`.p.q.r = 1`, `.[1e3] = 1 | length`, `{(.s): 1}`, `{a, s}`, `[.[]?]`, `.arr as [$h] | $h + 1`, `.o.x.y += 1 | .o`,
		`def f(x): x + 1; f(.a)`, `[foreach .arr[] as $x (0; . + $x; [$x, .])]`, `if .a + 1 > 1 then [.] else {} end`,
		`try error("x" + "y") catch .`, `.arr | add`, `add(.arr[])`, `[.s, .s] | join("-")`, `[1, null, "a"] | join(",")`,
		`tojson`, `tostring`, `@base64`, `@json "v: \(.a)"`, `"v: \(.arr)"`, `[65, 66] | implode`, `.s | ascii_upcase`,
		`try ([1] | join(",")) catch .`, `add({a: 1}, {b: 2})`, `{a: 1} | .a += (1, 2)`, `[.arr[] | select(. + 1 > 2)]`,
	} {
		t.Run(src, func(t *testing.T) {
			want := runGojq(t, src, input)
			p, err := Compile(src)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			r := p.NewRunner()
			defer r.Close()
			var got []string
			err = r.Run(context.Background(), input, func(v any) error {
				got = append(got, string(AppendValue(nil, v)))
				return nil
			})
			if err != nil {
				got = append(got, "error: "+strings.TrimPrefix(err.Error(), "jq: "))
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// runGojq runs src with gojq alone, as the reference.
func runGojq(t *testing.T, src string, v any) []string {
	t.Helper()
	q, err := gojq.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	code, err := gojq.Compile(q)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	iter := code.Run(v)
	for {
		x, ok := iter.Next()
		if !ok {
			return out
		}
		if err, ok := x.(error); ok {
			out = append(out, "error: "+err.Error())
			return out
		}
		out = append(out, string(AppendValue(nil, x)))
	}
}

// A step that would make a huge value at once is stopped before it runs,
// with an error naming the limit.
func TestGuard_Limits(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`"x" * 1e9`, "a string of 1000000000 bytes (*) is over"},
		{`1e9 * "x"`, "a string of 1000000000 bytes (*) is over"},
		{`_multiply("x"; 1e9)`, "a string of 1000000000 bytes (*) is over"},
		{`reduce range(100) as $i ("x"; . + .)`, "(+) is over 8388608"},
		{`reduce range(100) as $i ("x"; . += .)`, "(+) is over 8388608"},
		{`reduce range(100) as $i ([1]; . + .)`, "elements (+) is over 1048576"},
		{`reduce range(100) as $i (10; . * .)`, "bits (*) is over 1048576"},
		{`[] | .[100000000] = 1`, "array index 100000000 is over"},
		{`[] | .[1e8] |= 1`, "array index 100000000 is over"},
		{`setpath([1e8]; 1)`, "array index 100000000 is over"},
		{`setpath([range(20000) | 0]; 1)`, "a path of 20000 keys is over"},
		{`reduce range(20000) as $i (null; [.])`, "a value nested over 10000 deep"},
		{`["x" * 8e6] | . as $a | [range(1e6) | $a[0]] | join("")`, "the value is over 8388608 bytes once written out"},
		{`["x" * 8e6] | . as $a | [range(1e6) | $a[0]] | add`, "once written out"},
		{`["x" * 8e6] | . as $a | [range(1e6) | $a[0]] | tojson`, "once written out"},
		{`["x" * 8e6] | . as $a | [range(1e6) | $a[0]] | @base64`, "once written out"},
		{`["x" * 8e6] | . as $a | [range(1e6) | $a[0]] | "\(.)"`, "once written out"},
		{`[range(1e6) | "x"] | join("x" * 8e6)`, "once written out"},
		{`"x" * 8e6 | . as $s | add(range(1e6) | $s)`, "once written out"},
		{`reduce range(9995) as $i (null; [.]) | {a: {b: {c: {d: {e: {f: .}}}}}}`, "a value nested over 10000 deep"},
		{`reduce range(20000) as $i (null; .[0] = .)`, "a value nested over 10000 deep"},
		{`reduce range(20000) as $i (null; setpath([0]; .))`, "a value nested over 10000 deep"},
	} {
		t.Run(tc.src, func(t *testing.T) {
			p, err := Compile(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			p.Timeout = 30 * time.Second
			r := p.NewRunner()
			defer r.Close()
			err = r.Run(context.Background(), nil, func(any) error { return nil })
			if !errors.Is(err, ErrTooBig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrTooBig with %q", err, tc.want)
			}
		})
	}
}

// A tiny timeout is a timeout, not a panic: the watchdog looks at least
// every millisecond.
func TestRunner_TinyTimeout(t *testing.T) {
	p, err := Compile(`def f: f; f`)
	if err != nil {
		t.Fatal(err)
	}
	p.Timeout = time.Nanosecond
	r := p.NewRunner()
	defer r.Close()
	if err := r.Run(context.Background(), nil, func(any) error { return nil }); !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
}

// A run is stopped while the heap is over the memory limit, and the next
// run starts afresh.
func TestRunner_MemoryLimit(t *testing.T) {
	p, err := Compile(`if . == 0 then [range(1e9)] else . end`)
	if err != nil {
		t.Fatal(err)
	}
	p.Timeout = time.Minute
	p.MemoryLimit = 64 << 20
	r := p.NewRunner()
	defer r.Close()
	if err := r.Run(context.Background(), 0, func(any) error { return nil }); !errors.Is(err, ErrMemory) {
		t.Fatalf("err = %v, want ErrMemory", err)
	}
	if err := r.Run(context.Background(), 1, func(any) error { return nil }); err != nil {
		t.Fatalf("after a stop: %v", err)
	}
}
