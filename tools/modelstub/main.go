// Command modelstub is a scripted stand-in for the model APIs that the agent
// CLIs call: Anthropic's Messages API (Claude Code), OpenAI's Responses API
// (Codex) and Gemini's generateContent (Gemini CLI). It binds to loopback only,
// so the real CLIs run offline here, and it says what the model answers and
// which token counts it reports; the CLIs' own output, transcripts and cost
// totals can then be kept as test fixtures.
//
//	modelstub -script turns.json -addr-file addr.txt -log requests.ndjson &
//	ANTHROPIC_BASE_URL=http://$(cat addr.txt) claude -p "fix it" --output-format stream-json --verbose
//
// It exits by itself after -timeout, or after -idle without a request.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "modelstub:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("modelstub", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on (loopback only)")
	addrFile := fs.String("addr-file", "", "write the bound host:port to this file once listening")
	script := fs.String("script", "", "JSON file: the replies, in order (see reply)")
	logPath := fs.String("log", "", "append each request as one NDJSON line to this file")
	bodies := fs.String("bodies", "", "write each model request's body to DIR/N.json")
	timeout := fs.Duration("timeout", 2*time.Minute, "exit after this long in all")
	idle := fs.Duration("idle", 30*time.Second, "exit after this long without a request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", *addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-addr %q: only loopback addresses are served", *addr)
	}
	var nonce [6]byte
	rand.Read(nonce[:])
	s := &server{bodies: *bodies, run: hex.EncodeToString(nonce[:])}
	if *script != "" {
		b, err := os.ReadFile(*script)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &s.replies); err != nil {
			return fmt.Errorf("script %s: %w", *script, err)
		}
	}
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		s.log = f
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(ln.Addr().String()), 0o600); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	s.seen = make(chan struct{}, 1)
	go func() {
		t := time.NewTimer(*idle)
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.seen:
				t.Reset(*idle)
			case <-t.C:
				cancel()
				return
			}
		}
	}()
	srv := &http.Server{Handler: s}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// reply is one scripted answer of the model. The first reply not yet used
// whose Match (if any) occurs in the request body answers the request;
// without one, a short text answer with small usage does.
type reply struct {
	Match    string          `json:"match,omitempty"`    // a substring of the request body
	Model    string          `json:"model,omitempty"`    // the model named in the answer; default: the request's
	ID       string          `json:"id,omitempty"`       // message id (Anthropic) or response id (OpenAI)
	Request  string          `json:"request,omitempty"`  // the request-id header (Anthropic)
	Thinking string          `json:"thinking,omitempty"` // a thinking block before the text
	Text     string          `json:"text,omitempty"`
	Tool     *toolCall       `json:"tool,omitempty"` // a tool call after the text
	Usage    usage           `json:"usage"`
	Status   int             `json:"status,omitempty"` // an HTTP error instead of an answer (529, 500, 429)
	Error    json.RawMessage `json:"error,omitempty"`  // the error body with Status
	Delay    string          `json:"delay,omitempty"`  // wait this long before answering (a Go duration)
	Repeat   bool            `json:"repeat,omitempty"` // answer every matching request, not only the first
}

