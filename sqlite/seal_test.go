package sqlite

import (
	"context"
	"fmt"
	"testing"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// TestFinishSeal: the switch deletes exactly the sealed rows, their spans
// and rejects, whether it empties the table and puts the newer rows back
// (few rows arrived during the seal) or deletes the sealed ones (many did);
// the newer rows keep their ids and contents, and ids keep counting up.
func TestFinishSeal(t *testing.T) {
	ctx := context.Background()
	commit := func(db *DB, from, to int) {
		var b vibekit.Batch
		for i := from; i < to; i++ {
			b.Records = append(b.Records, vibekit.Record{SessionID: fmt.Sprintf("s%d", i/10), EventType: vibekit.EventStream,
				AgentType: "claude", StreamData: fmt.Sprintf("row %d", i), Metadata: []byte(fmt.Sprintf(`{"i":%d}`, i)), Timestamp: t0.UnixMilli() + int64(i)})
			b.RecordSources = append(b.RecordSources, "stdin")
			if i%10 == 0 {
				b.Rejects = append(b.Rejects, vibekit.Reject{Source: "stdin", Line: int64(i), Reason: "test", Time: t0.UnixMilli()})
			}
		}
		if _, err := db.Commit(ctx, &b); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name  string
		newer int // rows committed between the snapshot and the switch
	}{{"truncate", 0}, {"truncate and put back", 20}, {"delete", 40}} {
		t.Run(c.name, func(t *testing.T) {
			db := MustOpen(t)
			commit(db, 0, 100)
			cont, err := db.Contents(ctx)
			if err != nil {
				t.Fatal(err)
			}
			seal, err := db.BeginSeal(ctx, cont, 1, func(id int64) string { return fmt.Sprint("a", id) })
			if err != nil {
				t.Fatal(err)
			}
			commit(db, 100, 100+c.newer)
			if err := db.FinishSeal(ctx, seal.ID); err != nil {
				t.Fatal(err)
			}
			commit(db, 100+c.newer, 101+c.newer)
			got, err := db.GetEvents(ctx, vibekit.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != c.newer+1 {
				t.Fatalf("%d live rows, want %d", len(got), c.newer+1)
			}
			for j, r := range got {
				i := 100 + j
				if r.ID != int64(i+1) || r.StreamData != fmt.Sprintf("row %d", i) || string(r.Metadata) != fmt.Sprintf(`{"i":%d}`, i) ||
					r.SessionID != fmt.Sprintf("s%d", i/10) || r.Timestamp != t0.UnixMilli()+int64(i) {
					t.Errorf("live row %d = %+v, want row %d with id %d", j, r, i, i+1)
				}
			}
			var spans, rejects, done int
			db.SQL().QueryRow(`SELECT (SELECT count(*) FROM vk_spans WHERE first_id <= 100), (SELECT count(*) FROM vk_rejects WHERE line < 100),
				(SELECT count(*) FROM vk_seals WHERE state = 'done')`).Scan(&spans, &rejects, &done)
			if spans != 0 || rejects != 0 || done != 1 {
				t.Errorf("after the switch: %d sealed spans, %d sealed rejects, %d seals done; want 0, 0, 1", spans, rejects, done)
			}
			// The indexes still match the table.
			if p, err := db.IntegrityCheck(ctx); err != nil || len(p) > 0 {
				t.Errorf("integrity_check: %v %v", p, err)
			}
			bySession, err := db.GetEvents(ctx, vibekit.Filter{SessionIDs: []string{"s10"}})
			if err != nil || len(bySession) != min(10, c.newer+1) {
				t.Errorf("rows of s10 through its index: %d, %v", len(bySession), err)
			}
		})
	}
}
