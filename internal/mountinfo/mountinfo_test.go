package mountinfo

import (
	"slices"
	"strings"
	"testing"
)

func TestUnder_keepsMountsAtOrBelowDirDeepestFirstAndDecodesEscapes(t *testing.T) {
	const info = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 8:1 /usr /tmp/pando-x/cell/rootfs/usr ro,relatime - ext4 /dev/sda1 rw
31 22 0:40 / /tmp/pando-x rw - tmpfs tmpfs rw
32 22 0:41 / /tmp/pando-x/my\040dir rw - tmpfs tmpfs rw
33 22 0:42 / /tmp/pando-xy rw - tmpfs tmpfs rw
short line
`
	got, err := under(strings.NewReader(info), "/tmp/pando-x/")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/tmp/pando-x/cell/rootfs/usr", "/tmp/pando-x/my dir", "/tmp/pando-x"}
	if !slices.Equal(got, want) {
		t.Fatalf("under = %q, want %q", got, want)
	}
}

func TestUnder_readsThisProcessMounts(t *testing.T) {
	ms, err := Under("/")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[len(ms)-1] != "/" {
		t.Fatalf("Under(/) = %q, want the root last", ms)
	}
}
