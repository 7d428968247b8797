package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

func count(tb testing.TB, db *DB, table string) int64 {
	tb.Helper()
	var n int64
	if err := db.SQL().QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func TestDB_Clear(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name             string
		f                vibekit.Filter
		events, rejects  int64 // deleted
		remainingEvents  int64
		remainingRejects int64
	}{
		{"by session", vibekit.Filter{SessionIDs: []string{"s1"}}, 3, 0, 4, 2},
		{"by agent", vibekit.Filter{AgentTypes: []string{"codex"}}, 2, 0, 5, 2},
		// Older than t0 + 1 hour: the rows before it and the old reject.
		{"by age", vibekit.Filter{To: t0.Add(time.Hour)}, 5, 1, 2, 1},
		{"everything", vibekit.Filter{}, 7, 2, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := MustOpen(t)
			b := &vibekit.Batch{Records: fixture(), Checkpoints: []vibekit.Checkpoint{{Source: "f.log", Kind: "file", Offset: 99}},
				Rejects: []vibekit.Reject{{Reason: "old", Time: t0.UnixMilli()}, {Reason: "new", Time: t0.Add(48 * time.Hour).UnixMilli()}}}
			if _, err := db.Commit(ctx, b); err != nil {
				t.Fatal(err)
			}
			want, err := db.CountClear(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := db.Clear(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("Clear = %+v, CountClear said %+v", got, want)
			}
			if got, want := got, (Counts{tt.events, tt.rejects}); got != want {
				t.Errorf("Clear = %+v, want %+v", got, want)
			}
			if got, want := count(t, db, "telemetry"), tt.remainingEvents; got != want {
				t.Errorf("%d rows left, want %d", got, want)
			}
			if got, want := count(t, db, "vk_rejects"), tt.remainingRejects; got != want {
				t.Errorf("%d rejects left, want %d", got, want)
			}
			// A followed file must not start over.
			if got, want := count(t, db, "vk_sources"), int64(1); got != want {
				t.Errorf("%d sources left, want %d", got, want)
			}
		})
	}
	t.Run("read-only", func(t *testing.T) {
		db := MustOpen(t)
		db.Close()
		ro, err := OpenReadOnly(db.Path)
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		if _, err := ro.Clear(ctx, vibekit.Filter{}); err == nil {
			t.Error("Clear on a read-only database: no error")
		}
	})
}

func TestDB_Vacuum(t *testing.T) {
	db := MustOpen(t)
	ctx := context.Background()
	recs := make([]vibekit.Record, 2000)
	for i := range recs {
		recs[i] = rec("s", vibekit.EventStream, "claude", int64(i), "")
		recs[i].StreamData = strings.Repeat("x", 500)
	}
	MustCommit(t, db, recs)
	// Deleted by hand: Clear would vacuum itself.
	if _, err := db.SQL().Exec(`DELETE FROM telemetry`); err != nil {
		t.Fatal(err)
	}
	before, _ := db.Size()
	if err := db.Vacuum(ctx); err != nil {
		t.Fatal(err)
	}
	after, _ := db.Size()
	if after >= before {
		t.Errorf("size %d after vacuum, %d before: want smaller", after, before)
	}
}

