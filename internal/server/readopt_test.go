package server

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/bbs"
	"github.com/pandoplatform/pando/internal/cellapi"
	"github.com/pandoplatform/pando/internal/runtimetest"
)

// The server keeps the list of joined cells (not its own) in the data dir
// as they come and go, for the next start to wait for.
func TestKeepKnownCells_listsTheJoinedCellsAsTheyComeAndGo(t *testing.T) {
	dir := t.TempDir()
	board := bbs.New(bbs.Config{})
	board.RegisterCell(runtimetest.NewCell("cell-0", 1024))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); keepKnownCells(ctx, dir, nil, board, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() { cancel(); <-done })

	want := func(ids ...string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, statErr := os.Stat(filepath.Join(dir, knownCellsFile)) // written, not just missing
			got, err := readKnownCells(dir)
			if statErr == nil && err == nil && slices.Equal(got, ids) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("known cells %v (%v), want %v", got, err, ids)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	want()
	for _, id := range []string{"cell-b", "cell-a"} {
		board.RegisterCell(cellapi.NewRepClient(id, "https://127.0.0.1:1", http.DefaultClient, cellapi.NewGrants()))
	}
	want("cell-a", "cell-b")
	board.UnregisterCell("cell-b")
	want("cell-a")
}

func TestReadKnownCells_skipsWhatIsNotACellID(t *testing.T) {
	dir := t.TempDir()
	if ids, err := readKnownCells(dir); err != nil || ids != nil {
		t.Fatalf("no file: %v %v, want none", ids, err)
	}
	if err := os.WriteFile(filepath.Join(dir, knownCellsFile), []byte("cell-a\n\n../../etc\n  cell-b  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ids, err := readKnownCells(dir); err != nil || !slices.Equal(ids, []string{"cell-a", "cell-b"}) {
		t.Fatalf("read %v %v, want cell-a and cell-b", ids, err)
	}
}