type toolCall struct {
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

// usage is the token counts the answer reports, by kind.
type usage struct {
	Input         int64 `json:"input"`
	Output        int64 `json:"output"`
	CacheCreation int64 `json:"cacheCreation"`
	CacheRead     int64 `json:"cacheRead"`
	Reasoning     int64 `json:"reasoning"`
}

type server struct {
	mu      sync.Mutex
	replies []reply
	used    []bool
	n       int
	log     io.Writer
	bodies  string // a directory for the request bodies, or ""
	run     string // this server's part of the ids it makes
	seen    chan struct{}
}

// next picks the reply for a request body and numbers the request.
func (s *server) next(body []byte) (reply, int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used == nil {
		s.used = make([]bool, len(s.replies))
	}
	s.n++
	for i, r := range s.replies {
		if !s.used[i] && (r.Match == "" || strings.Contains(string(body), r.Match)) {
			s.used[i] = !r.Repeat
			return r, i, s.n
		}
	}
	return reply{Text: "Done.", Usage: usage{Input: 1, Output: 1}}, -1, s.n
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case s.seen <- struct{}{}:
	default:
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	json.Unmarshal(body, &req)
	path := r.URL.Path
	api := ""
	switch {
	case strings.HasSuffix(path, "/messages") && r.Method == http.MethodPost:
		api = "anthropic"
	case strings.HasSuffix(path, "/responses") && r.Method == http.MethodPost:
		api = "openai"
	case strings.Contains(path, ":generateContent") || strings.Contains(path, ":streamGenerateContent"):
		api = "gemini"
		if i := strings.LastIndex(path, "/models/"); i >= 0 {
			req.Model = strings.SplitN(path[i+len("/models/"):], ":", 2)[0]
		}
	}
	var rep reply
	idx, n := -1, 0
	if api != "" {
		rep, idx, n = s.next(body)
	}
	s.record(r, req.Model, body, api, idx, n)
	if s.bodies != "" && api != "" {
		os.WriteFile(fmt.Sprintf("%s/%d.json", s.bodies, n), body, 0o600)
	}
	if api == "" {
		s.other(w, r)
		return
	}
	if rep.Delay != "" {
		if d, err := time.ParseDuration(rep.Delay); err == nil {
			time.Sleep(d)
		}
	}
	if rep.Model == "" {
		rep.Model = req.Model
	}
	// Ids are unique across runs, as the real APIs' are: reports count an
	// API call once by them.
	if rep.ID == "" {
		rep.ID = fmt.Sprintf("msg_%s%04d", s.run, n)
	}
	if rep.Request == "" {
		rep.Request = fmt.Sprintf("req_%s%04d", s.run, n)
	}
	if rep.Status != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("request-id", rep.Request)
		w.WriteHeader(rep.Status)
		if len(rep.Error) > 0 {
			w.Write(rep.Error)
		}
		return
	}
	switch api {
	case "anthropic":
		anthropic(w, rep, req.Stream)
	case "openai":
		openai(w, rep)
	case "gemini":
		gemini(w, rep, strings.Contains(path, ":streamGenerateContent"))
	}
}

