package cli

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// varRef matches a manifest variable, ((name)), as cf interpolates them.
var varRef = regexp.MustCompile(`\(\(([-\w./]+)\)\)`)

// loadVars merges --vars-file files (in order) and then --var KEY=VALUE
// flags, later ones winning.
func loadVars(files, pairs []string) (map[string]any, error) {
	vars := map[string]any{}
	for _, f := range files {
		data, err := readBounded(f, maxManifest)
		if err != nil {
			return nil, fmt.Errorf("read vars file: %w", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("parse vars file %s: %w", f, err)
		}
		for k, v := range m {
			vars[k] = v
		}
	}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--var %q: want KEY=VALUE", p)
		}
		vars[k] = v
	}
	return vars, nil
}

// interpolate replaces ((name)) in every string of the manifest document.
// A value that is exactly one variable takes the variable's value (and
// type); one inside a longer string is spliced in as text. Variables that
// are not given are an error naming them all, as cf reports it.
func interpolate(doc any, vars map[string]any) (any, error) {
	missing := map[string]bool{}
	var walk func(v any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				x[k] = walk(e)
			}
			return x
		case []any:
			for i, e := range x {
				x[i] = walk(e)
			}
			return x
		case string:
			if m := varRef.FindStringSubmatch(x); m != nil && m[0] == x {
				if val, ok := vars[m[1]]; ok {
					return val
				}
				missing[m[1]] = true
				return x
			}
			return varRef.ReplaceAllStringFunc(x, func(ref string) string {
				name := varRef.FindStringSubmatch(ref)[1]
				val, ok := vars[name]
				if !ok {
					missing[name] = true
					return ref
				}
				return fmt.Sprint(val)
			})
		}
		return v
	}
	out := walk(doc)
	if len(missing) > 0 {
		names := make([]string, 0, len(missing))
		for n := range missing {
			names = append(names, n)
		}
		sort.Strings(names)
		//lint:ignore ST1005 the cf CLI's wording
		return nil, fmt.Errorf("Expected to find variables: %s (give them with --var NAME=VALUE or --vars-file FILE)", strings.Join(names, ", "))
	}
	return out, nil
}
