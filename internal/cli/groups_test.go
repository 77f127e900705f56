package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestHelp_everyVerbIsInAGroup: pando --help lists verbs by group, as cf
// does; a verb outside every group would land in "Additional Commands".
func TestHelp_everyVerbIsInAGroup(t *testing.T) {
	h := newHarness(t)
	ids := map[string]bool{}
	for _, g := range Groups() {
		ids[g.ID] = true
	}
	for _, c := range h.env.commands() {
		if !ids[c.GroupID] {
			t.Errorf("pando %s is in no help group (%q)", c.Name(), c.GroupID)
		}
	}
	for name := range verbGroup {
		if !slices.ContainsFunc(h.env.commands(), func(c *cobra.Command) bool { return c.Name() == name }) {
			t.Errorf("help group of %s, which is no verb", name)
		}
	}
	if err := h.run("--help"); err != nil {
		t.Fatal(err)
	}
	help := h.out.String()
	for _, want := range []string{"Domains and routes:\n", "  create-route ", "Services:\n", "  update-user-provided-service "} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	if strings.Contains(help, "Additional Commands:\n  app") {
		t.Errorf("verbs outside the groups:\n%s", help)
	}
}