// other answers what is not a model call: Gemini's countTokens, HEAD probes.
func (s *server) other(w http.ResponseWriter, r *http.Request) {
	if strings.Contains(r.URL.Path, ":countTokens") {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"totalTokens":1}`)
		return
	}
	if r.Method == http.MethodHead || r.URL.Path == "/" {
		w.WriteHeader(http.StatusOK)
		return
	}
	http.NotFound(w, r)
}

func (s *server) record(r *http.Request, model string, body []byte, api string, idx, n int) {
	if s.log == nil {
		return
	}
	line, _ := json.Marshal(map[string]any{
		"n": n, "api": api, "model": model, "reply": idx, "method": r.Method, "path": r.URL.Path,
		"query": r.URL.RawQuery, "bytes": len(body),
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log.Write(append(line, '\n'))
}

func sse(w http.ResponseWriter, event string, v any) {
	b, _ := json.Marshal(v)
	if event != "" {
		fmt.Fprintf(w, "event: %s\n", event)
	}
	fmt.Fprintf(w, "data: %s\n\n", b)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

type obj = map[string]any

func anthropic(w http.ResponseWriter, rep reply, stream bool) {
	u := rep.Usage
	var blocks []obj
	if rep.Thinking != "" {
		blocks = append(blocks, obj{"type": "thinking", "thinking": rep.Thinking, "signature": "stub"})
	}
	if rep.Text != "" || (rep.Tool == nil && rep.Thinking == "") {
		blocks = append(blocks, obj{"type": "text", "text": rep.Text})
	}
	stop := "end_turn"
	if rep.Tool != nil {
		id := rep.Tool.ID
		if id == "" {
			id = "toolu_" + rep.ID
		}
		input := rep.Tool.Input
		if len(input) == 0 {
			input = json.RawMessage(`{}`)
		}
		blocks = append(blocks, obj{"type": "tool_use", "id": id, "name": rep.Tool.Name, "input": input})
		stop = "tool_use"
	}
	w.Header().Set("request-id", rep.Request)
	if !stream {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(obj{
			"id": rep.ID, "type": "message", "role": "assistant", "model": rep.Model,
			"content": blocks, "stop_reason": stop, "stop_sequence": nil,
			"usage": obj{"input_tokens": u.Input, "output_tokens": u.Output,
				"cache_creation_input_tokens": u.CacheCreation, "cache_read_input_tokens": u.CacheRead},
		})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	sse(w, "message_start", obj{"type": "message_start", "message": obj{
		"id": rep.ID, "type": "message", "role": "assistant", "model": rep.Model,
		"content": []any{}, "stop_reason": nil, "stop_sequence": nil,
		"usage": obj{"input_tokens": u.Input, "output_tokens": 1,
			"cache_creation_input_tokens": u.CacheCreation, "cache_read_input_tokens": u.CacheRead},
	}})
	for i, b := range blocks {
		switch b["type"] {
		case "thinking":
			sse(w, "content_block_start", obj{"type": "content_block_start", "index": i, "content_block": obj{"type": "thinking", "thinking": ""}})
			sse(w, "content_block_delta", obj{"type": "content_block_delta", "index": i, "delta": obj{"type": "thinking_delta", "thinking": b["thinking"]}})
			sse(w, "content_block_delta", obj{"type": "content_block_delta", "index": i, "delta": obj{"type": "signature_delta", "signature": "stub"}})
		case "text":
			sse(w, "content_block_start", obj{"type": "content_block_start", "index": i, "content_block": obj{"type": "text", "text": ""}})
			sse(w, "content_block_delta", obj{"type": "content_block_delta", "index": i, "delta": obj{"type": "text_delta", "text": b["text"]}})
		case "tool_use":
			sse(w, "content_block_start", obj{"type": "content_block_start", "index": i, "content_block": obj{"type": "tool_use", "id": b["id"], "name": b["name"], "input": obj{}}})
			sse(w, "content_block_delta", obj{"type": "content_block_delta", "index": i, "delta": obj{"type": "input_json_delta", "partial_json": string(b["input"].(json.RawMessage))}})
		}
		sse(w, "content_block_stop", obj{"type": "content_block_stop", "index": i})
	}
	sse(w, "message_delta", obj{"type": "message_delta", "delta": obj{"stop_reason": stop, "stop_sequence": nil},
		"usage": obj{"output_tokens": u.Output}})
	sse(w, "message_stop", obj{"type": "message_stop"})
}

func openai(w http.ResponseWriter, rep reply) {
	u := rep.Usage
	w.Header().Set("Content-Type", "text/event-stream")
	resp := obj{"id": rep.ID, "object": "response", "model": rep.Model, "status": "in_progress", "output": []any{}}
	sse(w, "response.created", obj{"type": "response.created", "response": resp})
	var items []obj
	if rep.Thinking != "" {
		items = append(items, obj{"type": "reasoning", "id": "rs_" + rep.ID, "summary": []any{obj{"type": "summary_text", "text": rep.Thinking}}})
	}
	if rep.Text != "" || rep.Tool == nil {
		items = append(items, obj{"type": "message", "id": "msg_" + rep.ID, "role": "assistant", "status": "completed",
			"content": []any{obj{"type": "output_text", "text": rep.Text, "annotations": []any{}}}})
	}
	if rep.Tool != nil {
		id := rep.Tool.ID
		if id == "" {
			id = "call_" + rep.ID
		}
		items = append(items, obj{"type": "function_call", "id": "fc_" + rep.ID, "call_id": id, "name": rep.Tool.Name,
			"arguments": string(rep.Tool.Input), "status": "completed"})
	}
	for i, it := range items {
		sse(w, "response.output_item.added", obj{"type": "response.output_item.added", "output_index": i, "item": it})
		if it["type"] == "message" {
			sse(w, "response.output_text.delta", obj{"type": "response.output_text.delta", "output_index": i, "content_index": 0, "item_id": it["id"], "delta": rep.Text})
		}
		sse(w, "response.output_item.done", obj{"type": "response.output_item.done", "output_index": i, "item": it})
	}
	resp["status"] = "completed"
	resp["output"] = items
	resp["usage"] = obj{
		"input_tokens":          u.Input + u.CacheRead,
		"input_tokens_details":  obj{"cached_tokens": u.CacheRead},
		"output_tokens":         u.Output + u.Reasoning,
		"output_tokens_details": obj{"reasoning_tokens": u.Reasoning},
		"total_tokens":          u.Input + u.CacheRead + u.Output + u.Reasoning,
	}
	sse(w, "response.completed", obj{"type": "response.completed", "response": resp})
}

func gemini(w http.ResponseWriter, rep reply, stream bool) {
	u := rep.Usage
	var parts []any
	if rep.Thinking != "" {
		parts = append(parts, obj{"text": rep.Thinking, "thought": true})
	}
	if rep.Text != "" || rep.Tool == nil {
		parts = append(parts, obj{"text": rep.Text})
	}
	if rep.Tool != nil {
		parts = append(parts, obj{"functionCall": obj{"name": rep.Tool.Name, "args": rep.Tool.Input}})
	}
	doc := obj{
		"candidates": []any{obj{"content": obj{"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}},
		"usageMetadata": obj{
			"promptTokenCount":        u.Input + u.CacheRead,
			"cachedContentTokenCount": u.CacheRead,
			"candidatesTokenCount":    u.Output,
			"thoughtsTokenCount":      u.Reasoning,
			"totalTokenCount":         u.Input + u.CacheRead + u.Output + u.Reasoning,
		},
		"modelVersion": rep.Model,
		"responseId":   rep.ID,
	}
	if !stream {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(doc)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	sse(w, "", doc)
}
