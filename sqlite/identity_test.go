package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A database has one identity for its whole life, and a database created
// again at the same path has another.
func TestDB_Identity(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := db.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !validIdentity(first) {
		t.Fatalf("identity %q is not 32 hex digits", first)
	}
	db.Close()

	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := db.Identity(ctx)
	db.Close()
	if err != nil || again != first {
		t.Fatalf("identity after reopening = %q, %v; want %q", again, err, first)
	}
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	readOnly, err := ro.Identity(ctx)
	ro.Close()
	if err != nil || readOnly != first {
		t.Fatalf("identity read-only = %q, %v; want %q", readOnly, err, first)
	}

	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recreated, err := db.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if recreated == first {
		t.Errorf("the database created again kept the identity %s of the deleted one", first)
	}
}

// A database without the table (a version before identities) says so with
// ErrNoIdentity.
func TestDB_Identity_Missing(t *testing.T) {
	db := MustOpen(t)
	if _, err := db.SQL().Exec(`DROP TABLE vk_identity`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Identity(context.Background()); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("Identity without vk_identity: err = %v, want ErrNoIdentity", err)
	}
}
