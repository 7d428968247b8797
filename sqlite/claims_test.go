package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

func TestDB_Claim(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	open := func() *DB {
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	first, second := open(), open()
	if _, from, err := first.Claim(ctx, "/logs/a.log", 1, 2); err != nil || from != "" {
		t.Fatalf("first claim: %q, %v", from, err)
	}
	if _, _, err := first.Claim(ctx, "/logs/a.log", 1, 2); err != nil {
		t.Fatalf("claiming again what one holds: %v", err)
	}
	_, _, err := second.Claim(ctx, "/logs/a.log", 1, 2)
	if !errors.Is(err, vibekit.ErrClaimed) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second claim: %v, want ErrClaimed naming the holder", err)
	}

	// The holder's commits move the checkpoint; a taker gets it as committed.
	cp := vibekit.Checkpoint{Source: "/logs/a.log", Key: "k", Kind: "file", Dev: 1, Ino: 2, Offset: 42, Line: 3}
	if _, err := first.Commit(ctx, &vibekit.Batch{Checkpoints: []vibekit.Checkpoint{cp}}); err != nil {
		t.Fatal(err)
	}
	// A holder that no longer runs: its claim is taken over at once.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := first.SQL().Exec(`UPDATE vk_claims SET pid = ?`, dead.Process.Pid); err != nil {
		t.Fatal(err)
	}
	cps, from, err := second.Claim(ctx, "/logs/a.log", 1, 2)
	if err != nil || !strings.Contains(from, fmt.Sprintf("pid %d", dead.Process.Pid)) {
		t.Fatalf("taking over a dead holder's claim: %q, %v", from, err)
	}
	if len(cps) != 1 || cps[0].Offset != 42 || cps[0].Line != 3 || cps[0].SourceKey() != "k" {
		t.Errorf("checkpoints with the claim: %+v, want the committed one", cps)
	}
	// A live holder whose heartbeat is older than the lease (another host).
	if _, err := second.SQL().Exec(`UPDATE vk_claims SET host = 'elsewhere', heartbeat = heartbeat - ?`, ClaimLease.Milliseconds()+1000); err != nil {
		t.Fatal(err)
	}
	if _, from, err := first.Claim(ctx, "/logs/a.log", 1, 2); err != nil || !strings.Contains(from, "on elsewhere") {
		t.Fatalf("taking over a silent holder's claim: %q, %v", from, err)
	}
	// The last position's commit gives the claim up; so does Close.
	cp.Release = true
	if _, err := first.Commit(ctx, &vibekit.Batch{Checkpoints: []vibekit.Checkpoint{cp}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := second.Claim(ctx, "/logs/b.log", 1, 3); err != nil {
		t.Fatal(err)
	}
	var n int
	first.SQL().QueryRow(`SELECT count(*) FROM vk_claims WHERE file = '1:2'`).Scan(&n)
	if n != 0 {
		t.Errorf("claim of a released file still held")
	}
	second.Close()
	first.SQL().QueryRow(`SELECT count(*) FROM vk_claims`).Scan(&n)
	if n != 0 {
		t.Errorf("%d claims left after their holder closed", n)
	}
}

// A follower that commits renews its claims with its commits.
func TestDB_ClaimRenewedByCommits(t *testing.T) {
	ctx := context.Background()
	now := time.UnixMilli(1_000_000)
	db, err := Open(filepath.Join(t.TempDir(), "t.db"), Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, _, err := db.Claim(ctx, "/logs/a.log", 1, 2); err != nil {
		t.Fatal(err)
	}
	beat := func() int64 {
		var ms int64
		if err := db.SQL().QueryRow(`SELECT heartbeat FROM vk_claims`).Scan(&ms); err != nil {
			t.Fatal(err)
		}
		return ms
	}
	now = now.Add(heartbeatDue + time.Second)
	cp := vibekit.Checkpoint{Source: "/logs/a.log", Kind: "file", Dev: 1, Ino: 2, Offset: 5}
	if _, err := db.Commit(ctx, &vibekit.Batch{Checkpoints: []vibekit.Checkpoint{cp}}); err != nil {
		t.Fatal(err)
	}
	if got, want := beat(), now.UnixMilli(); got != want {
		t.Errorf("heartbeat after a commit = %d, want %d", got, want)
	}
	now = now.Add(heartbeatDue + time.Second)
	if err := db.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := beat(), now.UnixMilli(); got != want {
		t.Errorf("heartbeat of an idle follower = %d, want %d", got, want)
	}
}
