package vibekit

import (
	"encoding/json"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"
)

func TestRecordFromMap(t *testing.T) {
	def := Record{SessionID: "flag-session", EventType: EventStream, AgentType: "unknown", Mode: "chat", Timestamp: readTime.UnixMilli()}
	big30, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	tests := []struct {
		name string
		m    map[string]any
		err  string // substring of the error; empty for success
		want Record
	}{
		{name: "empty object takes the defaults", m: map[string]any{}, want: def},
		{name: "fields override the defaults",
			m:    map[string]any{"sessionId": "s1", "eventType": "start", "agentType": "claude", "prompt": "p", "streamData": "d", "sandboxId": "sb", "repoUrl": "https://x/y", "mode": nil, "timestamp": 1732704000000},
			want: Record{SessionID: "s1", EventType: EventStart, AgentType: "claude", Mode: "chat", Prompt: "p", StreamData: "d", SandboxID: "sb", RepoURL: "https://x/y", Timestamp: 1732704000000}},
		{name: "metadata sorted and compact, numbers exact",
			m:    map[string]any{"metadata": map[string]any{"b": 1.5, "a": []any{true, nil}, "n": big30, "j": json.Number("1e400"), "tiny": 1e-9}},
			want: withMeta(def, `{"a":[true,null],"b":1.5,"j":1e400,"n":123456789012345678901234567890,"tiny":1e-9}`)},
		{name: "unknown keys join metadata, metadata keys win, id dropped",
			m:    map[string]any{"id": 7, "model": "opus", "a": 2, "metadata": map[string]any{"a": 1}},
			want: withMeta(def, `{"a":1,"model":"opus"}`)},
		{name: "number as a string field", m: map[string]any{"sessionId": 42, "streamData": 0.5},
			want: func() Record { r := def; r.SessionID, r.StreamData = "42", "0.5"; return r }()},
		{name: "timestamp in seconds", m: map[string]any{"timestamp": 1732704000},
			want: func() Record { r := def; r.Timestamp = 1732704000000; return r }()},
		{name: "timestamp as RFC 3339", m: map[string]any{"timestamp": "2024-11-27T10:40:00.5Z"},
			want: func() Record { r := def; r.Timestamp = 1732704000500; return r }()},
		{name: "timestamp not sane keeps the default", m: map[string]any{"timestamp": -5}, want: def},
		{name: "NaN timestamp keeps the default", m: map[string]any{"timestamp": math.NaN()}, want: def},
		{name: "invalid UTF-8 replaced", m: map[string]any{"streamData": "a\xffb"},
			want: func() Record { r := def; r.StreamData = "a\uFFFDb"; return r }()},
		{name: "bad event type", m: map[string]any{"eventType": "begin"}, err: `event type "begin"`},
		{name: "boolean session", m: map[string]any{"sessionId": true}, err: "sessionId must be a string, got a boolean"},
		{name: "object prompt", m: map[string]any{"prompt": map[string]any{}}, err: "prompt must be a string, got an object"},
		{name: "array metadata", m: map[string]any{"metadata": []any{1}}, err: "metadata must be a JSON object, got an array"},
		{name: "timestamp text", m: map[string]any{"timestamp": "soon"}, err: `timestamp "soon"`},
		{name: "unencodable metadata", m: map[string]any{"metadata": map[string]any{"f": func() {}}}, err: "cannot encode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Record
			err := RecordFromMap(tt.m, &def, &got)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestRecordFromMap_NoEventType(t *testing.T) {
	var rec Record
	if err := RecordFromMap(map[string]any{"sessionId": "s"}, &Record{}, &rec); err == nil || err.Error() != "eventType is missing" {
		t.Fatalf("err = %v, want eventType is missing", err)
	}
}

func TestAppendValue_MatchesEncodingJSON(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 0.1, 1e20, 1e21, 1.5e-7, 123456.789, -2.5e300} {
		want, _ := json.Marshal(f)
		got, err := AppendValue(nil, f)
		if err != nil || string(got) != string(want) {
			t.Errorf("AppendValue(%v) = %s, %v; want %s", f, got, err, want)
		}
	}
}

func withMeta(r Record, meta string) Record {
	r.Metadata = json.RawMessage(meta)
	return r
}
