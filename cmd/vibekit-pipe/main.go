// Command vibekit-pipe stores agent output and telemetry events read from
// stdin in a SQLite database, passing its input through to stdout.
package main

import (
	"os"

	"github.com/vibekit/vibekit-pipe/internal/cli"
)

func main() { os.Exit(cli.MainPipe()) }
