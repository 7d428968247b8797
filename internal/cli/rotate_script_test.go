package cli

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// genrecords FILE N TS [SESSIONS] writes N records, one a second from Unix
// ms TS, each about 500 bytes: enough to pass a --max-size-mb. Without
// SESSIONS they are stream records of session s. With it they are split
// into that many sessions of consecutive records, alternately of claude
// and codex, each a start, streams (every 97th record an error) and an end
// whose status is success or, for every third session, interrupted.
func cmdGenrecords(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 || len(args) > 4 {
		ts.Fatalf("usage: genrecords FILE N TS [SESSIONS]")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	t0, err := strconv.ParseInt(args[2], 10, 64)
	ts.Check(err)
	sessions := 0
	if len(args) == 4 {
		sessions, err = strconv.Atoi(args[3])
		ts.Check(err)
	}
	f, err := os.Create(ts.MkAbs(args[0]))
	ts.Check(err)
	w := bufio.NewWriter(f)
	pad := strings.Repeat("x", 450)
	for i := range n {
		at := t0 + int64(i)*1000
		if sessions == 0 {
			fmt.Fprintf(w, `{"sessionId":"s","eventType":"stream","agentType":"claude","streamData":"%d %s","timestamp":%d}`+"\n", i, pad, at)
			continue
		}
		per := (n + sessions - 1) / sessions
		s := i / per
		agent := [2]string{"claude", "codex"}[s%2]
		typ, meta := "stream", ""
		switch {
		case i%per == 0:
			typ = "start"
		case i%per == per-1 || i == n-1:
			typ, meta = "end", `,"metadata":{"status":"success"}`
			if s%3 == 2 {
				meta = `,"metadata":{"status":"interrupted"}`
			}
		case i%97 == 0:
			typ = "error"
		}
		fmt.Fprintf(w, `{"sessionId":"s%02d","eventType":"%s","agentType":"%s","streamData":"%d %s"%s,"timestamp":%d}`+"\n", s, typ, agent, i, pad, meta, at)
	}
	ts.Check(w.Flush())
	ts.Check(f.Close())
}
