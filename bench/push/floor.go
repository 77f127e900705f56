package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/pandoplatform/pando/internal/archive"
	"github.com/pandoplatform/pando/internal/cli/api"
	"github.com/pandoplatform/pando/internal/container"
	"github.com/pandoplatform/pando/internal/container/runc"
)

// The floor is what any push of the same app on this machine must at least
// do: move the bytes (zip + upload over loopback), start two containers
// (staging and the instance) and lay the droplet out on disk. Each part is
// measured with the same code Pando uses where it can (the CLI's upload
// client, the runc backend, the archive package).

// floorSink is an in-process HTTP server that takes a package upload the
// way the API does (multipart, the zip written to a file) and answers a
// READY package.
type floorSink struct {
	dir  string
	srv  *http.Server
	ln   net.Listener
	done chan error
}

func startFloorSink(dir string) (*floorSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("floor upload server: %w", err)
	}
	s := &floorSink{dir: dir, ln: ln, done: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v3/packages/{guid}/upload", s.upload)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

func (s *floorSink) url() string { return "http://" + s.ln.Addr().String() }

func (s *floorSink) upload(w http.ResponseWriter, r *http.Request) {
	if err := s.receive(r); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"guid": r.PathValue("guid"), "type": "bits", "state": "READY"})
}

func (s *floorSink) receive(r *http.Request) error {
	mr, err := r.MultipartReader()
	if err != nil {
		return err
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.keep(part); err != nil {
			return err
		}
	}
}

// keep stores the "bits" part in a file (as the API does before it
// extracts it) and reads the other fields.
func (s *floorSink) keep(part *multipart.Part) error {
	defer part.Close()
	if part.FormName() != "bits" {
		_, err := io.Copy(io.Discard, io.LimitReader(part, 1<<20))
		return err
	}
	f, err := os.CreateTemp(s.dir, "upload-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = io.Copy(f, io.LimitReader(part, 1<<30))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *floorSink) close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

// floorUpload zips every file of the app (a cold push sends them all) and
// uploads the zip to the sink with the CLI's own client.
func (b *bench) floorUpload(ctx context.Context, a *appSpec) (time.Duration, error) {
	c, err := api.New(api.Config{URL: b.sink.url()})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	files, err := collectFiles(a.Dir)
	if err != nil {
		return 0, err
	}
	zipPath, size, err := zipToTemp(b.tmp, files)
	if err != nil {
		return 0, err
	}
	defer os.Remove(zipPath)
	if _, err := c.UploadPackage(ctx, "floor", nil, api.Upload{
		Open:     func() (io.ReadCloser, error) { return os.Open(zipPath) },
		Size:     size,
		Filename: "package.zip",
	}); err != nil {
		return 0, fmt.Errorf("floor upload: %w", err)
	}
	return time.Since(start), nil
}

// floorRunc runs a no-op container twice in sequence (run, wait, destroy)
// with the host-stack runc backend Pando's cell uses.
func (b *bench) floorRunc(ctx context.Context, round int) (time.Duration, error) {
	start := time.Now()
	for k := range 2 {
		id := fmt.Sprintf("floor-%d-%d", round, k)
		ctr, err := b.floorBackend.Run(ctx, container.Spec{ID: id, Args: []string{"/bin/true"}})
		if err != nil {
			return 0, fmt.Errorf("floor container: %w", err)
		}
		st, werr := ctr.Wait(ctx)
		derr := ctr.Destroy(context.WithoutCancel(ctx))
		if werr != nil {
			return 0, fmt.Errorf("floor container: %w", werr)
		}
		if derr != nil {
			return 0, fmt.Errorf("floor container: %w", derr)
		}
		if st.Code != 0 {
			return 0, fmt.Errorf("floor container: /bin/true exited %d", st.Code)
		}
	}
	return time.Since(start), nil
}

// newFloorBackend returns a runc backend on dir whose containers go under
// cgroupParent (removed by the caller with cgroupclean.Remove).
func newFloorBackend(dir, pandoBin, cgroupParent string) (*runc.Backend, error) {
	be, err := runc.New(runc.Config{StateDir: dir, LifecycleBinary: pandoBin, CgroupParent: cgroupParent})
	if err != nil {
		return nil, fmt.Errorf("floor runc backend: %w", err)
	}
	return be, nil
}

// fetchDroplet downloads a staged droplet with the API's download endpoint
// into a file under the bench's temp dir.
func (b *bench) fetchDroplet(ctx context.Context, guid string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.srv.apiURL+"/v3/droplets/"+url.PathEscape(guid)+"/download", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "bearer "+b.c.Tokens().Access)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("download droplet %s: %w", guid, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("download droplet %s: %s", guid, resp.Status)
	}
	p := filepath.Join(b.tmp, "droplet-"+guid+".tgz")
	f, err := os.Create(p)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, io.LimitReader(resp.Body, 4<<30))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("download droplet %s: %w", guid, err)
	}
	return p, nil
}

// floorUntar extracts the droplet into a fresh directory owned by vcap, as
// the cell lays it out at /home/vcap, and removes it afterwards (untimed).
func (b *bench) floorUntar(ctx context.Context, tgz string) (time.Duration, error) {
	dest, err := os.MkdirTemp(b.tmp, "untar-*")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dest)
	start := time.Now()
	f, err := os.Open(tgz)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	lim := archive.DefaultLimits()
	lim.UID, lim.GID = runc.DefaultUID, runc.DefaultGID
	if err := archive.ExtractTgz(ctx, f, dest, lim); err != nil {
		return 0, fmt.Errorf("floor untar: %w", err)
	}
	return time.Since(start), nil
}
