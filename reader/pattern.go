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
			if c == "**" {
				// Any depth, this directory included: every directory below
				// is a place a match may appear, so each is watched.
				for _, sub := range subdirs(d) {
					dirs = append(dirs, sub)
					if last {
						for _, name := range readNames(sub) {
							p := filepath.Join(sub, name)
							if fi, err := os.Lstat(p); err == nil && !fi.IsDir() {
								next = append(next, p)
							}
						}
					} else {
						next = append(next, sub)
					}
				}
				continue
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

// subdirs is dir and every directory below it, not following links (a link
// to a parent would never end), at most maxSubdirs of them.
func subdirs(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return filepath.SkipDir
		}
		if d.IsDir() {
			if len(out) == maxSubdirs {
				return filepath.SkipAll
			}
			out = append(out, p)
		}
		return nil
	})
	return out
}

// maxSubdirs bounds the directories one "**" ranges over: each is watched.
const maxSubdirs = 100000

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
// matches pattern, or the leading components of pattern, one for one; a
// "**" component matches any number of path components, none included.
func mayMatch(pattern, path string) bool {
	pc := strings.Split(strings.TrimPrefix(filepath.Clean(pattern), "/"), "/")
	fc := strings.Split(strings.TrimPrefix(filepath.Clean(path), "/"), "/")
	return matchComponents(pc, fc)
}

func matchComponents(pc, fc []string) bool {
	for len(fc) > 0 {
		if len(pc) == 0 {
			return false
		}
		if pc[0] == "**" {
			// Consume no component, or one and stay on "**".
			return matchComponents(pc[1:], fc) || matchComponents(pc, fc[1:])
		}
		if ok, _ := filepath.Match(pc[0], fc[0]); !ok {
			return false
		}
		pc, fc = pc[1:], fc[1:]
	}
	return true
}
