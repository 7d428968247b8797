package vibekit

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var readTime = time.UnixMilli(1_764_000_000_000)

func TestDecodeLine(t *testing.T) {
	tests := []struct {
		name   string
		line   string
		kind   LineKind
		reason string // substring of the reject reason
		want   Record // checked when kind is LineRecord
	}{
		{name: "plain text", line: "hello world", kind: LineText},
		{name: "json array", line: `[1,2]`, kind: LineText},
		{name: "other tool's json", line: `{"type":"system","session_id":"x"}`, kind: LineText},
		{name: "broken json", line: `{"sessionId":"s1","eventType":"start"`, kind: LineText},
		{name: "trailing garbage", line: `{"sessionId":"s1","eventType":"start"} x`, kind: LineText},
		{name: "full record", kind: LineRecord,
			line: `{"id":7,"sessionId":"s1","eventType":"stream","agentType":"claude","mode":"chat","prompt":"p","streamData":"a\nb\u00e9","sandboxId":"sb","repoUrl":"https://x/y","metadata":{ "chunk" : 1 },"timestamp":1732704000000}`,
			want: Record{SessionID: "s1", EventType: EventStream, AgentType: "claude", Mode: "chat", Prompt: "p", StreamData: "a\nbé", SandboxID: "sb", RepoURL: "https://x/y", Metadata: json.RawMessage(`{"chunk":1}`), Timestamp: 1732704000000}},
		{name: "missing timestamp takes read time", kind: LineRecord,
			line: `{"sessionId":"s1","eventType":"start","agentType":"codex"}`,
			want: Record{SessionID: "s1", EventType: EventStart, AgentType: "codex", Timestamp: readTime.UnixMilli()}},
		{name: "timestamp in seconds", kind: LineRecord,
			line: `{"sessionId":"s1","eventType":"end","timestamp":1732704000}`,
			want: Record{SessionID: "s1", EventType: EventEnd, Timestamp: 1732704000000}},
		{name: "timestamp as digit text", kind: LineRecord,
			line: `{"sessionId":"s1","eventType":"end","timestamp":"1732704000123"}`,
			want: Record{SessionID: "s1", EventType: EventEnd, Timestamp: 1732704000123}},
		{name: "timestamp as RFC 3339", kind: LineRecord,
			line: `{"sessionId":"s1","eventType":"end","timestamp":"2024-11-27T10:40:00.5Z"}`,
			want: Record{SessionID: "s1", EventType: EventEnd, Timestamp: 1732704000500}},
		{name: "fractional timestamp", kind: LineRecord,
			line: `{"sessionId":"s1","eventType":"end","timestamp":1732704000123.9}`,
			want: Record{SessionID: "s1", EventType: EventEnd, Timestamp: 1732704000123}},
		{name: "timestamp beyond int64 is not sane", kind: LineRecord,
			line: `{"sessionId":"s1","eventType":"end","timestamp":123456789012345678901234567890}`,
			want: Record{SessionID: "s1", EventType: EventEnd, Timestamp: readTime.UnixMilli()}},
		{name: "negative timestamp is not sane", kind: LineRecord,
			line: `{"sessionId":"s1","eventType":"end","timestamp":-5}`,
			want: Record{SessionID: "s1", EventType: EventEnd, Timestamp: readTime.UnixMilli()}},
		{name: "number as session id", kind: LineRecord,
			line: `{"sessionId":12345678901234567890123,"eventType":"start"}`,
			want: Record{SessionID: "12345678901234567890123", EventType: EventStart, Timestamp: readTime.UnixMilli()}},
		{name: "null fields are empty", kind: LineRecord,
			line: `{"sessionId":"s","eventType":"start","mode":null,"metadata":null,"timestamp":null}`,
			want: Record{SessionID: "s", EventType: EventStart, Timestamp: readTime.UnixMilli()}},
		{name: "unknown keys go to metadata", kind: LineRecord,
			line: `{"sessionId":"s","eventType":"start","metadata":{"a":1},"model":"opus","a":2,"timestamp":1732704000000}`,
			want: Record{SessionID: "s", EventType: EventStart, Metadata: json.RawMessage(`{"a":1,"model":"opus"}`), Timestamp: 1732704000000}},
		{name: "big numbers in metadata keep their digits", kind: LineRecord,
			line: `{"sessionId":"s","eventType":"start","metadata":{"n":123456789012345678901234567890},"timestamp":1732704000000}`,
			want: Record{SessionID: "s", EventType: EventStart, Metadata: json.RawMessage(`{"n":123456789012345678901234567890}`), Timestamp: 1732704000000}},
		{name: "invalid utf-8 becomes U+FFFD", kind: LineRecord,
			line: "{\"sessionId\":\"s\xff\",\"eventType\":\"start\",\"timestamp\":1732704000000}",
			want: Record{SessionID: "s\uFFFD", EventType: EventStart, Timestamp: 1732704000000}},
		{name: "surrogate pair", kind: LineRecord,
			line: `{"sessionId":"\ud83d\ude00 \ud83d","eventType":"start","timestamp":1732704000000}`,
			want: Record{SessionID: "😀 \uFFFD", EventType: EventStart, Timestamp: 1732704000000}},
		{name: "bad event type", line: `{"sessionId":"s","eventType":"begin"}`, kind: LineReject, reason: `event type "begin" is not one of`},
		{name: "missing event type", line: `{"sessionId":"s"}`, kind: LineReject, reason: "eventType is missing"},
		{name: "null event type", line: `{"sessionId":"s","eventType":null}`, kind: LineReject, reason: "eventType is null"},
		{name: "metadata array", line: `{"sessionId":"s","eventType":"start","metadata":[1]}`, kind: LineReject, reason: "metadata must be a JSON object, got an array"},
		{name: "metadata string", line: `{"sessionId":"s","eventType":"start","metadata":"x"}`, kind: LineReject, reason: "metadata must be a JSON object, got a string"},
		{name: "timestamp word", line: `{"sessionId":"s","eventType":"start","timestamp":"soon"}`, kind: LineReject, reason: `timestamp "soon" is not Unix milliseconds`},
		{name: "timestamp bool", line: `{"sessionId":"s","eventType":"start","timestamp":true}`, kind: LineReject, reason: "timestamp must be a number, got a boolean"},
		{name: "session object", line: `{"sessionId":{"a":1},"eventType":"start"}`, kind: LineReject, reason: "sessionId must be a string, got an object"},
		{name: "deep nesting is text", line: `{"sessionId":"s","eventType":"start","metadata":` + strings.Repeat(`{"a":`, 100_000) + "1" + strings.Repeat("}", 100_000) + "}", kind: LineText},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec Record
			kind, err := DecodeLine([]byte(tt.line), readTime, &rec)
			if got, want := kind, tt.kind; got != want {
				t.Fatalf("kind = %v, want %v (err %v)", got, want, err)
			}
			switch kind {
			case LineReject:
				if err == nil || !strings.Contains(err.Error(), tt.reason) {
					t.Fatalf("reason = %v, want it to contain %q", err, tt.reason)
				}
			case LineRecord:
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				got, _ := json.Marshal(rec)
				want, _ := json.Marshal(tt.want)
				if string(got) != string(want) {
					t.Fatalf("record\n got %s\nwant %s", got, want)
				}
			}
		})
	}
}

