package container

import "testing"

func TestVolumeUsage_Full(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		u    VolumeUsage
		full bool
	}{
		{VolumeUsage{SizeBytes: 16 * mb, FreeBytes: 16 * mb, FreeInodes: 100}, false},
		{VolumeUsage{SizeBytes: 16 * mb, FreeBytes: 3 * mb, FreeInodes: 100}, false},
		// A 1 MiB write failed whole: under 1 MiB is left.
		{VolumeUsage{SizeBytes: 16 * mb, FreeBytes: mb - 4096, FreeInodes: 100}, true},
		{VolumeUsage{SizeBytes: 16 * mb, FreeBytes: 8 * mb, FreeInodes: 0}, true},
		// Big volumes: 2% slack.
		{VolumeUsage{SizeBytes: 4096 * mb, FreeBytes: 80 * mb, FreeInodes: 100}, true},
		{VolumeUsage{SizeBytes: 4096 * mb, FreeBytes: 100 * mb, FreeInodes: 100}, false},
		// Tiny volumes: at most a quarter.
		{VolumeUsage{SizeBytes: 2 * mb, FreeBytes: mb, FreeInodes: 100}, false},
		{VolumeUsage{SizeBytes: 2 * mb, FreeBytes: mb / 4, FreeInodes: 100}, true},
	} {
		if got := tc.u.Full(); got != tc.full {
			t.Errorf("%+v: Full() = %v, want %v", tc.u, got, tc.full)
		}
	}
}
