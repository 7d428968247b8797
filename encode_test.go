package vibekit

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "nl\ncr\rtab\t", "nul\x00 bell\x07 esc\x1b",
		"é 日本語 😀", "bad \xff\xfe utf8", "line\u2028sep\u2029", "<html> & more"} {
		got := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("AppendString(%q) = %s: not JSON: %v", s, got, err)
			continue
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		if string(got) != string(bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Errorf("AppendString(%q) = %s, encoding/json gives %s", s, got, want.Bytes())
		}
	}
}

func TestAppendJSON(t *testing.T) {
	r := Record{ID: 3, SessionID: "s", EventType: EventEnd, AgentType: "claude", Prompt: "p",
		Metadata: json.RawMessage(`{"status":"success"}`), Timestamp: 1732704000000}
	got := string(AppendJSON(nil, &r))
	want := `{"id":3,"sessionId":"s","eventType":"end","agentType":"claude","mode":null,"prompt":"p","streamData":null,"sandboxId":null,"repoUrl":null,"metadata":{"status":"success"},"timestamp":1732704000000}`
	if got != want {
		t.Errorf("AppendJSON\n got %s\nwant %s", got, want)
	}
	r.Metadata = json.RawMessage(`not json`)
	if got := AppendJSON(nil, &r); !json.Valid(got) {
		t.Errorf("AppendJSON with bad metadata gives invalid JSON: %s", got)
	}
}
