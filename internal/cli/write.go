package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/vibekit/vibekit-pipe/sqlite"
)

// writerFlags are the settings of the commands that change the database:
// --db and --enable-indexes, which must agree with the pipe's (a writer
// opening the store creates or drops the query indexes as it says).
type writerFlags struct {
	db      string
	indexes bool
}

func (w *writerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&w.db, "db", DefaultDB, "SQLite database `path`")
	fs.BoolVar(&w.indexes, "enable-indexes", true, "keep the query indexes (as vibekit-pipe's setting; false drops them)")
}

// open opens an existing database for writing; unlike sqlite.Open it does
// not create one, so a mistyped --db is an error, not a new empty store.
// While another process holds the database's lock it waits, and says so
// on stderr, until the lock frees or ctx is done (Ctrl-C).
func (w *writerFlags) open(ctx context.Context, stderr io.Writer) (*sqlite.DB, error) {
	if _, err := os.Stat(w.db); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open database %s: no such file (vibekit-pipe creates it; --db names another)", w.db)
		}
		return nil, fmt.Errorf("open database %s: %w", w.db, err)
	}
	return w.openOrCreate(ctx, stderr)
}

// openOrCreate opens the database for writing, creating it if need be,
// and waits for another process's lock as open does.
func (w *writerFlags) openOrCreate(ctx context.Context, stderr io.Writer) (*sqlite.DB, error) {
	return sqlite.OpenContext(ctx, w.db, sqlite.Options{EnableIndexes: w.indexes, Waiting: waitingNotice(stderr, "vibekit", w.db)})
}

// waitingNotice is the sqlite.Options.Waiting of a command: it tells the
// user why nothing happens while another process holds the database's lock.
func waitingNotice(stderr io.Writer, program, db string) func() {
	return func() {
		fmt.Fprintf(stderr, "%s: waiting for the lock on %s: another process is writing to it (this goes on when it is done; Ctrl-C stops)\n", program, db)
	}
}

// errNotConfirmed ends a command whose confirmation was refused.
var errNotConfirmed = errors.New("not confirmed: nothing was deleted")

// confirm asks question on stderr and reads the answer from stdin, which
// must be a terminal: without one (a script, a pipe) destructive commands
// need --force instead.
func confirm(e *env, command, question string) error {
	if !isTerminal(e.stdin) {
		return usageErrorf("%s: stdin is not a terminal, so it cannot ask for confirmation: add --force to delete without asking", command)
	}
	fmt.Fprintf(e.stderr, "%s [y/N] ", question)
	answer, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && answer == "" {
		fmt.Fprintln(e.stderr)
		return fmt.Errorf("%s: %w", command, errNotConfirmed)
	}
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return fmt.Errorf("%s: %w", command, errNotConfirmed)
}

// plural writes n and noun, with an s unless n is one: "1 event", "2 events".
func plural(n int64, noun string) string {
	if n == 1 {
		return formatCount(n) + " " + noun
	}
	return formatCount(n) + " " + noun + "s"
}
