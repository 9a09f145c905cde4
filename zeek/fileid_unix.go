//go:build unix

package zeek

import (
	"os"
	"syscall"
)

// devIno is the file's identity on the file system: a rename keeps it, a
// new file (or the gzip of an old one) gets another.
func devIno(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), st.Ino
	}
	return 0, 0
}
