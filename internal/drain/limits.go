package drain

import "fmt"

// Default per-tenant bounds: with DefaultQueueBytes each, one space may
// hold 200 MiB of queued lines and one org 400 MiB, out of the 4 GiB the
// DefaultMaxDrains allow in all.
const (
	DefaultMaxDrainsPerOrg   = 100
	DefaultMaxDrainsPerSpace = 50
)

// Limits bound the drains forwarded to: in all (the machine's share) and
// per org and per space (one tenant's share), so that no tenant can take
// every slot. A drain is one app's binding to one drain URL.
type Limits struct {
	// MaxDrains bounds the drains of the whole platform; 0 means
	// DefaultMaxDrains.
	MaxDrains int
	// MaxDrainsPerOrg and MaxDrainsPerSpace bound the drains of the apps
	// of one org and of one space; 0 means the default, -1 no bound.
	MaxDrainsPerOrg   int
	MaxDrainsPerSpace int
}

// WithDefaults returns l with its zero fields set to the defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxDrains <= 0 {
		l.MaxDrains = DefaultMaxDrains
	}
	if l.MaxDrainsPerOrg == 0 {
		l.MaxDrainsPerOrg = DefaultMaxDrainsPerOrg
	}
	if l.MaxDrainsPerSpace == 0 {
		l.MaxDrainsPerSpace = DefaultMaxDrainsPerSpace
	}
	return l
}

// Validate reports a limit that means nothing (below -1).
func (l Limits) Validate() error {
	for _, v := range []struct {
		name string
		n    int
	}{{"per org", l.MaxDrainsPerOrg}, {"per space", l.MaxDrainsPerSpace}} {
		if v.n < -1 {
			return fmt.Errorf("syslog drain limit %s %d: want a count, 0 for the default or -1 for none", v.name, v.n)
		}
	}
	if l.MaxDrains < 0 {
		return fmt.Errorf("syslog drain limit %d: want a count, or 0 for the default", l.MaxDrains)
	}
	return nil
}

// Over is a binding left out by a limit.
type Over struct {
	Binding Binding
	// Scope is "platform", "organization" or "space"; Max its limit.
	Scope string
	Max   int
}

// Error says which limit the drain passed and what to do about it.
func (o Over) Error() string {
	switch o.Scope {
	case "organization":
		return fmt.Sprintf("the organization's limit of %d syslog drains is reached: unbind a syslog drain service from one of its apps, or ask an admin to raise it (--syslog-drain-max-per-org)", o.Max)
	case "space":
		return fmt.Sprintf("the space's limit of %d syslog drains is reached: unbind a syslog drain service from one of its apps, or ask an admin to raise it (--syslog-drain-max-per-space)", o.Max)
	}
	return fmt.Sprintf("the platform's limit of %d syslog drains is reached: ask an admin to raise it (--syslog-drain-max)", o.Max)
}

// Admit returns the bindings within l, in the order given (the first
// listed, the oldest, keep their place), each app and URL once, and the
// bindings left out with the limit each passed. An empty OrgGUID or
// SpaceGUID is not counted against that scope.
func (l Limits) Admit(bs []Binding) (in []Binding, out []Over) {
	l = l.WithDefaults()
	seen := map[drainKey]bool{}
	perOrg, perSpace := map[string]int{}, map[string]int{}
	for _, b := range bs {
		k := drainKey{b.AppGUID, b.URL}
		if seen[k] {
			continue
		}
		seen[k] = true
		// The tenant's own limits are named first: theirs to act on.
		switch {
		case b.SpaceGUID != "" && l.MaxDrainsPerSpace >= 0 && perSpace[b.SpaceGUID] >= l.MaxDrainsPerSpace:
			out = append(out, Over{b, "space", l.MaxDrainsPerSpace})
		case b.OrgGUID != "" && l.MaxDrainsPerOrg >= 0 && perOrg[b.OrgGUID] >= l.MaxDrainsPerOrg:
			out = append(out, Over{b, "organization", l.MaxDrainsPerOrg})
		case len(in) >= l.MaxDrains:
			out = append(out, Over{b, "platform", l.MaxDrains})
		default:
			in = append(in, b)
			perOrg[b.OrgGUID]++
			perSpace[b.SpaceGUID]++
		}
	}
	return in, out
}
