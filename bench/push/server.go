package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/pandoplatform/pando/bench/internal/pandoserver"
	"github.com/pandoplatform/pando/internal/cgroupclean"
	"github.com/pandoplatform/pando/internal/container/runc"
)

// server is a `pando server` child process with its own data dir and
// loopback ports.
type server struct {
	*pandoserver.Server
	apiURL string
}

// startServer runs `pando server` in dir and waits until its API answers.
func startServer(ctx context.Context, bin, dir string, debug bool, log *slog.Logger, extra ...string) (*server, error) {
	level := "info"
	if debug {
		level = "debug"
	}
	ps, err := pandoserver.Start(ctx, bin, dir, append([]string{"--log-level", level}, extra...)...)
	if err != nil {
		return nil, err
	}
	s := &server{Server: ps, apiURL: "http://" + ps.APIAddr}
	log.Info("pando server up", "api", s.apiURL, "router", s.RouterAddr, "data_dir", s.DataDir)
	return s, nil
}

// stop stops the server (it stops its containers), then removes with the
// runc backend's Cleanup what a killed server left behind.
func (s *server) stop(ctx context.Context) error {
	errs := []error{s.Stop()}
	stateDir := filepath.Join(s.DataDir, "containers")
	be, err := runc.New(runc.Config{StateDir: stateDir, LifecycleBinary: s.Bin})
	if err == nil {
		err = be.Cleanup(ctx)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("remove leftover containers: %w", err))
	} else {
		cgroupclean.Remove(cgroupclean.DefaultParent(stateDir))
	}
	return errors.Join(errs...)
}
