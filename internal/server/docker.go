package server

import (
	"context"
	"fmt"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/lifecycle/dockerstager"
	"github.com/pandoplatform/pando/internal/registry"
)

// dockerStager is the local cell's docker stager: one registry client
// (one connection pool) for the process, plain HTTP only to the
// registries listed with --insecure-registry.
func dockerStager(insecure []string) (func(context.Context, pando.StagingRequest, func(string)) (pando.StagingResult, error), error) {
	client, err := registry.New(registry.Options{Insecure: insecure, UserAgent: "pando"})
	if err != nil {
		return nil, fmt.Errorf("--insecure-registry: %w", err)
	}
	return dockerstager.New(client).Stage, nil
}
