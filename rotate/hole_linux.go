package rotate

import (
	"os"

	"golang.org/x/sys/unix"
)

// punchHole turns n bytes of f at off into a hole, which reads as zeros
// and takes neither disk nor page cache.
func punchHole(f *os.File, off, n int64) error {
	return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
}
