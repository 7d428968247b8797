package jq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// MapVars are the variables a map program may use, in the order a Mapper
// passes their values:
//
//	$session  the current session: the sessionId of the last record the
//	          program gave, or MapOptions.Session before any
//	$agent, $mode, $prompt, $sandbox, $repo
//	          the flags (--agent, --mode, --prompt, --sandbox-id, --repo-url),
//	          null when not given
//	$run      an id of this run of the program over one input, unique per
//	          Mapper: the scope of the running totals an agent prints
var MapVars = []string{"$session", "$agent", "$mode", "$prompt", "$sandbox", "$repo", "$run"}

// CompileMap compiles a map program (a --map expression or a preset).
func CompileMap(src string) (*Program, error) { return Compile(src, MapVars...) }

// MapOptions are the flags a Mapper starts from.
type MapOptions struct {
	Session   string // rows that name no session go here (--session); not empty
	Agent     string // --agent, "" if not given: rows that name none get "unknown"
	Mode      string
	Prompt    string
	SandboxID string
	RepoURL   string
	Run       string // $run; "" gives a random id
	// Transcript maps an agent's transcript file, read again after every
	// restart from where it stopped: the Mapper writes no start or end rows
	// of its own (Session is only where rows that name no session go), and
	// holds no start row back.
	Transcript bool
}

// Limits that keep a Mapper's memory bounded whatever the input.
const (
	maxOutputs = 10000 // records one input may become
	maxOpen    = 1024  // sessions tracked for their closing end row
	maxTools   = 4096  // tool_use ids remembered to name their results
	maxModels  = 1024  // sessions whose last model is remembered
)

// Mapper turns input lines into records with a map program: the contract
// between vibekit-pipe and --map programs and presets.
//
// Each JSON object read is the program's input; each object it outputs is a
// record in the guide's field names (sessionId, eventType, agentType, mode,
// prompt, streamData, sandboxId, repoUrl, metadata, timestamp), under the
// rules of vibekit.RecordFromMap. `empty` drops the input (a skip); several
// outputs make several records. A field an output leaves out or sets to null
// takes the current session's value (sessionId, agentType, mode, sandboxId,
// repoUrl of the last record), eventType defaults to "stream" and timestamp
// to the time the line was read. Outputs of one input are all kept or, if
// one is not a valid record, none: the input is then a reject with the error.
//
// Lines that are not JSON objects (plain text, invalid JSON, arrays) are not
// given to the program: they become stream rows of the current session whose
// streamData is the line, with metadata {"partial":true} if a stop cut the
// line off.
//
// State the program cannot keep, the Mapper keeps:
//   - $session follows the last session a record named, so events that carry
//     no session id (codex) land in the session their thread started.
//   - A start row without a prompt is held until the next record. If that
//     record is in the same session and has a prompt (a user message), the
//     start row takes it. While a row is held, Pending is true.
//   - A row whose metadata has "tool_use_id" but no "tool" takes the tool
//     name of the earlier row with that tool_use_id and a "tool" (claude's
//     tool_result blocks name only the id).
//   - A row whose metadata.tokens (an object, or an array of objects) has no
//     "model" takes the last model its session named, in metadata.model or
//     metadata.tokens.model (codex names the model once, in a turn_context
//     or config line, and its token counts later).
//   - A row whose metadata.tokens has the same "key" as its session's last
//     usage loses it: a transcript repeats an API call's usage on a line per
//     content block, and one copy is enough.
//   - The --session session gets a start row (with --prompt) before its
//     first row unless that row is a start row, as plain text does without a
//     map. Finish ends it, and every session whose start row was seen but no
//     end or error row, with an end row: {"status", "duration" (ms since the
//     start row), "lines" (input lines mapped into it)}.
//
// A Mapper is not safe for concurrent use.
type Mapper struct {
	run  *Runner
	o    MapOptions
	vars []any
	cur  vibekit.Record // the current session's fields, which rows default to

	flagStarted bool // the --session session has had its start row
	held        vibekit.Record
	holding     bool
	open        map[string]*openSession
	opened      int // sessions opened so far, to end them in order
	// started holds the sessions that had a start row in this input: a
	// second one (Claude Code prints an init message for every turn of a
	// multi-turn run) becomes a stream row, so a session has one start.
	started map[string]struct{}
	tools   map[string]string
	models  map[string]string // the last model each session named
	lastKey map[string]string // the key of each session's last usage

	outs []any
	recs []vibekit.Record
	dec  ObjectDecoder
}

