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
	if code := run(context.Background(), []string{"create-route", "--help"}); code != 0 {
		t.Fatalf("pando create-route --help exited %d", code)
	}
}
