package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

func (e *env) cellUndrainCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "undrain CELL_ID",
		Short: "End a cell's drain: place work on it again (admins)",
		Long: `End a drain ('pando cell drain'): the cell takes new work again and
nothing more is moved off it; instances already moving finish their move.
Instances that left stay where they are now. A cell that drains itself
(SIGTERM or SIGUSR1 on its machine) stays draining until it restarts.`,
		Example: "  pando cell undrain cell-1",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmdContext(cmd)
			s, err := e.newSession(ctx, false)
			if err != nil {
				return err
			}
			return s.undrainCell(ctx, args[0])
		},
	}
	withUsage(cmd)
	return cmd
}

func (s *session) undrainCell(ctx context.Context, id string) error {
	s.out("Undraining cell %s as %s...\n", id, s.user())
	cell, err := s.c.UndrainCell(ctx, id)
	if err != nil {
		return err
	}
	if cell.Draining {
		return fmt.Errorf("cell %s is still draining: it drains itself (SIGTERM or SIGUSR1 on its machine); start it again to have it take work", id)
	}
	s.out("Cell %s takes new work again.\n", id)
	return nil
}
