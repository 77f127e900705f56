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
