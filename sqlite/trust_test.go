package sqlite

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// testDeadline is how long a test waits for a condition: generous, for a
// loaded machine.
const testDeadline = 30 * time.Second

// openBoth opens path for writing and for reading, and returns both errors;
// what opened is closed.
func openBoth(path string) (werr, rerr error) {
	if db, err := Open(path, Options{EnableIndexes: true}); err == nil {
		db.Close()
	} else {
		werr = err
	}
	if db, err := OpenReadOnly(path); err == nil {
		db.Close()
	} else {
		rerr = err
	}
	return werr, rerr
}

// wantRefused checks that err refuses path as untrusted for the reason.
func wantRefused(t *testing.T, what string, err error, path, reason string) {
	t.Helper()
	if !errors.Is(err, ErrUntrusted) {
		t.Fatalf("%s: err = %v, want ErrUntrusted", what, err)
	}
	if msg := err.Error(); !strings.Contains(msg, "refusing "+path+",") && !strings.Contains(msg, "refusing the directory "+path+",") || !strings.Contains(msg, reason) {
		t.Errorf("%s: error %q does not name %s and %q", what, msg, path, reason)
	}
}

// rawDB makes a database at path with SQLite directly, running stmts, and
// makes it private (SQLite gives it 0644 under the usual umask).
func rawDB(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestOpen_RefusesLinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target.db")
	db, err := Open(target, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	before, _ := os.ReadFile(target)

	link := filepath.Join(dir, "link.db")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	werr, rerr := openBoth(link)
	wantRefused(t, "write", werr, link, "a symbolic link")
	wantRefused(t, "read", rerr, link, "a symbolic link")
	if after, _ := os.ReadFile(target); !bytes.Equal(before, after) {
		t.Error("the link's target changed")
	}

	// A dangling link must not create a database at its target.
	dangling := filepath.Join(dir, "dangling.db")
	nowhere := filepath.Join(dir, "nowhere.db")
	if err := os.Symlink(nowhere, dangling); err != nil {
		t.Fatal(err)
	}
	werr, _ = openBoth(dangling)
	wantRefused(t, "write", werr, dangling, "a symbolic link")
	if _, err := os.Lstat(nowhere); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a database appeared at the dangling link's target: %v", err)
	}

	// A link where SQLite puts the WAL would send our pages elsewhere.
	path := filepath.Join(dir, "t.db")
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := os.Symlink(nowhere, path+"-wal"); err != nil {
		t.Fatal(err)
	}
	werr, rerr = openBoth(path)
	wantRefused(t, "write with a linked WAL", werr, path+"-wal", "a symbolic link")
	wantRefused(t, "read with a linked WAL", rerr, path+"-wal", "a symbolic link")
}

func TestOpen_RefusesFilesOthersCanUse(t *testing.T) {
	for _, mode := range []os.FileMode{0o666, 0o662, 0o620, 0o602} {
		t.Run(fmt.Sprintf("%04o", mode), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.db")
			db, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			werr, rerr := openBoth(path)
			reason := fmt.Sprintf("other users can write (mode %04o)", mode)
			wantRefused(t, "write", werr, path, reason)
			wantRefused(t, "read", rerr, path, reason)
			if !strings.Contains(werr.Error(), "chmod 600 "+path) {
				t.Errorf("error %q does not say how to make it private", werr)
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != mode {
				t.Errorf("mode changed to %04o", fi.Mode().Perm())
			}
		})
	}
}

// TestOpen_UsesReadableFilesOfOurs: a database of ours that others may read
// but not write (what the sqlite3 shell or the original VibeKit makes under
// a 022 umask) is the owner's to choose: it is used, and left as it is.
func TestOpen_UsesReadableFilesOfOurs(t *testing.T) {
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		t.Run(fmt.Sprintf("%04o", mode), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.db")
			db, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			werr, rerr := openBoth(path)
			if werr != nil || rerr != nil {
				t.Fatalf("write: %v; read: %v", werr, rerr)
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != mode {
				t.Errorf("mode changed to %04o", fi.Mode().Perm())
			}
		})
	}
	t.Run("planted empty file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "t.db")
		if err := os.WriteFile(path, nil, 0o666); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, 0o666) // past the umask
		werr, _ := openBoth(path)
		wantRefused(t, "write", werr, path, "mode 0666")
		if fi, _ := os.Stat(path); fi.Size() != 0 {
			t.Errorf("the refused file was written: %d bytes", fi.Size())
		}
	})
}

func TestOpen_RefusesDirectoryOthersCanWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "t.db")
	werr, rerr := openBoth(path)
	wantRefused(t, "write", werr, dir, "other users can write to (mode 0777)")
	if !errors.Is(rerr, ErrUntrusted) && !strings.Contains(rerr.Error(), "no such file") {
		t.Errorf("read: %v", rerr)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a database was created in the directory others can write: %v", err)
	}
	// With the sticky bit (as /tmp), others cannot replace our files:
	// accepted, each file checked on its own.
	if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if werr, rerr := openBoth(path); werr != nil || rerr != nil {
		t.Fatalf("in a sticky directory: %v; %v", werr, rerr)
	}
	// A directory of ours that only we can write (a project directory,
	// 0755) is fine.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if werr, rerr := openBoth(path); werr != nil || rerr != nil {
		t.Fatalf("in a 0755 directory: %v; %v", werr, rerr)
	}
}

func TestOpen_CreatesPrivateDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	db, err := Open(filepath.Join(dir, "t.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %04o, want 0700", d, fi.Mode().Perm())
		}
	}
}

// TestOpen_RefusesOtherUsersFiles plants files owned by another user
// (nobody, 65534): only root can, so the test needs root.
func TestOpen_RefusesOtherUsersFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("planting a file owned by another user needs root")
	}
	const nobody = 65534
	t.Run("database", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "t.db")
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		if err := os.Chown(path, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		werr, rerr := openBoth(path)
		reason := fmt.Sprintf("a file owned by uid %d (we are 0)", nobody)
		wantRefused(t, "write", werr, path, reason)
		wantRefused(t, "read", rerr, path, reason)
	})
	t.Run("WAL", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "t.db")
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		if err := os.WriteFile(path+"-wal", nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(path+"-wal", nobody, nobody); err != nil {
			t.Fatal(err)
		}
		werr, _ := openBoth(path)
		wantRefused(t, "write", werr, path+"-wal", fmt.Sprintf("owned by uid %d", nobody))
	})
	t.Run("directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "theirs")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "t.db")
		werr, _ := openBoth(path)
		wantRefused(t, "write", werr, dir, fmt.Sprintf("owned by uid %d (we are 0)", nobody))
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a database was created in another user's directory: %v", err)
		}
	})
}

// fileBytes returns the bytes of the file at path, to compare a file
// before and after an open that must not change it.
func fileBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpen_RefusesForeignDatabase(t *testing.T) {
	for _, tt := range []struct {
		name  string
		stmts []string
		want  string
	}{
		{"another program's tables", []string{`CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)`, `CREATE TABLE orders (id INTEGER PRIMARY KEY)`, `INSERT INTO users VALUES (1, 'ann')`},
			"it has tables orders, users"},
		{"the guide's table beside others", []string{`CREATE TABLE telemetry (id INTEGER PRIMARY KEY AUTOINCREMENT, sessionId TEXT, eventType TEXT, agentType TEXT, mode TEXT, prompt TEXT, streamData TEXT, sandboxId TEXT, repoUrl TEXT, metadata TEXT, timestamp INTEGER)`, `CREATE TABLE notes (x)`},
			"it has tables notes, telemetry"},
		{"a telemetry table of another shape", []string{`CREATE TABLE telemetry (id INTEGER PRIMARY KEY, name TEXT, value REAL)`},
			"it has tables telemetry"},
		{"another application id (GeoPackage)", []string{`PRAGMA application_id = 1196444487`, `CREATE TABLE t (x)`},
			"its application id is 0x47504b47"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "their.db")
			rawDB(t, path, tt.stmts...)
			before := fileBytes(t, path)
			_, err := Open(path, Options{EnableIndexes: true})
			if !errors.Is(err, ErrForeignDatabase) {
				t.Fatalf("Open = %v, want ErrForeignDatabase", err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file and say %q", err, tt.want)
			}
			if after := fileBytes(t, path); !bytes.Equal(before, after) {
				t.Error("the refused database was changed")
			}
			for _, s := range sidecars {
				if _, err := os.Lstat(path + s); err == nil {
					t.Errorf("%s left beside the refused database", s)
				}
			}
		})
	}
}

// TestOpen_AdoptsGuideDatabase: the original VibeKit's file (the guide's
// table, its indexes, NOT NULL where the original had it, rows) is taken
// on: our tables are added, its rows kept.
func TestOpen_AdoptsGuideDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "telemetry.db")
	rawDB(t, path,
		`CREATE TABLE telemetry (id INTEGER PRIMARY KEY AUTOINCREMENT, sessionId TEXT NOT NULL, eventType TEXT NOT NULL, agentType TEXT NOT NULL,
			mode TEXT NOT NULL, prompt TEXT NOT NULL, streamData TEXT, sandboxId TEXT, repoUrl TEXT, metadata TEXT, timestamp INTEGER NOT NULL)`,
		`CREATE INDEX idx_timestamp ON telemetry(timestamp)`, `CREATE INDEX idx_session ON telemetry(sessionId)`, `CREATE INDEX idx_agent_type ON telemetry(agentType)`,
		`INSERT INTO telemetry (sessionId, eventType, agentType, mode, prompt, timestamp) VALUES ('s', 'start', 'claude', 'code', 'p', 1)`)
	db, err := Open(path, Options{EnableIndexes: true})
	if err != nil {
		t.Fatalf("Open of the guide's database: %v", err)
	}
	defer db.Close()
	var id, version, n int64
	db.SQL().QueryRow(`PRAGMA application_id`).Scan(&id)
	db.SQL().QueryRow(`PRAGMA user_version`).Scan(&version)
	db.SQL().QueryRow(`SELECT count(*) FROM telemetry WHERE sessionId = 's'`).Scan(&n)
	if id != ApplicationID || version != int64(latestVersion()) || n != 1 {
		t.Errorf("after adoption: application_id %#x, user_version %d, rows %d; want %#x, %d, 1", id, version, n, ApplicationID, latestVersion())
	}
	var mode string
	db.SQL().QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	if mode != "wal" {
		t.Errorf("journal_mode = %s, want wal", mode)
	}
}

