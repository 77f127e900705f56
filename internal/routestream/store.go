package routestream

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/pandoplatform/pando/internal/atomicfile"
)

// TableFile is where a router keeps its last table in its data dir, so
// that a router started while the server is down still routes.
const TableFile = "routes.json"

type storedTable struct {
	SystemDomain  string            `json:"system_domain"`
	Entries       map[string]Entry  `json:"entries"`
	RouteServices map[string]string `json:"route_services,omitempty"`
}

// SaveTable writes a table and its route services to path atomically
// (0600).
func SaveTable(path, systemDomain string, entries map[string]Entry, services map[string]string) error {
	b, err := json.Marshal(storedTable{SystemDomain: systemDomain, Entries: entries, RouteServices: services})
	if err != nil {
		return fmt.Errorf("save routing table: %w", err)
	}
	if err := atomicfile.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("save routing table: %w", err)
	}
	return nil
}

// LoadTable reads a table SaveTable wrote; none (and no error) when the
// file does not exist.
func LoadTable(path string) (systemDomain string, entries map[string]Entry, services map[string]string, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, nil, nil
	}
	if err != nil {
		return "", nil, nil, fmt.Errorf("load routing table: %w", err)
	}
	var st storedTable
	if err := json.Unmarshal(b, &st); err != nil {
		return "", nil, nil, fmt.Errorf("load routing table %s: %w", path, err)
	}
	return st.SystemDomain, st.Entries, st.RouteServices, nil
}
