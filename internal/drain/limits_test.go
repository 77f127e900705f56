package drain

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// bound makes n drains of one app in a space of an org (distinct URLs on
// low loopback ports nothing listens on: drains need only exist).
func bound(org, space, app string, n, port0 int) []Binding {
	var bs []Binding
	for i := range n {
		bs = append(bs, Binding{AppGUID: app, URL: fmt.Sprintf("syslog://127.0.0.1:%d", port0+i), Hostname: "o.s.a", SpaceGUID: space, OrgGUID: org})
	}
	return bs
}

func apps(bs []Binding) map[string]int {
	n := map[string]int{}
	for _, b := range bs {
		n[b.AppGUID]++
	}
	return n
}

func TestLimits_admitKeepsTheOldestWithinEachTenantsShare(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits Limits
		bs     []Binding
		want   map[string]int
		scope  string // of the first left out, "" for none
	}{
		{"per space", Limits{MaxDrainsPerSpace: 3},
			slices.Concat(bound("o1", "s1", "a", 5, 1), bound("o1", "s2", "b", 2, 10)),
			map[string]int{"a": 3, "b": 2}, "space"},
		{"per org, across its spaces", Limits{MaxDrainsPerOrg: 4, MaxDrainsPerSpace: -1},
			slices.Concat(bound("o1", "s1", "a", 3, 1), bound("o1", "s2", "b", 3, 10), bound("o2", "s3", "c", 2, 20)),
			map[string]int{"a": 3, "b": 1, "c": 2}, "organization"},
		{"the platform's total", Limits{MaxDrains: 4},
			slices.Concat(bound("o1", "s1", "a", 3, 1), bound("o2", "s2", "b", 3, 10)),
			map[string]int{"a": 3, "b": 1}, "platform"},
		{"no tenant bounds", Limits{MaxDrainsPerOrg: -1, MaxDrainsPerSpace: -1},
			bound("o1", "s1", "a", 120, 1),
			map[string]int{"a": 120}, ""},
		{"an app bound twice to one URL is one drain", Limits{MaxDrainsPerSpace: 1},
			slices.Concat(bound("o1", "s1", "a", 1, 1), bound("o1", "s1", "a", 1, 1)),
			map[string]int{"a": 1}, ""},
		{"defaults", Limits{},
			bound("o1", "s1", "a", DefaultMaxDrainsPerSpace+1, 1),
			map[string]int{"a": DefaultMaxDrainsPerSpace}, "space"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, out := tc.limits.Admit(tc.bs)
			if got := apps(in); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("admitted per app %v, want %v", got, tc.want)
			}
			// The oldest (first listed) of each app keep their place.
			var oldest []Binding
			kept := map[string]int{}
			for _, b := range tc.bs {
				if kept[b.AppGUID] < tc.want[b.AppGUID] && !slices.Contains(oldest, b) {
					kept[b.AppGUID]++
					oldest = append(oldest, b)
				}
			}
			if !slices.Equal(in, oldest) {
				t.Errorf("admitted %v, want the first bound of each app %v", in, oldest)
			}
			if tc.scope == "" {
				if len(out) > 0 {
					t.Errorf("left out %v, want none", out)
				}
				return
			}
			if len(out) == 0 || out[0].Scope != tc.scope {
				t.Fatalf("left out %v, want the first by the %s limit", out, tc.scope)
			}
		})
	}
}

func TestLimits_overSaysWhichLimitAndWhatToDo(t *testing.T) {
	for scope, want := range map[string]string{
		"space":        "the space's limit of 7 syslog drains is reached: unbind",
		"organization": "the organization's limit of 7 syslog drains is reached: unbind",
		"platform":     "the platform's limit of 7 syslog drains is reached: ask an admin",
	} {
		if got := (Over{Scope: scope, Max: 7}).Error(); !strings.HasPrefix(got, want) {
			t.Errorf("%s: %q, want it to start %q", scope, got, want)
		}
	}
	if err := (Limits{MaxDrainsPerOrg: -2}).Validate(); err == nil {
		t.Error("a per-org limit of -2 was accepted")
	}
	if err := (Limits{MaxDrains: 1, MaxDrainsPerOrg: -1, MaxDrainsPerSpace: 5}).Validate(); err != nil {
		t.Errorf("valid limits refused: %v", err)
	}
}

// One org binding many drains cannot take the slots another org's apps
// need: its newest drains past its share are not run, and each is
// reported once in its app's log.
func TestForwarder_oneOrgCannotTakeEverySlot(t *testing.T) {
	greedy := bound("o-greedy", "s-greedy", "greedy-app", 30, 1)
	modest := bound("o-modest", "s-modest", "modest-app", 2, 100)
	sink := &memSink{}
	bindings := &staticBindings{bs: slices.Concat(greedy, modest)}
	f := startForwarder(t, Config{Sink: sink, Bindings: bindings, Limits: Limits{MaxDrains: 12, MaxDrainsPerOrg: 10, MaxDrainsPerSpace: -1}})
	running := func() map[string]int {
		f.mu.RLock()
		defer f.mu.RUnlock()
		n := map[string]int{}
		for app, ds := range f.byApp {
			n[app] = len(ds)
		}
		return n
	}
	if got := running(); got["greedy-app"] != 10 || got["modest-app"] != 2 {
		t.Fatalf("drains run per app %v, want greedy-app 10 (its org's share) and modest-app 2", got)
	}
	notices := func() int {
		n := 0
		for _, e := range sink.all(SourceTypeDrain) {
			if e.SourceID == "greedy-app" && strings.Contains(string(e.Payload), "organization's limit of 10 syslog drains") {
				n++
			}
		}
		return n
	}
	if n := notices(); n != 20 {
		t.Errorf("%d notices in greedy-app's log, want one per drain left out (20)", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := notices(); n != 20 {
		t.Errorf("%d notices after a second read of the bindings, want still 20 (each reported once)", n)
	}
	if _, ok := sink.find(SourceTypeDrain, "modest-app"); ok {
		t.Error("the modest org's app got a notice")
	}
	// Unbinding the greedy org's first drains lets its next ones run.
	bindings.set(slices.Concat(greedy[5:], modest)...)
	if err := f.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := running(); got["greedy-app"] != 10 || got["modest-app"] != 2 {
		t.Errorf("after unbinding 5: drains per app %v, want greedy-app 10 and modest-app 2", got)
	}
}