func TestOpen_SetsApplicationID(t *testing.T) {
	db := MustOpen(t)
	var id int64
	if err := db.SQL().QueryRow(`PRAGMA application_id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if id != 0x564b5450 {
		t.Errorf("application_id = %#x, want 0x564b5450", id)
	}
}

// TestOpen_AdoptsOurOlderDatabase: a database of ours from before the
// application id (user_version 4, our tables) is migrated and marked.
func TestOpen_AdoptsOurOlderDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v4.db")
	rawDB(t, path, append(migrationBodies(t, 4), `PRAGMA user_version = 4`)...)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open of our version 4 database: %v", err)
	}
	defer db.Close()
	var id int64
	db.SQL().QueryRow(`PRAGMA application_id`).Scan(&id)
	if id != ApplicationID {
		t.Errorf("application_id = %#x, want ours", id)
	}
}

// migrationBodies returns our migrations up to version upTo.
func migrationBodies(t *testing.T, upTo int) []string {
	t.Helper()
	var out []string
	for _, m := range migrations() {
		if m.version > upTo {
			break
		}
		b, err := migrationFS.ReadFile("migration/" + m.name)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// TestOpen_MigrationAllOrNothing: a migration that fails part way (0005's
// new table name is taken by a view) leaves the file exactly as
// it was: no earlier migration applied, no user_version, no WAL mode.
func TestOpen_MigrationAllOrNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	// 0005 renames a new vk_sources_new into place: a view of that name
	// makes it fail after 0003 and 0004 ran in the same transaction.
	var last migration
	for _, m := range migrations() {
		if strings.HasPrefix(m.name, "0005_") {
			last = m
		}
	}
	body, _ := migrationFS.ReadFile("migration/" + last.name)
	if !strings.Contains(string(body), "CREATE TABLE vk_sources_new") {
		t.Fatalf("%s no longer creates vk_sources_new: pick another conflicting name", last.name)
	}
	rawDB(t, path, append(migrationBodies(t, 1), `PRAGMA user_version = 1`, `CREATE VIEW vk_sources_new AS SELECT 1`)...)
	before := fileBytes(t, path)
	_, err := Open(path, Options{EnableIndexes: true})
	if err == nil || !strings.Contains(err.Error(), last.name) {
		t.Fatalf("Open = %v, want the failure of %s", err, last.name)
	}
	if after := fileBytes(t, path); !bytes.Equal(before, after) {
		t.Error("a failed migration changed the file")
	}
	for _, s := range sidecars {
		if fi, err := os.Lstat(path + s); err == nil && fi.Size() > 0 {
			t.Errorf("%s left with %d bytes beside the file", s, fi.Size())
		}
	}
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var version, n int
	var mode string
	ro.SQL().QueryRow(`PRAGMA user_version`).Scan(&version)
	ro.SQL().QueryRow(`SELECT count(*) FROM sqlite_master WHERE name IN ('vk_deletions', 'vk_seals', 'idx_timestamp')`).Scan(&n)
	ro.SQL().QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	if version != 1 || n != 0 || mode == "wal" {
		t.Errorf("after a failed migration: user_version %d, %d objects of later migrations, journal_mode %s; want 1, 0, not wal", version, n, mode)
	}
}

func TestOpen_NewerSchemaRefusedUnchanged(t *testing.T) {
	db := MustOpen(t)
	if _, err := db.SQL().Exec(`PRAGMA user_version = 999`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before := fileBytes(t, db.Path)
	if _, err := Open(db.Path, Options{EnableIndexes: false}); !errors.Is(err, vibekit.ErrSchemaTooNew) {
		t.Fatalf("Open = %v, want ErrSchemaTooNew", err)
	}
	if after := fileBytes(t, db.Path); !bytes.Equal(before, after) {
		t.Error("a database too new was changed (its indexes dropped?)")
	}
}