// openSession is a session that has a start row and no end row yet.
type openSession struct {
	start vibekit.Record
	order int
	lines int64
	flag  bool // the --session session started by the Mapper: it ends with the input's status
}

// NewMapper runs p, compiled with CompileMap, over the lines given to it.
// Close stops it.
func NewMapper(p *Program, o MapOptions) *Mapper {
	agent := o.Agent
	if agent == "" {
		agent = "unknown"
	}
	if o.Run == "" {
		var b [8]byte
		rand.Read(b[:])
		o.Run = hex.EncodeToString(b[:])
	}
	return &Mapper{
		run: p.NewRunner(),
		o:   o,
		vars: []any{o.Session, optional(o.Agent), optional(o.Mode), optional(o.Prompt),
			optional(o.SandboxID), optional(o.RepoURL), o.Run},
		cur:     vibekit.Record{SessionID: o.Session, AgentType: agent, Mode: o.Mode, SandboxID: o.SandboxID, RepoURL: o.RepoURL},
		open:    map[string]*openSession{},
		started: map[string]struct{}{},
		tools:   map[string]string{},
		models:  map[string]string{},
		lastKey: map[string]string{},
	}
}

// Close stops the program's watchdog.
func (m *Mapper) Close() { m.run.Close() }

// Session is the current session id ($session).
func (m *Mapper) Session() string { return m.cur.SessionID }

// Started tells the Mapper that the caller wrote the start row of the
// --session session and will write its end row itself (vibekit-pipe does so
// for a command it runs, with the command's exit code): the Mapper writes
// neither. Call it before the first line.
func (m *Mapper) Started() { m.flagStarted = true }

// Pending reports whether a start row is held back, waiting for the next
// record. A follower must not checkpoint past the line it came from while
// one is: it is in no batch yet.
func (m *Mapper) Pending() bool { return m.holding }

// Line maps one input line read at now. emit is called with each record to
// store, in order; besides the line's own records it may be given a start
// row held from an earlier line, or a start row the Mapper writes. n is the
// number of records the line itself became (0: a skip). A jq error, a
// timeout or an output that is not a valid record is returned as the
// reject reason, and nothing is emitted.
func (m *Mapper) Line(data []byte, partial bool, now time.Time, emit func(vibekit.Record)) (n int, err error) {
	obj, ok := m.dec.Decode(data)
	if !ok {
		return m.Text(vibekit.ValidUTF8(data), partial, now, emit), nil
	}
	return m.Value(obj, now, emit)
}

// DecodeObject decodes a line that is one JSON object, the lines a map
// program is given; ok is false for any other line. Line calls it; a caller
// may call it in another goroutine (decoding is a third of the work) and
// give the object to Value, and the line to Text when ok is false.
func DecodeObject(data []byte) (obj map[string]any, ok bool) { return decodeObject(data, nil) }

// ObjectDecoder decodes lines as DecodeObject does, keeping the strings of
// the objects' keys from line to line (see vibekit.ValueDecoder): a format's
// lines repeat a few dozen keys. Its zero value is ready to use; it is not
// safe for concurrent use.
type ObjectDecoder struct{ vd vibekit.ValueDecoder }

// Decode decodes a line that is one JSON object; ok is false for any other.
func (d *ObjectDecoder) Decode(data []byte) (obj map[string]any, ok bool) {
	return decodeObject(data, &d.vd)
}

func decodeObject(data []byte, vd *vibekit.ValueDecoder) (obj map[string]any, ok bool) {
	i := 0
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n') {
		i++
	}
	if i == len(data) || data[i] != '{' {
		return nil, false
	}
	var (
		v   any
		err error
	)
	if vd != nil {
		v, err = vd.Decode(data)
	} else {
		v, err = vibekit.DecodeValue(data)
	}
	if err != nil {
		return nil, false
	}
	obj, ok = v.(map[string]any)
	return obj, ok
}

