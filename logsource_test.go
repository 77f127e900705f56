package pando_test

import (
	"testing"

	pando "github.com/pandoplatform/pando"
)

func TestLogSourceSelected(t *testing.T) {
	for _, c := range []struct {
		filter []string
		t      string
		want   bool
	}{
		{nil, "APP/PROC/WEB", true},
		{nil, "", true},
		{[]string{"APP"}, "APP/PROC/WEB", true},
		{[]string{"APP"}, "APP", true},
		{[]string{"APP"}, "APPX", false},
		{[]string{"APP"}, "APP/", true},
		{[]string{"APP/PROC/WEB"}, "APP", false},
		{[]string{"APP/PROC"}, "APP/PROCESS", false},
		{[]string{"STG", "APP"}, "APP/PROC/WEB", true},
		{[]string{"STG", "APP"}, "RTR", false},
		{[]string{"RTR"}, "", false},
		{[]string{""}, "", true},
		{[]string{""}, "/x", true},
		{[]string{""}, "APP", false},
	} {
		if got := pando.LogSourceSelected(c.filter, c.t); got != c.want {
			t.Errorf("LogSourceSelected(%q, %q) = %v, want %v", c.filter, c.t, got, c.want)
		}
	}
}
