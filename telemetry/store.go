// Package telemetry is the Go library of the local telemetry store, in two
// parts that the guide names:
//
//   - Store is the guide's TelemetryDB: insert events, and query them with
//     the guide's filters, session summaries and statistics; clear, prune,
//     vacuum, health checks, and the compliance exports and deletions.
//   - Tracker is the guide's TelemetryService: TrackStart, TrackStream,
//     TrackEnd and TrackError from any number of goroutines and sessions at
//     once, with stream events buffered per session and agent and written
//     in batches.
//
// Both write the same SQLite file that vibekit-pipe writes and the vibekit
// CLI reads. Errors are returned, never printed, and never panics: telemetry
// must not break the program that records it.
package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/redact"
	"github.com/vibekit/vibekit-pipe/rotate"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

// The domain types, under the names the guide gives them.
type (
	// Record is the guide's TelemetryRecord.
	Record = vibekit.Record
	// EventType is start, stream, end or error.
	EventType = vibekit.EventType
	// SessionSummary is what GetSession and GetSessions return.
	SessionSummary = vibekit.SessionSummary
	// Stats is what GetStats returns.
	Stats = vibekit.Stats
	// AgentStats is one agent's line of GetAgentStats.
	AgentStats = vibekit.AgentStats
)

// The event types.
const (
	EventStart  = vibekit.EventStart
	EventStream = vibekit.EventStream
	EventEnd    = vibekit.EventEnd
	EventError  = vibekit.EventError
)

// Errors callers tell apart.
var (
	// ErrNotFound: GetSession of a session that has no events.
	ErrNotFound = vibekit.ErrNotFound
	// ErrClosed: the Store or Tracker was closed.
	ErrClosed = errors.New("telemetry: closed")
	// ErrReadOnly: a write to a Store opened with Config.ReadOnly.
	ErrReadOnly = errors.New("telemetry: store is read-only")
	// ErrWALNotScrubbed: DeleteUserData deleted the rows, but another
	// process kept the database from being rewritten without its free
	// pages, or the WAL from being emptied; call it again later.
	ErrWALNotScrubbed = errors.New("telemetry: deleted, but another process kept the free pages or the WAL from being scrubbed")
)

// Defaults of Config, as the guide sets them.
const (
	DefaultPath                = ".vibekit/telemetry.db"
	DefaultStreamBatchSize     = 50
	DefaultStreamFlushInterval = time.Second
	DefaultUserIDField         = "userId"
)

// Config is the guide's LocalStoreConfig. The zero value works: every
// field has the guide's default.
type Config struct {
	// Path of the SQLite file (the guide's path). Default .vibekit/telemetry.db.
	Path string
	// StreamBatchSize is how many stream events a buffer holds before it
	// is written. Default 50.
	StreamBatchSize int
	// StreamFlushInterval is the longest a buffered stream event waits.
	// Default 1s.
	StreamFlushInterval time.Duration
	// PruneDays, when above 0, deletes events older than that many days
	// when the store opens, and every hour while a Tracker runs.
	PruneDays int
	// DisableIndexes drops the query indexes, for write-heavy use (the
	// guide's enableIndexes: false).
	DisableIndexes bool
	// ReadOnly opens an existing database for reading only.
	ReadOnly bool
	// UserIDField is the metadata field (dotted for nested values) that
	// ExportUserData and DeleteUserData match. Default userId.
	UserIDField string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Waiting, if set, is called once when opening the database for writing
	// has waited a few seconds for another process's lock, so that the
	// program can tell its user; the open goes on waiting until the lock
	// frees, as the pipe's does.
	Waiting func()

	// Redact is what is redacted from every record before it is written,
	// as vibekit-pipe's --redact, --redact-pattern and --hash-field do. nil
	// means the pipe's default, redact.Secrets (API keys, tokens, private
	// keys, passwords in URLs); &redact.Options{Level: redact.None} turns
	// redaction off.
	Redact *redact.Options
}