// FuzzDecodeLine checks the hand-written scanner against encoding/json: a line
// it decodes as a record must be valid JSON whose fields agree.
func FuzzDecodeLine(f *testing.F) {
	for _, s := range []string{
		`{"sessionId":"s1","eventType":"stream","streamData":"a\"b\\c\u00e9\ud83d\ude00","metadata":{"x":[1,{"y":null}]},"timestamp":1732704000000}`,
		`{"sessionId":1.5e3,"eventType":"end","agentType":"claude","extra":{"k":true}}`,
		`{"eventType":"start", "sessionId" : "x" , "prompt":"tab\there"}`,
		"plain text",
		`{"a":}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var rec Record
		kind, _ := DecodeLine(line, readTime, &rec)
		if kind == LineText {
			return
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("DecodeLine took invalid JSON as kind %v: %v", kind, err)
		}
		if kind != LineRecord {
			return
		}
		if s, ok := m["sessionId"].(string); ok && s != rec.SessionID {
			t.Fatalf("sessionId = %q, encoding/json says %q", rec.SessionID, s)
		}
		if s, ok := m["streamData"].(string); ok && s != rec.StreamData {
			t.Fatalf("streamData = %q, encoding/json says %q", rec.StreamData, s)
		}
		if len(rec.Metadata) > 0 && !json.Valid(rec.Metadata) {
			t.Fatalf("metadata %q is not valid JSON", rec.Metadata)
		}
	})
}

func BenchmarkDecodeLine(b *testing.B) {
	line := []byte(`{"sessionId":"sess-00042","eventType":"stream","agentType":"claude","mode":"code","streamData":"` +
		strings.Repeat(`func main() { fmt.Println(\"héllo\") }\n`, 18) + `","metadata":{"chunk":3,"model":{"name":"opus","tokens":{"in":12,"out":40}}},"timestamp":1732704000000}`)
	b.SetBytes(int64(len(line)))
	var rec Record
	for b.Loop() {
		if kind, err := DecodeLine(line, readTime, &rec); kind != LineRecord {
			b.Fatal(kind, err)
		}
	}
}

func TestDecodeValue(t *testing.T) {
	for _, in := range []string{
		`{"a":1,"b":[true,false,null,"x\u00e9\n"],"c":{"d":-2.5e3},"e":12345678901234567890123,"f":1.5,"g":[],"h":{}}`,
		` [ 1 , "two" ] `, `"s"`, `0`, `-0.0`, `null`,
	} {
		got, err := DecodeValue([]byte(in))
		if err != nil {
			t.Fatalf("DecodeValue(%s): %v", in, err)
		}
		// Same values as encoding/json gives, numbers compared as float64.
		var want, back any
		json.Unmarshal([]byte(in), &want)
		g, _ := json.Marshal(got)
		json.Unmarshal(g, &back)
		if !reflect.DeepEqual(back, want) {
			t.Errorf("DecodeValue(%s) = %s, encoding/json gives %v", in, g, want)
		}
	}
	v, _ := DecodeValue([]byte(`[12345678901234567890123, 7, 7.5]`))
	if got := v.([]any); got[0] != json.Number("12345678901234567890123") || got[1] != 7 || got[2] != 7.5 {
		t.Errorf("numbers = %#v; want an exact json.Number, an int and a float64", got)
	}
	for _, bad := range []string{`{"a":}`, `[1,]`, `{"a":1} x`, `tru`, `01`, `{"a" 1}`, strings.Repeat("[", 20000) + strings.Repeat("]", 20000)} {
		if v, err := DecodeValue([]byte(bad)); err == nil {
			t.Errorf("DecodeValue(%.20s) = %v, want an error", bad, v)
		}
	}
}

// TestValueDecoder decodes as DecodeValue does, keys with escapes, invalid
// UTF-8 and long keys included, and gives equal keys the same string.
func TestValueDecoder(t *testing.T) {
	var vd ValueDecoder
	long := strings.Repeat("k", maxKeyLen+1)
	for _, in := range []string{
		`{"type":"a","message":{"type":"b","content":[{"type":"c"}]}}`,
		`{"t\u0079pe":1,"typ\"e":2,"` + long + `":3,"` + "\xff" + `":4}`,
		`{"type":"again"}`,
	} {
		got, err := vd.Decode([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := DecodeValue([]byte(in))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Decode(%s) = %v, DecodeValue gives %v", in, got, want)
		}
	}
	// The second input's keys are escaped, too long or not UTF-8.
	if _, ok := vd.keys["type"]; !ok || len(vd.keys) != 3 {
		t.Errorf("kept keys %v, want type, message and content", slices.Collect(maps.Keys(vd.keys)))
	}
	allocs := testing.AllocsPerRun(100, func() { vd.Decode([]byte(`{"type":1,"message":2}`)) })
	if allocs > 2 { // the map
		t.Errorf("%v allocations for an object of kept keys, want no more than its map's", allocs)
	}
}
