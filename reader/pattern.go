package reader

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// hasMeta reports whether a path component is a pattern rather than a name.
func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// walkPattern matches an absolute pattern (filepath.Match syntax in any
// component) against the file system. It returns the paths that match, and
// the directories to watch so that a change to the matches is seen: the
// parents of the matches, each directory whose entries a pattern component
// ranges over, and the deepest existing ancestor of a directory that does not
// exist yet. Unlike filepath.Glob it never reads a matched name as a pattern.
func walkPattern(pattern string) (matches, dirs []string) {
	comps := strings.Split(strings.TrimPrefix(filepath.Clean(pattern), "/"), "/")
	cur := []string{"/"}
	for i, c := range comps {
		last := i == len(comps)-1
		var next []string
		for _, d := range cur {
			if last {
				dirs = append(dirs, d)
			}
			if !hasMeta(c) {
				p := filepath.Join(d, c)
				if last {
					if _, err := os.Lstat(p); err == nil {
						next = append(next, p)
					}
				} else if fi, err := os.Stat(p); err == nil && fi.IsDir() {
					next = append(next, p)
				} else {
					dirs = append(dirs, d) // p may be created later
				}
				continue
			}
			if !last {
				dirs = append(dirs, d) // matching directories may appear
			}
			for _, name := range readNames(d) {
				if ok, _ := filepath.Match(c, name); !ok {
					continue
				}
				p := filepath.Join(d, name)
				if !last {
					if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
						continue
					}
				}
				next = append(next, p)
			}
		}
		cur = next
	}
	slices.Sort(cur)
	return cur, dirs
}

// readNames lists a directory's entries, unsorted; none if it cannot be read.
func readNames(dir string) []string {
	f, err := os.Open(dir)
	if err != nil {
		return nil
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	return names
}

// mayMatch reports whether path is, or may lead to, a match of pattern: it
// matches pattern, or the leading components of pattern, one for one.
func mayMatch(pattern, path string) bool {
	pc := strings.Split(strings.TrimPrefix(filepath.Clean(pattern), "/"), "/")
	fc := strings.Split(strings.TrimPrefix(filepath.Clean(path), "/"), "/")
	if len(fc) > len(pc) {
		return false
	}
	for i, c := range fc {
		if ok, _ := filepath.Match(pc[i], c); !ok {
			return false
		}
	}
	return true
}
