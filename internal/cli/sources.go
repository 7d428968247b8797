package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"syscall"

	"github.com/peterbourgon/ff/v3/ffcli"

	vibekit "github.com/vibekit/vibekit-pipe"
	"github.com/vibekit/vibekit-pipe/sqlite"
)

func newSourcesCommand(e *env) *ffcli.Command {
	fs := flag.NewFlagSet("vibekit telemetry sources", flag.ContinueOnError)
	var (
		db       string
		warnings bool
	)
	fs.StringVar(&db, "db", DefaultDB, "SQLite database `path`")
	fs.BoolVar(&warnings, "warnings", false, "list what following reported instead: gaps, re-reads, refused claims")
	addConfigFlag(fs)
	return &ffcli.Command{
		Name:       "sources",
		ShortUsage: "vibekit telemetry sources [flags]",
		ShortHelp:  "list the inputs read, with their committed offsets and lag",
		LongHelp: `Lists every input vibekit-pipe has read into the database, as NDJSON, one
object per line: followed files, FIFOs and stdin. Fields:
  source   the name rows record (a file's path, a FIFO's path, "stdin")
  kind     file, fifo or stdin
  offset   the byte offset after the last committed line
  size     the file's size now, if the file at that path is still the one
           read; else its size when last read
  lag      size - offset: bytes not yet committed
  lines    lines committed so far
  updated  when the checkpoint was last committed (Unix ms)
A followed path that was rotated has one line per file it has held.

--warnings lists instead what following could not keep exactly once and
reported (vibekit-pipe printed each on stderr when it happened), oldest
first: time (Unix ms), kind (gap: bytes not read, with where and how many;
reread: bytes read again; claim: a file another vibekit-pipe was reading,
not read), source, offset, bytes (null if not known) and detail.

Examples:
  vibekit telemetry sources
  vibekit telemetry sources --warnings | jq 'select(.kind == "gap")'
  vibekit telemetry sources --db /var/log/vibekit/telemetry.db | jq 'select(.lag > 0)'`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErrorf("sources: unexpected argument %q", args[0])
			}
			if err := applySettings(fs, "db"); err != nil {
				return err
			}
			store, err := sqlite.OpenReadOnly(db)
			if err != nil {
				return err
			}
			defer store.Close()
			if warnings {
				return writeWarnings(ctx, e.stdout, store)
			}
			states, err := store.Sources(ctx)
			if err != nil {
				return errf("sources", err)
			}
			w := bufio.NewWriter(e.stdout)
			enc := json.NewEncoder(w)
			for _, s := range states {
				if err := enc.Encode(sourceLine(s)); err != nil {
					return err
				}
			}
			return w.Flush()
		},
	}
}

// sourceJSON is one line of `telemetry sources`.
type sourceJSON struct {
	Source  string `json:"source"`
	Kind    string `json:"kind"`
	Offset  int64  `json:"offset"`
	Size    int64  `json:"size"`
	Lag     int64  `json:"lag"`
	Lines   int64  `json:"lines"`
	Updated int64  `json:"updated"`
}

func sourceLine(s vibekit.SourceState) sourceJSON {
	size := s.Size
	if s.Kind == "file" {
		// The file's size now, if the path still holds the file that was read.
		if fi, err := os.Stat(s.Source); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && uint64(st.Dev) == s.Dev && st.Ino == s.Ino {
				size = fi.Size()
			}
		}
	}
	if size < s.Offset {
		size = s.Offset
	}
	return sourceJSON{Source: s.Source, Kind: s.Kind, Offset: s.Offset, Size: size, Lag: size - s.Offset, Lines: s.Line, Updated: s.Updated}
}

// warningJSON is one line of `telemetry sources --warnings`.
type warningJSON struct {
	Time   int64  `json:"time"`
	Kind   string `json:"kind"`
	Source string `json:"source"`
	Offset int64  `json:"offset"`
	Bytes  *int64 `json:"bytes"` // null: not known
	Detail string `json:"detail"`
}

func writeWarnings(ctx context.Context, out io.Writer, store *sqlite.DB) error {
	ws, err := store.Warnings(ctx)
	if err != nil {
		return errf("sources", err)
	}
	w := bufio.NewWriter(out)
	enc := json.NewEncoder(w)
	for _, x := range ws {
		line := warningJSON{Time: x.Time, Kind: x.Kind, Source: x.Source, Offset: x.Offset, Detail: x.Detail}
		if x.Bytes >= 0 {
			line.Bytes = &x.Bytes
		}
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	return w.Flush()
}
