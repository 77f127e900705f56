package main

import (
	"context"
	"testing"
)

// TestHelp: every verb's help group is defined on the root (cobra panics
// on one that is not), so help works.
func TestHelp(t *testing.T) {
	if code := run(context.Background(), []string{"--help"}); code != 0 {
		t.Fatalf("pando --help exited %d", code)
	}
	for _, verb := range []string{"create-route", "server", "api", "cell", "router"} {
		if code := run(context.Background(), []string{verb, "--help"}); code != 0 {
			t.Fatalf("pando %s --help exited %d", verb, code)
		}
	}
}