func (c Config) withDefaults() Config {
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if c.StreamBatchSize <= 0 {
		c.StreamBatchSize = DefaultStreamBatchSize
	}
	if c.StreamFlushInterval <= 0 {
		c.StreamFlushInterval = DefaultStreamFlushInterval
	}
	if c.UserIDField == "" {
		c.UserIDField = DefaultUserIDField
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Store is the guide's TelemetryDB. It is safe for concurrent use. The
// database file and its directory are created on first use, not by Open.
type Store struct {
	cfg Config
	red *redact.Redactor // nil: nothing to redact

	mu     sync.RWMutex // writers and Close hold it; readers share it
	db     *sqlite.DB
	closed bool
}

// Open returns a store for cfg. It touches no file: the database is opened
// (and created, with its directories) by the first call that needs it.
func Open(cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if cfg.PruneDays < 0 {
		return nil, fmt.Errorf("telemetry: PruneDays is %d; want 0 (off) or more", cfg.PruneDays)
	}
	ro := redact.Options{Level: redact.Secrets}
	if cfg.Redact != nil {
		ro = *cfg.Redact
	}
	red, err := redact.New(ro)
	if err != nil {
		return nil, fmt.Errorf("telemetry: redact: %w", err)
	}
	st := &Store{cfg: cfg}
	if red.Enabled() {
		st.red = red
	}
	return st, nil
}

// Path is the database file's path.
func (s *Store) Path() string { return s.cfg.Path }

// handle returns the open database. The caller holds s.mu, after
// ensureOpen: only Close, which marks the store closed, takes it away.
func (s *Store) handle() (*sqlite.DB, error) {
	if s.closed || s.db == nil {
		return nil, ErrClosed
	}
	return s.db, nil
}

// use runs fn with the database under the read lock, opening it first if
// need be.
func (s *Store) use(fn func(*sqlite.DB) error) error {
	if err := s.ensureOpen(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	db, err := s.handle()
	if err != nil {
		return err
	}
	return fn(db)
}

// write runs fn with the database under the write lock: sqlite.DB commits
// one batch at a time.
func (s *Store) write(fn func(*sqlite.DB) error) error {
	if s.cfg.ReadOnly {
		return ErrReadOnly
	}
	if err := s.ensureOpen(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	db, err := s.handle()
	if err != nil {
		return err
	}
	return fn(db)
}

// ensureOpen opens the database if it is not open yet, and prunes it if
// the config asks.
func (s *Store) ensureOpen() error {
	s.mu.RLock()
	open, closed := s.db != nil, s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if open {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.db != nil {
		return nil
	}
	var (
		db  *sqlite.DB
		err error
	)
	if s.cfg.ReadOnly {
		db, err = sqlite.OpenReadOnly(s.cfg.Path)
	} else {
		db, err = sqlite.Open(s.cfg.Path, sqlite.Options{EnableIndexes: !s.cfg.DisableIndexes, Now: s.cfg.Now, Waiting: s.cfg.Waiting})
	}
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	s.db = db
	if s.cfg.PruneDays > 0 && !s.cfg.ReadOnly {
		if _, err := s.prune(context.Background(), db, s.cfg.PruneDays); err != nil {
			return fmt.Errorf("telemetry: prune: %w", err)
		}
	}
	return nil
}

// prune deletes the events and rejected lines older than days days and logs
// what went in vk_prunes, where stats reports it.
func (s *Store) prune(ctx context.Context, db *sqlite.DB, days int) (int64, error) {
	now := s.cfg.Now()
	before := now.AddDate(0, 0, -days)
	// As vibekit-pipe's retention: the telemetry table and rejects, not the
	// rows a seal under way in another process is archiving.
	rows, rejects, err := db.Prune(ctx, before) // strictly older
	if err != nil && !errors.Is(err, sqlite.ErrNotScrubbed) {
		return 0, err
	}
	return rows, errors.Join(err, db.RecordPrune(ctx, sqlite.PruneResult{Time: now, Before: before, Rows: rows, Rejects: rejects}))
}

// Close closes the database. A closed store returns ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}

// InsertEvent writes one record at once.
func (s *Store) InsertEvent(ctx context.Context, r Record) error {
	return s.InsertBatch(ctx, []Record{r})
}

// InsertBatch writes records in one transaction: all of them or none. A
// record needs a sessionId and one of the four event types; its metadata,
// if any, must be a JSON object; a zero timestamp is the time of the call.
func (s *Store) InsertBatch(ctx context.Context, records []Record) error {
	if len(records) == 0 {
		return nil
	}
	b := &vibekit.Batch{Records: make([]Record, len(records))}
	now := s.cfg.Now().UnixMilli()
	var streams map[string]*redact.Stream // by session: a key printed over several events
	for i, r := range records {
		if err := checkRecord(&r, now); err != nil {
			return fmt.Errorf("telemetry: record %d: %w", i, err)
		}
		if s.red != nil {
			if streams == nil {
				streams = map[string]*redact.Stream{}
			}
			st := streams[r.SessionID]
			if st == nil {
				st = s.red.NewStream()
				streams[r.SessionID] = st
			}
			st.Record(&r)
		}
		b.Records[i] = r
	}
	return s.commit(ctx, b)
}

func (s *Store) commit(ctx context.Context, b *vibekit.Batch) error {
	return s.write(func(db *sqlite.DB) error {
		if _, err := db.Commit(ctx, b); err != nil {
			return fmt.Errorf("telemetry: %w", err)
		}
		return nil
	})
}

// checkRecord validates r and fills its timestamp.
func checkRecord(r *Record, now int64) error {
	if r.SessionID == "" {
		return errors.New("sessionId is empty")
	}
	if !r.EventType.Valid() {
		return fmt.Errorf("eventType %q is not one of start, stream, end, error", r.EventType)
	}
	if len(r.Metadata) > 0 {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(r.Metadata, &obj); err != nil {
			return fmt.Errorf("metadata is not a JSON object: %w", err)
		}
	}
	if r.Timestamp == 0 {
		r.Timestamp = now
	}
	return nil
}

// When is a point in time for a filter: a time.Time, or text as the CLI
// takes it ("yesterday", "1 hour ago", "2024-01-31", "7d", Unix ms). The
// zero When leaves that side of a range open.
type When struct {
	Time time.Time
	Text string
}

// At is the time t.
func At(t time.Time) When { return When{Time: t} }

// TimeText is a time written as text, read when the query runs.
func TimeText(s string) When { return When{Text: s} }

func (w When) resolve(now time.Time) (time.Time, error) {
	if w.Text == "" {
		return w.Time, nil
	}
	return vibekit.ParseTime(w.Text, now)
}

// QueryFilter is the guide's TelemetryQueryFilter. Zero fields select all.
type QueryFilter struct {
	From, To   When // inclusive
	SessionID  string
	SessionIDs []string
	EventType  EventType
	AgentType  string
	AgentTypes []string
	Mode       string
	Contains   string // in prompt or streamData, case-sensitive
	// Metadata matches metadata fields (dotted keys for nested values) to
	// strings, numbers or booleans.
	Metadata map[string]any
	Limit    int // 0: no limit
	Offset   int
	OrderBy  string // timestamp_asc (the default) or timestamp_desc
}

func (f *QueryFilter) filter(now time.Time) (vibekit.Filter, error) {
	var out vibekit.Filter
	var err error
	if out.From, err = f.From.resolve(now); err != nil {
		return out, fmt.Errorf("from: %w", err)
	}
	if out.To, err = f.To.resolve(now); err != nil {
		return out, fmt.Errorf("to: %w", err)
	}
	out.SessionIDs = append(out.SessionIDs, f.SessionIDs...)
	if f.SessionID != "" {
		out.SessionIDs = append(out.SessionIDs, f.SessionID)
	}
	if f.EventType != "" {
		if !f.EventType.Valid() {
			return out, fmt.Errorf("eventType %q is not one of start, stream, end, error", f.EventType)
		}
		out.EventTypes = []EventType{f.EventType}
	}
	out.AgentTypes = append(out.AgentTypes, f.AgentTypes...)
	if f.AgentType != "" {
		out.AgentTypes = append(out.AgentTypes, f.AgentType)
	}
	if f.Mode != "" {
		out.Modes = []string{f.Mode}
	}
	out.Contains = f.Contains
	for k, v := range f.Metadata {
		text, err := metadataText(v)
		if err != nil {
			return out, fmt.Errorf("metadata %q: %w", k, err)
		}
		if out.Metadata == nil {
			out.Metadata = map[string]string{}
		}
		out.Metadata[k] = text
	}
	if f.Limit < 0 || f.Offset < 0 {
		return out, errors.New("limit and offset must not be negative")
	}
	out.Limit, out.Offset = f.Limit, f.Offset
	if out.Order, err = vibekit.ParseOrder(f.OrderBy); err != nil {
		return out, err
	}
	return out, nil
}

// metadataText is v as SQLite's json_extract gives it back as text:
// booleans are 1 and 0.
func metadataText(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		if v {
			return "1", nil
		}
		return "0", nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "", errors.New("not a finite number")
		}
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			return strconv.FormatInt(int64(v), 10), nil
		}
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	case json.Number:
		return v.String(), nil
	}
	return "", fmt.Errorf("want a string, number or boolean, got %T", v)
}

// GetEvents returns the records that f selects, oldest first unless
// f.OrderBy says timestamp_desc.
func (s *Store) GetEvents(ctx context.Context, f QueryFilter) ([]Record, error) {
	vf, err := f.filter(s.cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("telemetry: get events: %w", err)
	}
	var out []Record
	err = s.use(func(db *sqlite.DB) error {
		out, err = db.GetEvents(ctx, vf)
		return err
	})
	if out == nil {
		out = []Record{}
	}
	return out, err
}

// GetSession summarises one session: its duration, event count and status.
// It returns an error wrapping ErrNotFound if the session has no events.
func (s *Store) GetSession(ctx context.Context, sessionID string) (SessionSummary, error) {
	var out SessionSummary
	err := s.use(func(db *sqlite.DB) error {
		ss, err := db.Session(ctx, sessionID)
		if err == nil {
			out = *ss
		}
		return err
	})
	return out, err
}

// SessionFilter selects sessions for GetSessions: by when they started, by
// agent and mode, paged and ordered by start time.
type SessionFilter struct {
	From, To   When
	AgentTypes []string
	Mode       string
	Limit      int
	Offset     int
	OrderBy    string // timestamp_asc (the default) or timestamp_desc
}

// GetSessions summarises the sessions that f selects.
func (s *Store) GetSessions(ctx context.Context, f SessionFilter) ([]SessionSummary, error) {
	qf := QueryFilter{From: f.From, To: f.To, AgentTypes: f.AgentTypes, Mode: f.Mode, Limit: f.Limit, Offset: f.Offset, OrderBy: f.OrderBy}
	vf, err := qf.filter(s.cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("telemetry: get sessions: %w", err)
	}
	var out []SessionSummary
	err = s.use(func(db *sqlite.DB) error {
		out, err = db.Sessions(ctx, vf)
		return err
	})
	return out, err
}

// StatsOptions are the guide's getStats options.
type StatsOptions struct {
	// GroupBy adds event counts by a column: agentType, eventType, mode,
	// sessionId, sandboxId or repoUrl.
	GroupBy    string
	From, To   When
	AgentTypes []string
	// By adds a timeline of event counts: "hour" or "day".
	By string
}

// GetStats summarises the store: events, sessions, agents and their
// shares, the date range, the database size and the average session
// duration.
func (s *Store) GetStats(ctx context.Context, o StatsOptions) (*Stats, error) {
	qf := QueryFilter{From: o.From, To: o.To, AgentTypes: o.AgentTypes}
	vf, err := qf.filter(s.cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("telemetry: get stats: %w", err)
	}
	var out *Stats
	err = s.use(func(db *sqlite.DB) error {
		out, err = db.Stats(ctx, vf, sqlite.StatsOptions{GroupBy: o.GroupBy, By: o.By})
		return err
	})
	return out, err
}

// GetAgentStats summarises each agent type, most events first.
func (s *Store) GetAgentStats(ctx context.Context) ([]AgentStats, error) {
	var out []AgentStats
	err := s.use(func(db *sqlite.DB) (err error) {
		out, err = db.AgentStats(ctx, vibekit.Filter{})
		return err
	})
	return out, err
}

// ClearFilter selects the events Clear deletes; the zero filter, all.
type ClearFilter struct {
	Before     When // only events older than this
	SessionIDs []string
	AgentTypes []string
}

// Clear deletes the events that f selects and returns how many it deleted.
// Rejected input lines go too when f selects by time alone.
func (s *Store) Clear(ctx context.Context, f ClearFilter) (int64, error) {
	vf := vibekit.Filter{SessionIDs: f.SessionIDs, AgentTypes: f.AgentTypes}
	before, err := f.Before.resolve(s.cfg.Now())
	if err != nil {
		return 0, fmt.Errorf("telemetry: clear: before: %w", err)
	}
	if !before.IsZero() {
		vf.To = before.Add(-time.Millisecond) // strictly older
	}
	var n sqlite.Counts
	err = s.write(func(db *sqlite.DB) (err error) {
		// Under the seal lock: rows a seal under way is archiving would be
		// counted as cleared and kept in the archive all the same.
		return (&rotate.Sealer{DB: db}).Exclusive(ctx, time.Minute, func() (err error) {
			n, err = db.Clear(ctx, vf)
			return err
		})
	})
	return n.Events, err
}

// PruneOldRecords deletes events older than days days and returns how many.
// Like PruneDays, it is retention: GetStats reports it in Pruned.
func (s *Store) PruneOldRecords(ctx context.Context, days int) (int64, error) {
	if days <= 0 {
		return 0, fmt.Errorf("telemetry: prune: days is %d; want 1 or more", days)
	}
	var n int64
	err := s.write(func(db *sqlite.DB) (err error) {
		n, err = s.prune(ctx, db, days)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("telemetry: prune: %w", err)
	}
	return n, nil
}

// Vacuum rebuilds the database to give deleted space back to the disk.
func (s *Store) Vacuum(ctx context.Context) error {
	return s.write(func(db *sqlite.DB) error { return db.Vacuum(ctx) })
}

// Health is the guide's HealthStatus.
type Health struct {
	// Database is true when the database opens and answers a query.
	Database bool `json:"database"`
	// Buffer is true when no write of buffered events has failed since
	// the last one that succeeded (always true for a Store, which buffers
	// nothing).
	Buffer bool `json:"buffer"`
	// DiskSpace is the space left for the database, in MB.
	DiskSpace int64 `json:"diskSpace"`
	// BufferedEvents and ActiveBuffers describe a Tracker's buffers.
	BufferedEvents int `json:"bufferedEvents"`
	ActiveBuffers  int `json:"activeBuffers"`
	// Error says why Database or Buffer is false.
	Error string `json:"error,omitempty"`
}

// HealthCheck reports whether the database is reachable and the disk
// space left beside it.
func (s *Store) HealthCheck(ctx context.Context) Health {
	h := Health{Buffer: true, DiskSpace: diskSpaceMB(s.cfg.Path)}
	err := s.use(func(db *sqlite.DB) error {
		var n int
		return db.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM telemetry LIMIT 1)`).Scan(&n)
	})
	if err != nil {
		h.Error = err.Error()
	} else {
		h.Database = true
	}
	return h
}

// diskSpaceMB is the space available to unprivileged users on the file
// system that holds path (or its nearest existing parent), in MB; -1 if
// it cannot be told.
func diskSpaceMB(path string) int64 {
	dir := filepath.Dir(path)
	for {
		var st unix.Statfs_t
		err := unix.Statfs(dir, &st)
		if err == nil {
			return int64(uint64(st.Bavail) * uint64(st.Bsize) / (1 << 20))
		}
		parent := filepath.Dir(dir)
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTDIR) || parent == dir {
			return -1
		}
		dir = parent
	}
}

// ExportUserData returns every event whose metadata field
// Config.UserIDField (userId by default) is userID, in time order, from the
// database and from the archives vibekit-pipe sealed beside it.
func (s *Store) ExportUserData(ctx context.Context, userID string) ([]Record, error) {
	if userID == "" {
		return nil, errors.New("telemetry: export user data: empty user id")
	}
	var out []Record
	err := s.use(func(db *sqlite.DB) error {
		return rotate.Scan(ctx, s.cfg.Path, sqlite.UserFilter(s.cfg.UserIDField, userID), rotate.ReadOptions{}, func(r *Record) error {
			out = append(out, *r) // its strings are its own; Metadata is copied
			out[len(out)-1].Metadata = append([]byte(nil), r.Metadata...)
			return nil
		})
	})
	if out == nil && err == nil {
		out = []Record{}
	}
	return out, err
}

// DeletionRequest is the audit trail of a deletion: why, which request,
// and when it was made (zero: unknown).
type DeletionRequest struct {
	Reason    string
	RequestID string
	Time      time.Time
}

// DeleteUserData deletes every event of userID (as ExportUserData finds
// them: archives included, each rewritten without them) and records the
// deletion, without the user's id, in the audit table. Deleted content is
// overwritten and the WAL emptied; if another process kept the WAL from
// being emptied, it returns the count and ErrWALNotScrubbed.
func (s *Store) DeleteUserData(ctx context.Context, userID string, req DeletionRequest) (int64, error) {
	if userID == "" {
		return 0, errors.New("telemetry: delete user data: empty user id")
	}
	var d sqlite.Deleted
	var archived rotate.Deleted
	f := sqlite.UserFilter(s.cfg.UserIDField, userID)
	err := s.write(func(db *sqlite.DB) error {
		// Archives, then the live rows, under the seal lock: a seal that
		// began in between would archive rows this deletes.
		sealer := &rotate.Sealer{DB: db}
		return sealer.Exclusive(ctx, time.Minute, func() error {
			var err, lerr error
			archived, err = sealer.DeleteRows(ctx, f)
			d, lerr = db.DeleteUserData(ctx, s.cfg.UserIDField, userID, sqlite.Deletion{Reason: req.Reason, RequestID: req.RequestID, Requested: req.Time, Archived: archived.Rows})
			return errors.Join(err, lerr)
		})
	})
	if err == nil && !d.WALScrubbed {
		err = ErrWALNotScrubbed
	}
	return d.Events + archived.Rows, err
}
