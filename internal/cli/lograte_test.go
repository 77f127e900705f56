package cli

import "testing"

func TestParseLogRate_readsWhatCfScaleTakes(t *testing.T) {
	for in, want := range map[string]int{
		"16K": 16 << 10, "1M": 1 << 20, "1mb": 1 << 20, "512B": 512, "100": 100, "0": 0,
		"-1": -1, "unlimited": -1, "2G": 2 << 30,
	} {
		got, err := parseLogRate(in)
		if err != nil || got != want {
			t.Errorf("parseLogRate(%q) = %d, %v; want %d", in, got, err, want)
		}
		if want > 0 {
			if back, _ := parseLogRate(logRateText(want)); back != want {
				t.Errorf("logRateText(%d) = %q reads back as %d", want, logRateText(want), back)
			}
		}
	}
	for _, bad := range []string{"", "-2", "K", "1.5M", "lots", "99999999999G"} {
		if _, err := parseLogRate(bad); err == nil {
			t.Errorf("parseLogRate(%q) accepted", bad)
		}
	}
	if logRateText(-1) != "unlimited" || logRateText(1500) != "1500B" {
		t.Errorf("logRateText: %q %q", logRateText(-1), logRateText(1500))
	}
}