// Value maps one input object read at now, as Line does.
func (m *Mapper) Value(v map[string]any, now time.Time, emit func(vibekit.Record)) (int, error) {
	if s, _ := m.vars[0].(string); s != m.cur.SessionID {
		m.vars[0] = m.cur.SessionID // boxing allocates: only on a change
	}
	outs := m.outs[:0]
	defer func() { clear(outs); m.outs = outs[:0] }()
	err := m.run.RunWith(context.Background(), v, m.vars, func(out any) error {
		if len(outs) == maxOutputs {
			return fmt.Errorf("the map program gave more than %d records for one input", maxOutputs)
		}
		outs = append(outs, out)
		return nil
	})
	if err != nil {
		return 0, err
	}
	def := vibekit.Record{SessionID: m.cur.SessionID, EventType: vibekit.EventStream, AgentType: m.cur.AgentType,
		Mode: m.cur.Mode, SandboxID: m.cur.SandboxID, RepoURL: m.cur.RepoURL, Timestamp: now.UnixMilli()}
	recs := m.recs[:0]
	defer func() { clear(recs); m.recs = recs[:0] }()
	for i, out := range outs {
		obj, ok := out.(map[string]any)
		if !ok {
			return 0, fmt.Errorf("map output %d is %s, not an object (`empty` drops an input)", i+1, vibekit.KindOf(out))
		}
		var rec vibekit.Record
		if err := vibekit.RecordFromMap(m.nameModel(m.nameTool(obj), def.SessionID), &def, &rec); err != nil {
			return 0, fmt.Errorf("map output %d: %w", i+1, err)
		}
		recs = append(recs, rec)
		def.SessionID, def.AgentType, def.Mode, def.SandboxID, def.RepoURL = rec.SessionID, rec.AgentType, rec.Mode, rec.SandboxID, rec.RepoURL
	}
	for i := range recs {
		m.put(recs[i], emit)
	}
	if len(recs) > 0 {
		m.cur = vibekit.Record{SessionID: def.SessionID, AgentType: def.AgentType, Mode: def.Mode, SandboxID: def.SandboxID, RepoURL: def.RepoURL}
		m.countLine()
	}
	return len(recs), nil
}

// Text stores a line that is not a JSON object: a stream row of the current
// session. It returns 1, the records the line became.
func (m *Mapper) Text(line string, partial bool, now time.Time, emit func(vibekit.Record)) int {
	rec := m.cur
	rec.EventType, rec.StreamData, rec.Timestamp = vibekit.EventStream, line, now.UnixMilli()
	if partial {
		rec.Metadata = json.RawMessage(`{"partial":true}`)
	}
	m.put(rec, emit)
	m.countLine()
	return 1
}

// Finish ends the input: it emits a held start row, then an end row for each
// session still open. status says how the input ended ("success",
// "interrupted", "output closed", "read error"); the --session session ends
// with it, and sessions the program started end with "incomplete" when the
// input ended normally (their agent never said they ended), else with it.
func (m *Mapper) Finish(now time.Time, status string, emit func(vibekit.Record)) {
	m.release(emit)
	if m.o.Transcript {
		return // the agent ends its sessions in the file, or has not yet
	}
	sessions := slices.SortedFunc(maps.Values(m.open), func(a, b *openSession) int { return a.order - b.order })
	for _, s := range sessions {
		st := status
		if !s.flag && status == "success" {
			st = "incomplete"
		}
		meta, _ := json.Marshal(map[string]any{
			"status":   st,
			"duration": max(0, now.UnixMilli()-s.start.Timestamp),
			"lines":    s.lines,
		})
		end := s.start
		end.EventType, end.Prompt, end.StreamData, end.Metadata, end.Timestamp = vibekit.EventEnd, "", "", meta, now.UnixMilli()
		emit(end)
	}
	clear(m.open)
}

// put emits rec after what must come before it, and keeps the session state.
func (m *Mapper) put(rec vibekit.Record, emit func(vibekit.Record)) {
	if m.holding && rec.SessionID == m.held.SessionID && rec.EventType != vibekit.EventStart && m.held.Prompt == "" {
		m.held.Prompt = rec.Prompt
	}
	m.release(emit)
	if rec.SessionID == m.o.Session && !m.flagStarted && !m.o.Transcript {
		m.flagStarted = true
		if rec.EventType != vibekit.EventStart {
			start := rec
			start.EventType, start.Prompt, start.StreamData, start.Metadata = vibekit.EventStart, m.o.Prompt, "", nil
			if start.Prompt == "" {
				start.Prompt = rec.Prompt
			}
			m.track(start, true)
			m.started[start.SessionID] = struct{}{}
			emit(start)
		}
	}
	if rec.EventType == vibekit.EventStart {
		if _, again := m.started[rec.SessionID]; again {
			rec.EventType = vibekit.EventStream
		} else {
			if len(m.started) >= maxOpen {
				clear(m.started)
			}
			m.started[rec.SessionID] = struct{}{}
		}
	}
	switch rec.EventType {
	case vibekit.EventStart:
		m.track(rec, false)
		if rec.Prompt == "" && !m.o.Transcript {
			m.held, m.holding = rec, true
			return
		}
	case vibekit.EventEnd, vibekit.EventError:
		delete(m.open, rec.SessionID)
	}
	emit(rec)
}