func TestDB_Import(t *testing.T) {
	ctx := context.Background()
	t.Run("all in one transaction", func(t *testing.T) {
		db := MustOpen(t)
		recs := fixture()
		i := 0
		n, err := db.Import(ctx, func(b *vibekit.Batch) (bool, error) {
			b.Records = append(b.Records, recs[i], recs[i+1])
			i += 2
			if i == 6 {
				b.Rejects = append(b.Rejects, vibekit.Reject{Source: "x.ndjson", Line: 7, Reason: "bad"})
			}
			return i < 6, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := n, (Counts{6, 1}); got != want {
			t.Errorf("Import = %+v, want %+v", got, want)
		}
		if got, want := count(t, db, "telemetry"), int64(6); got != want {
			t.Errorf("%d rows, want %d", got, want)
		}
	})
	t.Run("a failure keeps nothing", func(t *testing.T) {
		db := MustOpen(t)
		recs := fixture()
		calls := 0
		_, err := db.Import(ctx, func(b *vibekit.Batch) (bool, error) {
			calls++
			if calls == 3 {
				return false, errors.New("line 5: bad record")
			}
			b.Records = append(b.Records, recs[calls])
			return true, nil
		})
		if err == nil || !strings.Contains(err.Error(), "line 5") {
			t.Fatalf("Import error = %v, want the fill error", err)
		}
		if got := count(t, db, "telemetry"); got != 0 {
			t.Errorf("%d rows kept after a failed import, want 0", got)
		}
	})
}

func TestDB_DeleteUserData(t *testing.T) {
	db := MustOpen(t)
	ctx := context.Background()
	const secret = "SECRET-PROMPT-7f3a9c"
	recs := fixture()
	for i := range recs {
		if string(recs[i].Metadata) == `{"userId":"u1"}` {
			recs[i].Prompt = secret
		}
	}
	MustCommit(t, db, recs)
	got, err := db.DeleteUserData(ctx, "userId", "u1", Deletion{Reason: "User deletion request", RequestID: "REQ-123", Requested: t0})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := got, (Deleted{Events: 2, WALScrubbed: true}); got != want {
		t.Errorf("DeleteUserData = %+v, want %+v", got, want)
	}
	if got, want := count(t, db, "telemetry"), int64(5); got != want {
		t.Errorf("%d rows left, want %d", got, want)
	}
	var key, reason, req string
	var events int64
	if err := db.SQL().QueryRow(`SELECT key, reason, request_id, events FROM vk_deletions`).Scan(&key, &reason, &req, &events); err != nil {
		t.Fatal(err)
	}
	if key != "userId" || reason != "User deletion request" || req != "REQ-123" || events != 2 {
		t.Errorf("audit row = %q %q %q %d", key, reason, req, events)
	}
	// Neither the database nor its WAL holds the deleted text any more.
	for _, p := range []string{db.Path, db.Path + "-wal"} {
		data, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("%s still holds the deleted prompt", p)
		}
	}
	if _, err := db.DeleteUserData(ctx, "userId", "", Deletion{}); err == nil {
		t.Error("DeleteUserData with an empty value: no error")
	}
}

// TestDB_DeleteUserData_FreePages: pages freed earlier (here by a delete
// under secure_delete FAST, as a seal's dropped table is) keep the bytes
// of their rows; deleting a user's data leaves no copy there either.
func TestDB_DeleteUserData_FreePages(t *testing.T) {
	db := MustOpen(t)
	ctx := context.Background()
	const secret = "SECRET-STREAM-51c2e8"
	var recs []vibekit.Record
	for i := range 500 {
		recs = append(recs, vibekit.Record{SessionID: "gone", EventType: vibekit.EventStream, StreamData: fmt.Sprintf("%s %d %s", secret, i, strings.Repeat("x", 300)),
			Metadata: []byte(`{"userId":"u9"}`), Timestamp: t0.UnixMilli() + int64(i)})
	}
	MustCommit(t, db, recs)
	// A deletion under the writer's secure_delete FAST, as a seal's drop of
	// its table is: the freed pages keep their bytes.
	if _, err := db.SQL().Exec(`DELETE FROM telemetry WHERE sessionId = 'gone'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	var free int64
	db.SQL().QueryRow(`PRAGMA freelist_count`).Scan(&free)
	data, _ := os.ReadFile(db.Path)
	if free < 20 || !bytes.Contains(data, []byte(secret)) {
		t.Fatalf("the fixture leaves %d free pages, secret in the file: %v; want free pages holding it", free, bytes.Contains(data, []byte(secret)))
	}
	if _, err := db.DeleteUserData(ctx, "userId", "u9", Deletion{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{db.Path, db.Path + "-wal"} {
		data, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("%s still holds the cleared rows' text", p)
		}
	}
}

// rawHolds reports whether the bytes of the database file or its WAL hold s.
func rawHolds(t *testing.T, db *DB, s string) bool {
	t.Helper()
	for _, p := range []string{db.Path, db.Path + "-wal"} {
		data, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(s)) {
			return true
		}
	}
	return false
}

// TestDB_DeletedIsUnreadable: rows deleted by Clear, Prune or
// DeleteUserData leave no byte of their text in the database file or its
// WAL, while the database stays open (the WAL in use) and after rows were
// written around them.
func TestDB_DeletedIsUnreadable(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		del  func(db *DB) error
	}{
		{"clear", func(db *DB) error {
			_, err := db.Clear(ctx, vibekit.Filter{SessionIDs: []string{"gone"}})
			return err
		}},
		{"prune", func(db *DB) error {
			_, _, err := db.Prune(ctx, t0.Add(time.Hour))
			return err
		}},
		{"delete user data", func(db *DB) error {
			_, err := db.DeleteUserData(ctx, "userId", "u9", Deletion{})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := MustOpen(t)
			const canary = "CANARY-9d41f0"
			var recs []vibekit.Record
			for i := range 400 {
				// The rows to delete, old, between rows that stay.
				recs = append(recs, vibekit.Record{SessionID: "gone", EventType: vibekit.EventStream, Prompt: canary + "-prompt",
					StreamData: fmt.Sprintf("%s %d %s", canary, i, strings.Repeat("y", 200+i)),
					Metadata:   []byte(`{"userId":"u9"}`), Timestamp: t0.UnixMilli() + int64(i)})
				recs = append(recs, vibekit.Record{SessionID: "kept", EventType: vibekit.EventStream, StreamData: strings.Repeat("k", 100),
					Timestamp: t0.Add(48*time.Hour).UnixMilli() + int64(i)})
			}
			for i := 0; i < len(recs); i += 50 {
				MustCommit(t, db, recs[i:i+50])
			}
			// Some of it checkpointed into the file, some in the WAL.
			if _, err := db.SQL().Exec(`PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
				t.Fatal(err)
			}
			MustCommit(t, db, recs[:2:2])
			if !rawHolds(t, db, canary) {
				t.Fatal("the canary is not in the raw bytes before the deletion")
			}
			if err := tc.del(db); err != nil {
				t.Fatal(err)
			}
			if got := count(t, db, "telemetry"); got != 401 {
				t.Fatalf("%d rows left, want the 400 kept and 1 (the second copy of a kept row)", got)
			}
			if rawHolds(t, db, canary) {
				t.Errorf("a deleted row's text is still in %s or its WAL", db.Path)
			}
		})
	}
}
