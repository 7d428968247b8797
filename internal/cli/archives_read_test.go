package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/rotate"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

// TestArchiveStats_Filters: stats --archives applies every filter as stats
// does on a database never sealed, the source and text filters too, which
// only the merge can apply (the merged database holds neither the sources'
// tables nor the text).
func TestArchiveStats_Filters(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sealed, err := sqlite.Open(filepath.Join(dir, "sealed", "t.db"), sqlite.Options{EnableIndexes: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sealed.Close()
	plain, err := sqlite.Open(filepath.Join(dir, "plain", "t.db"), sqlite.Options{EnableIndexes: true})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	commit := func(from, to int) {
		var b vibekit.Batch
		for i := from; i < to; i++ {
			b.Records = append(b.Records, vibekit.Record{SessionID: fmt.Sprintf("s%d", i/50), EventType: vibekit.EventStream,
				AgentType: "claude", StreamData: fmt.Sprintf("row %d%s", i, map[bool]string{true: " needle"}[i%7 == 0]), Timestamp: 1732704000000 + int64(i)*1000})
			b.RecordSources = append(b.RecordSources, []string{"a", "b"}[i/25%2])
		}
		for _, db := range []*sqlite.DB{sealed, plain} {
			if _, err := db.Commit(ctx, &b); err != nil {
				t.Fatal(err)
			}
		}
	}
	s := &rotate.Sealer{DB: sealed}
	for i := range 3 {
		commit(i*100, i*100+100)
		if _, err := s.Seal(ctx, 0); err != nil {
			t.Fatal(err)
		}
	}
	commit(300, 400)
	ar := &archiveFlags{archives: true, maxArchiveMB: 100}
	for _, f := range []vibekit.Filter{
		{},
		{Sources: []string{"a"}},
		{Contains: "needle"},
		{Sources: []string{"b"}, Contains: "needle", SessionIDs: []string{"s1", "s7"}},
	} {
		want, err := plain.Stats(ctx, f, sqlite.StatsOptions{GroupBy: "sessionId"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := archiveStats(ctx, &env{stderr: io.Discard}, sealed.Path, f, sqlite.StatsOptions{GroupBy: "sessionId"}, ar)
		if err != nil {
			t.Fatalf("stats --archives %+v: %v", f, err)
		}
		if got.TotalEvents != want.TotalEvents || got.Sessions != want.Sessions || fmt.Sprint(got.Groups) != fmt.Sprint(want.Groups) {
			t.Errorf("stats --archives %+v: %d events, %d sessions, %v; want %d, %d, %v", f, got.TotalEvents, got.Sessions, got.Groups,
				want.TotalEvents, want.Sessions, want.Groups)
		}
		if got.Archives != 3 {
			t.Errorf("%d archives reported, want 3", got.Archives)
		}
	}
}
