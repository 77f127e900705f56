package cell

import (
	"os"
	"testing"

	"github.com/pandoplatform/pando/internal/container/runc"
)

// TestMain lets the runc backend of these tests run the test binary as
// each container's shim.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == runc.ShimCommand {
		os.Exit(runc.ShimMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}
