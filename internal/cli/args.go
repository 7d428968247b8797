package cli

import "flag"

// positional parses the arguments after a command's first positional one,
// so that flags may follow it (vibekit telemetry session ID --events): Go's
// flag package stops at the first argument that is not a flag.
func positional(fs *flag.FlagSet, args []string) ([]string, error) {
	var out []string
	for len(args) > 0 {
		out = append(out, args[0])
		if err := fs.Parse(args[1:]); err != nil {
			return nil, err
		}
		args = fs.Args()
	}
	return out, nil
}
