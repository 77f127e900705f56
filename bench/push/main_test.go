package main

import (
	"os"
	"testing"

	"github.com/pandoplatform/pando/internal/container/runc"
)

// TestMain lets the floor's runc backend run the test binary as each
// container's shim, as the bench runs the pando binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == runc.ShimCommand {
		os.Exit(runc.ShimMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}
