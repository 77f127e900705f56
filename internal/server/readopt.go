package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/atomicfile"
	"github.com/pandoplatform/pando/internal/cellapi"
	"github.com/pandoplatform/pando/internal/cellauth"
	"github.com/pandoplatform/pando/internal/sqlstore"
)

// knownCellsFile lists, one ID a line, the joined cells registered with
// the server when it last saw a change: after a restart (kill -9
// included) the BBS waits for them to report what they run before it
// places instances, so none starts twice.
const knownCellsFile = "cells"

// readKnownCells reads the joined cells the previous run knew; a missing
// file is none. Lines that are not cell IDs are skipped.
func readKnownCells(dataDir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, knownCellsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read known cells: %w", err)
	}
	var ids []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if id := strings.TrimSpace(line); id != "" && cellauth.CheckCellID(id) == nil {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// writeKnownCells replaces the file atomically.
func writeKnownCells(dataDir string, ids []string) error {
	var body strings.Builder
	for _, id := range ids {
		body.WriteString(id + "\n")
	}
	if err := atomicfile.WriteFile(filepath.Join(dataDir, knownCellsFile), []byte(body.String()), 0o600); err != nil {
		return fmt.Errorf("write known cells: %w", err)
	}
	return nil
}

// cellBoard is what keeping the known cells needs of the BBS.
type cellBoard interface {
	CellIDs() []string
	Cell(id string) (pando.Cell, bool)
	Subscribe(ctx context.Context, after uint64) (<-chan pando.RuntimeEvent, error)
}

// joinedCells are the registered cells that joined over the cell API
// (not the server's own).
func joinedCells(board cellBoard) []string {
	var ids []string
	for _, id := range board.CellIDs() {
		if c, ok := board.Cell(id); ok {
			if _, remote := c.(*cellapi.RepClient); remote {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// sharedState is where API replicas on one database keep what the next
// leader needs (sqlstore's server_state).
type sharedState interface {
	ServerState(ctx context.Context, name string) (string, bool, error)
	PutServerState(ctx context.Context, name, value string) error
}

// readSharedKnownCells adds the joined cells the database lists (the
// last leader's, which may have been another replica) to ids.
func readSharedKnownCells(ctx context.Context, shared sharedState, ids []string) ([]string, error) {
	v, _, err := shared.ServerState(ctx, sqlstore.StateKnownCells)
	if err != nil {
		return ids, err
	}
	for line := range strings.SplitSeq(v, "\n") {
		if id := strings.TrimSpace(line); id != "" && cellauth.CheckCellID(id) == nil && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// keepKnownCells writes the joined cells to the data dir (and to shared,
// unless nil: the standbys' next leader reads them there) whenever a cell
// registers or goes, until ctx ends.
func keepKnownCells(ctx context.Context, dataDir string, shared sharedState, board cellBoard, log *slog.Logger) {
	var written []string
	first := true
	save := func() {
		ids := joinedCells(board)
		if !first && slices.Equal(ids, written) {
			return
		}
		if err := writeKnownCells(dataDir, ids); err != nil {
			log.Warn("keep the list of joined cells (a restart then places their instances afresh)", "err", err)
			return
		}
		if shared != nil {
			if err := shared.PutServerState(ctx, sqlstore.StateKnownCells, strings.Join(ids, "\n")); err != nil && ctx.Err() == nil {
				log.Warn("keep the list of joined cells in the database (a standby taking over then places their instances afresh)", "err", err)
				return
			}
		}
		written, first = ids, false
	}
	save()
	for ctx.Err() == nil {
		events, err := board.Subscribe(ctx, 0)
		if err != nil {
			return
		}
		for ev := range events {
			switch ev.Type {
			case pando.EventCellChanged, pando.EventCellRemoved, pando.EventResync:
				save()
			}
		}
	}
}
