package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/cli/api"
)

func (e *env) stacksCmd() *cobra.Command {
	return e.platformCommand("stacks", "List stacks", func(ctx context.Context, s *session) error {
		s.out("Getting stacks as %s...\n\n", s.user())
		stacks, err := s.c.Stacks(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(s.streams.Out, 0, 0, 3, ' ', 0)
		fmt.Fprintf(tw, "name\tdescription\truntimes\n")
		unknown, differ := false, false
		for _, st := range stacks {
			if cellsDiffer(st) {
				// One line per cell: which has what.
				differ = true
				for i, c := range st.CellRuntimes {
					name, desc := st.Name, st.Description
					if i > 0 {
						name, desc = "", ""
					}
					fmt.Fprintf(tw, "%s\t%s\t%s: %s\n", name, desc, c.CellID, runtimeList(c.Runtimes))
				}
				continue
			}
			rts := runtimeList(st.Runtimes)
			if st.Runtimes == nil {
				unknown = true
				rts = "not known here"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", st.Name, st.Description, rts)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if differ {
			s.out("\nThe cells' runtimes differ: a staging gets those of the cell it runs on.\n")
		}
		if unknown {
			s.out("\nRuntimes are found on the machines that run a stack: this API runs no cell (pando api)\n" +
				"and none of its cells has reported them yet (cells before 2026-12-07 do not); its cells' machines have them.\n")
		}
		return nil
	})
}

// cellsDiffer says whether the cells report different runtimes for st.
func cellsDiffer(st api.Stack) bool {
	for _, c := range st.CellRuntimes[min(1, len(st.CellRuntimes)):] {
		if !slices.Equal(c.Runtimes, st.CellRuntimes[0].Runtimes) {
			return true
		}
	}
	return false
}

// runtimeList is "node 18.19.0, python3 3.11.2", or "none found".
func runtimeList(rts []api.Runtime) string {
	if len(rts) == 0 {
		return "none found"
	}
	out := make([]string, 0, len(rts))
	for _, r := range rts {
		out = append(out, r.Name+" "+r.Version)
	}
	return strings.Join(out, ", ")
}
