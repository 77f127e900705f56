package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/cli/api"
)

// CellCommands are the operator's commands under "pando cell".
func CellCommands(streams IOStreams) []*cobra.Command {
	e := defaultEnv(streams)
	cmds := []*cobra.Command{e.cellDrainCmd(), e.cellUndrainCmd()}
	for _, cmd := range cmds {
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
	}
	return cmds
}

func (e *env) cellDrainCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "drain CELL_ID",
		Short: "Evacuate a cell: move its instances to other cells and place no new work on it (admins)",
		Long: `Evacuate a cell (an id from 'pando cells'; cell-0 is the server's own).
Each instance on it keeps serving until its replacement is running on
another cell, then stops; one that no other cell can take (none healthy,
none with room or the stack) stops after its requests in flight finish
and waits UNCLAIMED for a cell. The command waits, showing the instances left,
until none is left or --timeout passes (a crashed instance, which holds no
container and starts elsewhere after its backoff, is not waited for). The
cell stays draining (no new work) until it restarts or 'pando cell undrain'.`,
		Example: "  pando cell drain cell-1",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout <= 0 {
				return fmt.Errorf("--timeout must be positive, not %s", timeout)
			}
			ctx := cmdContext(cmd)
			s, err := e.newSession(ctx, false)
			if err != nil {
				return err
			}
			return s.drainCell(ctx, args[0], timeout)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait for the cell's instances to move")
	withUsage(cmd)
	return cmd
}

// drainCell drains a cell and waits until it has no instances or the
// timeout passes. Instances no other cell can take are stopped by the
// server after a short grace; the command says so.
func (s *session) drainCell(ctx context.Context, id string, timeout time.Duration) error {
	s.out("Draining cell %s as %s...\n", id, s.user())
	saidStranded := false
	stranded := func(cell *api.Cell, takers int) {
		if cell == nil || takers > 0 || saidStranded {
			return
		}
		held, _ := drainCount(cell)
		if held == 0 {
			return
		}
		s.out("  No other cell can take the %s on %s: each stops once its requests in flight finish (a few seconds), and waits UNCLAIMED until a cell joins ('pando cell --join') or this one restarts.\n",
			plural(held, "instance"), id)
		saidStranded = true
	}
	// The server withdraws instances no cell can take at once: look first.
	if cells, err := s.c.Cells(ctx); err == nil {
		stranded(drainView(cells, id))
	}
	if err := s.c.DrainCell(ctx, id); err != nil {
		return err
	}
	deadline := s.now().Add(timeout)
	last := -1
	for {
		cells, err := s.c.Cells(ctx)
		if err != nil {
			return fmt.Errorf("read cells: %w", err)
		}
		cell, takers := drainView(cells, id)
		if cell == nil {
			s.out("Cell %s is gone: it unregistered.\n", id)
			return nil
		}
		left, crashed := drainCount(cell)
		if left == 0 {
			s.out("Cell %s is drained: no instances left on it. It takes no new work until it restarts or 'pando cell undrain %s'.\n", id, id)
			if crashed > 0 {
				s.out("Crashed there and waiting to restart (no container left on it): %s; each starts on another cell when its crash backoff ends.\n",
					plural(crashed, "instance"))
			}
			return nil
		}
		if left != last {
			s.out("  %s left on %s\n", plural(left, "instance"), id)
			last = left
		}
		stranded(cell, takers)
		if !s.now().Before(deadline) {
			return fmt.Errorf("cell %s still has %s after %s: each keeps serving until its replacement runs on another cell (see 'pando cells'; the cells may lack room)",
				id, plural(left, "instance"), timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.pollMax):
		}
	}
}

// drainCount splits a cell's instances into those it still holds and
// those that crashed there: a crashed instance has no container left and
// is started on another cell when its crash backoff ends (minutes, up to
// 16), so a drain does not wait for it.
func drainCount(cell *api.Cell) (held, crashed int) {
	for _, in := range cell.Instances {
		if in.State == "CRASHED" {
			crashed++
		} else {
			held++
		}
	}
	return held, crashed
}

// drainView finds the cell id among cells and counts the other cells that
// can take work (healthy: neither draining nor lost).
func drainView(cells []api.Cell, id string) (*api.Cell, int) {
	var cell *api.Cell
	takers := 0
	for i := range cells {
		switch {
		case cells[i].ID == id:
			cell = &cells[i]
		case cells[i].State == "healthy" || (cells[i].State == "" && !cells[i].Draining):
			takers++
		}
	}
	return cell, takers
}
