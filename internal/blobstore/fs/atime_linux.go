package fs

import (
	"os"
	"syscall"
	"time"
)

// accessTime is the file's last access (relatime: updated at least daily).
func accessTime(info os.FileInfo) time.Time {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Atim.Sec, st.Atim.Nsec)
	}
	return time.Time{}
}
