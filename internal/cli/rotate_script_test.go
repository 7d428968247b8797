package cli

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// genrecords FILE N TS writes N stream records of session s, one a second
// from Unix ms TS, each about 500 bytes: enough to pass a --max-size-mb.
func cmdGenrecords(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: genrecords FILE N TS")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	t0, err := strconv.ParseInt(args[2], 10, 64)
	ts.Check(err)
	f, err := os.Create(ts.MkAbs(args[0]))
	ts.Check(err)
	w := bufio.NewWriter(f)
	pad := strings.Repeat("x", 450)
	for i := range n {
		fmt.Fprintf(w, `{"sessionId":"s","eventType":"stream","agentType":"claude","streamData":"%d %s","timestamp":%d}`+"\n", i, pad, t0+int64(i)*1000)
	}
	ts.Check(w.Flush())
	ts.Check(f.Close())
}
