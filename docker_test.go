package pando

import (
	"slices"
	"testing"
)

func TestExecutionMetadata_TCPPortsAreTheExposedOnesOr8080(t *testing.T) {
	for _, tc := range []struct {
		ports []Port
		want  []int
	}{
		{nil, []int{8080}},
		{[]Port{{53, "udp"}}, []int{8080}},
		{[]Port{{8000, "tcp"}, {53, "udp"}, {9000, "tcp"}, {8000, "tcp"}}, []int{8000, 9000}},
	} {
		if got := (ExecutionMetadata{Ports: tc.ports}).TCPPorts(); !slices.Equal(got, tc.want) {
			t.Errorf("TCPPorts(%v) = %v, want %v", tc.ports, got, tc.want)
		}
	}
}

func TestImageDigest_isTheDigestOfAPinnedReference(t *testing.T) {
	const d = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	for ref, want := range map[string]string{
		"registry.example:5000/team/web@" + d: d,
		"web@" + d:                            d,
		"web:v1":                              "",
		"web":                                 "",
		"web@md5:abc":                         "",
		"":                                    "",
	} {
		if got := ImageDigest(ref); got != want {
			t.Errorf("ImageDigest(%q) = %q, want %q", ref, got, want)
		}
	}
}
