package layers

import (
	"fmt"
	"math"
)

// Shift maps the ids of a layer's files into a container's user namespace
// range on the host: container id N is host id UID+N (GID+N for groups),
// for N < Size. The zero Shift keeps the ids the tar headers say.
//
// The runtime runs an image whose user is root in a user namespace that
// maps container 0 to an unprivileged host id; for the files of its layers
// to belong to the container's users, the layers it stacks must be
// unpacked with the same Shift. The cache keys layers by (digest, Shift),
// so every container with the same mapping shares one shifted copy.
type Shift struct {
	UID, GID uint32
	Size     uint32
}

// IsZero reports whether s keeps ids unchanged.
func (s Shift) IsZero() bool { return s == Shift{} }

func (s Shift) validate() error {
	if s.IsZero() {
		return nil
	}
	if s.Size == 0 {
		return fmt.Errorf("id shift %+v: Size is 0", s)
	}
	if uint64(s.UID)+uint64(s.Size) > math.MaxUint32 || uint64(s.GID)+uint64(s.Size) > math.MaxUint32 {
		return fmt.Errorf("id shift %+v: range overflows 32 bits", s)
	}
	return nil
}

// apply maps a tar entry's owner. Without a shift any id up to 2^32-2 is
// kept (2^32-1 means "no change" to chown); with one, ids outside the range
// are refused rather than silently given to another user.
func (s Shift) apply(uid, gid int) (int, int, error) {
	if uid < 0 || gid < 0 || uid >= math.MaxUint32 || gid >= math.MaxUint32 {
		return 0, 0, fmt.Errorf("owner %d:%d is not a valid id", uid, gid)
	}
	if s.IsZero() {
		return uid, gid, nil
	}
	if uint64(uid) >= uint64(s.Size) || uint64(gid) >= uint64(s.Size) {
		return 0, 0, fmt.Errorf("owner %d:%d is outside the container's %d ids", uid, gid, s.Size)
	}
	return int(s.UID) + uid, int(s.GID) + gid, nil
}

// suffix names the shifted variant of a layer directory.
func (s Shift) suffix() string {
	if s.IsZero() {
		return ""
	}
	return fmt.Sprintf("-u%d-g%d-n%d", s.UID, s.GID, s.Size)
}
