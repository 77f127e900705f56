package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log"
	"net"
	"net/http"
	"os/exec"

	"github.com/google/go-containerregistry/pkg/authn"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/pandoplatform/pando/internal/registry/registrytest"
)

// benchRegistry is a registry on loopback: Debian's docker-registry with
// htpasswd auth when installed, else go-containerregistry's in-process one
// (anonymous).
type benchRegistry struct {
	host       string
	user, pass string // empty: anonymous
	kind       string
	stop       func()
	pid        int // the docker-registry process (0: in this process)
}

func (r *benchRegistry) auth() authn.Authenticator {
	if r.user == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: r.user, Password: r.pass}
}

func startRegistry(ctx context.Context, dir string) (*benchRegistry, error) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return startInProcess()
	}
	secret := make([]byte, 12)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	pass := hex.EncodeToString(secret)
	addr, stop, err := registrytest.StartDistribution(ctx, bin, dir, "bench", pass)
	if err != nil {
		return nil, err
	}
	return &benchRegistry{host: addr, user: "bench", pass: pass, kind: "docker-registry (distribution, htpasswd)", stop: stop, pid: childPid("docker-registry")}, nil
}

func startInProcess() (*benchRegistry, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))}
	go func() { _ = srv.Serve(ln) }()
	return &benchRegistry{host: ln.Addr().String(), kind: "go-containerregistry in-process (docker-registry not installed)", stop: func() { _ = srv.Close() }}, nil
}