func (m *Mapper) release(emit func(vibekit.Record)) {
	if m.holding {
		m.holding = false
		emit(m.held)
		m.held = vibekit.Record{}
	}
}

// track notes a session's start row, so that Finish can end it.
func (m *Mapper) track(start vibekit.Record, flag bool) {
	if _, ok := m.open[start.SessionID]; ok || len(m.open) >= maxOpen {
		return
	}
	m.opened++
	start.Metadata = nil
	m.open[start.SessionID] = &openSession{start: start, order: m.opened, flag: flag}
}

// countLine counts an input line into the current session.
func (m *Mapper) countLine() {
	if s, ok := m.open[m.cur.SessionID]; ok {
		s.lines++
	}
}

// nameTool gives a tool result the name of its tool (see Mapper). It never
// changes obj: the program's outputs may share values with its constants.
func (m *Mapper) nameTool(obj map[string]any) map[string]any {
	md, ok := obj["metadata"].(map[string]any)
	if !ok {
		return obj
	}
	id, ok := md["tool_use_id"].(string)
	if !ok || id == "" {
		return obj
	}
	if tool, ok := md["tool"]; ok {
		if name, ok := tool.(string); ok {
			if len(m.tools) >= maxTools {
				clear(m.tools)
			}
			m.tools[id] = name
		}
		return obj
	}
	name, ok := m.tools[id]
	if !ok {
		return obj
	}
	delete(m.tools, id)
	md = maps.Clone(md)
	md["tool"] = name
	obj = maps.Clone(obj)
	obj["metadata"] = md
	return obj
}

// nameModel gives the usage a row carries the model its session last named
// when the usage names none (see Mapper); sid is the session a row without
// a sessionId goes to. Like nameTool, it never changes obj.
func (m *Mapper) nameModel(obj map[string]any, sid string) map[string]any {
	md, ok := obj["metadata"].(map[string]any)
	if !ok {
		return obj
	}
	if s, ok := obj["sessionId"].(string); ok && s != "" {
		sid = s
	}
	if name, ok := md["model"].(string); ok && name != "" {
		m.remember(sid, name)
	}
	tokens, ok := md["tokens"]
	if !ok {
		return obj
	}
	switch t := tokens.(type) {
	case map[string]any:
		if k, ok := t["key"].(string); ok && k != "" {
			if m.lastKey[sid] == k {
				// The same API call as the session's last usage: a transcript
				// writes one line per content block, each with the call's
				// usage. Reports count it once anyway; stored once, they read
				// half as much.
				md = maps.Clone(md)
				delete(md, "tokens")
				obj = maps.Clone(obj)
				obj["metadata"] = md
				return obj
			}
			if len(m.lastKey) >= maxModels {
				clear(m.lastKey)
			}
			m.lastKey[sid] = k
		}
		if name, ok := t["model"].(string); ok && name != "" {
			m.remember(sid, name)
			return obj
		}
		name, ok := m.models[sid]
		if !ok {
			return obj
		}
		t = maps.Clone(t)
		t["model"] = name
		tokens = t
	case []any:
		name, ok := m.models[sid]
		if !ok {
			return obj
		}
		var list []any
		for i, v := range t {
			u, ok := v.(map[string]any)
			if !ok {
				continue
			}
			if s, ok := u["model"].(string); ok && s != "" {
				continue
			}
			if list == nil {
				list = slices.Clone(t)
			}
			u = maps.Clone(u)
			u["model"] = name
			list[i] = u
		}
		if list == nil {
			return obj
		}
		tokens = list
	default:
		return obj
	}
	md = maps.Clone(md)
	md["tokens"] = tokens
	obj = maps.Clone(obj)
	obj["metadata"] = md
	return obj
}

func (m *Mapper) remember(sid, model string) {
	if m.models[sid] == model {
		return
	}
	if len(m.models) >= maxModels {
		clear(m.models)
	}
	m.models[sid] = model
}
