package sqlite

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// t0 is 2024-11-27T10:40:00Z.
var t0 = time.UnixMilli(1732704000000)

// MustOpen opens a fresh writable database in a temporary directory.
func MustOpen(tb testing.TB) *DB {
	tb.Helper()
	db, err := Open(filepath.Join(tb.TempDir(), "t.db"), Options{EnableIndexes: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// MustCommit commits records (and rejects) as one batch.
func MustCommit(tb testing.TB, db *DB, recs []vibekit.Record, rejects ...vibekit.Reject) {
	tb.Helper()
	b := &vibekit.Batch{Records: recs, Rejects: rejects, Lines: int64(len(recs) + len(rejects))}
	b.RecordSources = make([]string, len(recs))
	if _, err := db.Commit(context.Background(), b); err != nil {
		tb.Fatal(err)
	}
}

// rec builds a record at t0 plus ms.
func rec(session string, t vibekit.EventType, agent string, ms int64, meta string) vibekit.Record {
	r := vibekit.Record{SessionID: session, EventType: t, AgentType: agent, Timestamp: t0.UnixMilli() + ms}
	if meta != "" {
		r.Metadata = json.RawMessage(meta)
	}
	return r
}

// fixture is three sessions: s1 (claude, ended with success, 3 s long),
// s2 (codex, an error and no end) and s3 (claude, a day later, still active).
func fixture() []vibekit.Record {
	day := int64(24 * time.Hour / time.Millisecond)
	recs := []vibekit.Record{
		rec("s1", vibekit.EventStart, "claude", 0, ""),
		rec("s1", vibekit.EventStream, "claude", 1000, ""),
		rec("s1", vibekit.EventEnd, "claude", 3000, `{"status":"success","duration":3000}`),
		rec("s2", vibekit.EventStart, "codex", 10000, `{"userId":"u1"}`),
		rec("s2", vibekit.EventError, "codex", 11000, `{"userId":"u1"}`),
		rec("s3", vibekit.EventStart, "claude", 2*day, ""),
		rec("s3", vibekit.EventStream, "claude", 2*day+500, ""),
	}
	recs[0].Mode, recs[3].Mode, recs[5].Mode = "chat", "code", "chat"
	recs[1].StreamData = "hello, world"
	recs[4].Prompt = "API rate limit exceeded"
	return recs
}
