// Package testenv decides what a test does when the machine lacks
// something it needs (root, runc, busybox, Go): outside CI the test skips
// with the reason; in CI (CI=true), where `make test` installs everything,
// a missing prerequisite is a failure, so no test silently stops running.
package testenv

import (
	"os"
	"testing"
)

// Missing skips t, or fails it in CI, because reason is not met.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but this test cannot run: %s (make test installs its prerequisites)", reason)
	}
	t.Skip(reason)
}
