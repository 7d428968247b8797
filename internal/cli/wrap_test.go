package cli

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// row is a telemetry row as the wrap tests look at it.
type row struct {
	Session, Type, Data string
	Meta                map[string]any
}

func readRows(t *testing.T, db string) []row {
	t.Helper()
	conn, err := sql.Open("sqlite3", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rs, err := conn.Query(`SELECT sessionId, eventType, COALESCE(streamData, ''), COALESCE(metadata, '{}') FROM telemetry ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var r row
		var meta string
		if err := rs.Scan(&r.Session, &r.Type, &r.Data, &meta); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(meta), &r.Meta); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// exitCode is the exit status of a finished command, 0 for success.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatal(err)
	return -1
}

// TestWrap_ExitCodes runs commands that exit 0, exit 1 and are killed by
// SIGKILL: vibekit-pipe exits as they did, after a start row with the
// command line and an end row (0) or an error row with the exit code.
func TestWrap_ExitCodes(t *testing.T) {
	pipeBin, _ := programs(t)
	tests := []struct {
		script     string
		code       int
		last       string
		status     string
		data, sig  string
		outputRows int
	}{
		{`echo one; echo two`, 0, "end", "success", "", "", 2},
		{`echo one; exit 1`, 1, "error", "failed", "exit status 1", "", 1},
		{`echo one; kill -9 $$`, 137, "error", "killed", "killed by SIGKILL", "SIGKILL", 1},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "t.db")
			cmd := exec.Command(pipeBin, "--db", db, "--session", "w", "--agent", "sh", "--", "sh", "-c", tt.script)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if got := exitCode(t, cmd.Run()); got != tt.code {
				t.Fatalf("exit code %d, want %d\n%s", got, tt.code, stderr.String())
			}
			if stderr.Len() > 0 {
				t.Errorf("stderr: %q, want nothing (the command speaks for itself)", stderr.String())
			}
			if !strings.HasPrefix(stdout.String(), "one\n") {
				t.Errorf("stdout %q: the command's output does not pass through", stdout.String())
			}
			rows := readRows(t, db)
			if len(rows) != tt.outputRows+2 {
				t.Fatalf("%d rows, want start, %d of output and the last: %+v", len(rows), tt.outputRows, rows)
			}
			first, last := rows[0], rows[len(rows)-1]
			if first.Type != "start" || first.Meta["command"] != "sh -c "+shellQuote(tt.script) {
				t.Errorf("first row %+v, want a start row with the command line", first)
			}
			if last.Type != tt.last || last.Data != tt.data || last.Meta["exit_code"] != float64(tt.code) ||
				last.Meta["status"] != tt.status || last.Meta["duration"] == nil {
				t.Errorf("last row %+v, want %s, exit_code %d, status %s, a duration", last, tt.last, tt.code, tt.status)
			}
			if sig, _ := last.Meta["signal"].(string); sig != tt.sig {
				t.Errorf("signal %q, want %q", sig, tt.sig)
			}
			for _, r := range rows[1 : len(rows)-1] {
				if r.Type != "stream" || r.Session != "w" {
					t.Errorf("output row %+v, want a stream row of session w", r)
				}
			}
		})
	}
}

// TestWrap_Stderr: what the command writes to stderr passes through to ours
// and is stored in rows marked stderr; stdout rows are not marked, and the
// command reads our stdin.
func TestWrap_Stderr(t *testing.T) {
	pipeBin, _ := programs(t)
	db := filepath.Join(t.TempDir(), "t.db")
	cmd := exec.Command(pipeBin, "--db", db, "--session", "w", "--", "sh", "-c", `read x; echo "out $x"; echo "warning: $x" >&2`)
	cmd.Stdin = strings.NewReader("hello\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if got, want := stdout.String(), "out hello\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	if got, want := stderr.String(), "warning: hello\n"; got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
	got := map[string]any{}
	for _, r := range readRows(t, db) {
		if r.Type == "stream" {
			got[r.Data] = r.Meta["stream"]
		}
	}
	if len(got) != 2 || got["out hello"] != nil || got["warning: hello"] != "stderr" {
		t.Errorf("stream rows %v, want the stdout line unmarked and the stderr line marked stderr", got)
	}
}

// TestWrap_NotFound: a command that does not exist is a clear error, exit
// status 127 as in a shell, and an error row.
func TestWrap_NotFound(t *testing.T) {
	pipeBin, _ := programs(t)
	db := filepath.Join(t.TempDir(), "t.db")
	cmd := exec.Command(pipeBin, "--db", db, "--session", "w", "--", "no-such-command-vk", "--flag")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if got := exitCode(t, cmd.Run()); got != 127 {
		t.Fatalf("exit code %d, want 127\n%s", got, stderr.String())
	}
	if want := `vibekit-pipe: run no-such-command-vk: exec: "no-such-command-vk": executable file not found in $PATH` + "\n"; stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
	rows := readRows(t, db)
	if len(rows) != 2 || rows[1].Type != "error" || rows[1].Meta["exit_code"] != float64(127) || rows[1].Meta["status"] != "not started" {
		t.Fatalf("rows %+v, want start and an error row with exit_code 127", rows)
	}
}

// TestWrap_Signals sends vibekit-pipe SIGINT (Ctrl-C) and SIGTERM while the
// command runs: the command gets the signal, its last words are stored, and
// vibekit-pipe exits with its exit code.
func TestWrap_Signals(t *testing.T) {
	pipeBin, _ := programs(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "t.db")
			script := `trap 'echo "got $1"; exit 42' ` + strings.TrimPrefix(sigName(sig), "SIG") + `; echo ready; while :; do sleep 0.05; done`
			cmd := exec.Command(pipeBin, "--db", db, "--session", "w", "--", "sh", "-c", script, "sh", sigName(sig))
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(out)
			if line, err := r.ReadString('\n'); line != "ready\n" {
				t.Fatalf("first line %q, %v; stderr:\n%s", line, err, stderr.String())
			}
			cmd.Process.Signal(sig)
			rest, _ := r.ReadString(0)
			if got := exitCode(t, cmd.Wait()); got != 42 {
				t.Fatalf("exit code %d, want the command's 42\n%s", got, stderr.String())
			}
			if want := "got " + sigName(sig) + "\n"; rest != want {
				t.Errorf("output after the signal %q, want %q", rest, want)
			}
			// The whole group gets the signal: the shell may also say on
			// stderr that its sleep was terminated.
			rows := readRows(t, db)
			var stdoutRows []string
			for _, r := range rows {
				if r.Type == "stream" && r.Meta["stream"] == nil {
					stdoutRows = append(stdoutRows, r.Data)
				}
			}
			last := rows[len(rows)-1]
			if last.Type != "error" || last.Meta["exit_code"] != float64(42) || strings.Join(stdoutRows, "|") != "ready|got "+sigName(sig) {
				t.Errorf("rows %+v, want the command's output and an error row with exit_code 42", rows)
			}
		})
	}
}

func sigName(s syscall.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}
