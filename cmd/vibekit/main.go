// Command vibekit reads and maintains the local telemetry store that
// vibekit-pipe writes: vibekit telemetry dump, and the rest of the guide's CLI.
package main

import (
	"os"

	"github.com/vibekit/vibekit-pipe/internal/cli"
)

func main() { os.Exit(cli.MainVibekit()) }
