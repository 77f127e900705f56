package builder

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// parseRelease reads bin/release's YAML. Only default_process_types is used;
// other keys (addons, config_vars) are legacy and ignored, as in CF.
func parseRelease(out []byte) (map[string]string, error) {
	var rel struct {
		DefaultProcessTypes map[string]any `yaml:"default_process_types"`
	}
	if err := yaml.Unmarshal(out, &rel); err != nil {
		return nil, fmt.Errorf("release output is not valid YAML: %w", err)
	}
	types := make(map[string]string, len(rel.DefaultProcessTypes))
	for k, v := range rel.DefaultProcessTypes {
		switch v := v.(type) {
		case string:
			types[k] = v
		case nil:
			types[k] = ""
		default:
			return nil, fmt.Errorf("release output: process type %q is not a string command", k)
		}
	}
	return types, nil
}

type procfile struct {
	types    map[string]string
	warnings []string
}

var procfileLine = regexp.MustCompile(`^([A-Za-z0-9_-]+):\s*(.*)$`)

// readProcfile parses the app's Procfile (`name: command` per line, as
// Heroku and CF read it). It returns nil when there is no Procfile. Lines
// that are not process definitions are reported as warnings, not errors.
func readProcfile(buildDir string) (*procfile, error) {
	root, err := os.OpenRoot(buildDir)
	if err != nil {
		return nil, fmt.Errorf("open build dir: %w", err)
	}
	defer root.Close()
	f, err := root.Open("Procfile")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read Procfile: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return nil, errors.New("the Procfile is a directory")
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSmallFile+1))
	if err != nil {
		return nil, fmt.Errorf("read Procfile: %w", err)
	}
	if len(b) > maxSmallFile {
		return nil, fmt.Errorf("the Procfile is larger than %d bytes", maxSmallFile)
	}
	return parseProcfile(string(b)), nil
}

func parseProcfile(s string) *procfile {
	p := &procfile{types: map[string]string{}}
	for i, line := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || line == "---" {
			continue
		}
		m := procfileLine.FindStringSubmatch(line)
		if m == nil {
			p.warnings = append(p.warnings, fmt.Sprintf("line %d ignored: not NAME: COMMAND", i+1))
			continue
		}
		cmd := strings.TrimSpace(m[2])
		if unq, ok := unquoteYAML(cmd); ok {
			cmd = unq
		}
		if cmd == "" {
			p.warnings = append(p.warnings, fmt.Sprintf("line %d ignored: empty command for %q", i+1, m[1]))
			continue
		}
		p.types[m[1]] = cmd
	}
	return p
}

// unquoteYAML strips one level of YAML quoting from a command written as
// `web: "bin/app --flag"`, which Procfiles written as YAML often do.
func unquoteYAML(s string) (string, bool) {
	if len(s) < 2 || (s[0] != '"' && s[0] != '\'') || s[len(s)-1] != s[0] {
		return "", false
	}
	var v string
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		return "", false
	}
	return v, true
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
