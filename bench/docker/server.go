package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/pandoplatform/pando/bench/internal/pandoserver"
)

// server is a `pando server` child with its own data dir (so its own,
// empty, layer cache) and loopback ports. It logs at debug level: the
// container step's breakdown reads the cell's debug lines.
type server struct {
	*pandoserver.Server
}

func startServer(ctx context.Context, bin, dir, insecureRegistry string) (*server, error) {
	s, err := pandoserver.Start(ctx, bin, dir, "--insecure-registry", insecureRegistry, "--log-level", "debug")
	if err != nil {
		return nil, err
	}
	return &server{s}, nil
}

// get200 is one GET / through the router for the app's route.
func (s *server) get200(ctx context.Context, app string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.RouterAddr+"/", nil)
	if err != nil {
		return false
	}
	req.Host = app + ".localhost"
	resp, err := s.Client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// running counts the web process's RUNNING instances.
func (s *server) running(ctx context.Context, token, guid string) (int, error) {
	var stats struct {
		Resources []struct {
			State string `json:"state"`
		} `json:"resources"`
	}
	if err := s.GetJSON(ctx, token, "/v3/apps/"+guid+"/processes/web/stats", &stats); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range stats.Resources {
		if r.State == "RUNNING" {
			n++
		}
	}
	return n, nil
}

// awaitWarmup waits up to d for the server's "start-up warm-up done" log
// line (its runtime probes and seeds have ended, so a push no longer
// competes with them for the CPU); false if it did not come.
func (s *server) awaitWarmup(ctx context.Context, d time.Duration) (bool, error) {
	deadline := time.Now().Add(d)
	for {
		b, err := os.ReadFile(s.LogPath)
		if err != nil {
			return false, err
		}
		if bytes.Contains(b, []byte(`msg="start-up warm-up done"`)) {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(50 * time.Millisecond): // polling the log, with a deadline
		}
	}
}
