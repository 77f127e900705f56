package cell

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
)

// ImagePuller fetches an OCI image's layers for a container (the server's
// is a registry client in front of internal/layers' cache).
type ImagePuller interface {
	// Pull returns the layer directories of image (a pinned REPO@DIGEST),
	// lowest first, overlay-ready (whiteouts converted, ids as the tars
	// say), authenticating with creds (nil: anonymous). An image larger
	// than maxBytes (the container's disk quota) is refused. The dirs
	// stay on the cell until release is called.
	Pull(ctx context.Context, image string, creds *pando.ImageCredentials, maxBytes int64) (dirs []string, release func(), err error)
}

// preparer is a backend that makes the parts of a container's start that
// need no spec (its host ids and user namespace) ahead of its Run; the
// runc backend is one. release gives them back if no Run took them.
type preparer interface {
	Prepare(ctx context.Context, id string) (release func(), err error)
}

// maxImageEtcFile bounds the /etc/passwd and /etc/group read from an image.
const maxImageEtcFile = 1 << 20

// pullImage pulls a docker LRP's layers (kept until teardown). When a
// start slot is free at once, the instance's volume and, when the backend
// can make them ahead, its host ids and user namespace are made under it
// beside the pull (the slot goes back when they are made, not when the
// layers are in); else imageSpec makes them under the start's own slot.
func (r *Rep) pullImage(ctx context.Context, i *instance) (startFiles, error) {
	lrp := i.lrp
	var early chan error
	if slot, ok := r.starts.tryAcquire(); ok {
		early = make(chan error, 1)
		go func() {
			defer slot()
			early <- r.prepareImageStart(ctx, i)
		}()
	}
	r.cellLog(i, "OUT", "Cell %s pulling image %s", r.cfg.ID, lrp.Image)
	layers, release, err := r.cfg.Images.Pull(ctx, lrp.Image, lrp.ImageCredentials, int64(i.diskMB)<<20)
	files := startFiles{layers: layers}
	if early != nil {
		// Its volume and preparation are the instance's from here:
		// teardown releases them, whatever happens next.
		files.prepared, files.prepErr = true, <-early
	}
	if err != nil {
		return files, fmt.Errorf("image %s: %w", lrp.Image, err)
	}
	i.releaseLayers = release // teardown calls it, whatever happens next
	return files, nil
}

// prepareImageStart makes a docker instance's disk volume (the overlay's
// writable layer goes there) and, beside it, its host ids and user
// namespace when the backend can make them ahead of its Run.
func (r *Rep) prepareImageStart(ctx context.Context, i *instance) error {
	prepDone := make(chan struct{})
	go func() {
		defer close(prepDone)
		pr, ok := r.cfg.Backend.(preparer)
		if !ok {
			return
		}
		release, err := pr.Prepare(ctx, containerID("app", i.guid))
		if err != nil {
			// Run makes them itself.
			r.log.Debug("prepare container", "instance_guid", i.guid, "error", err)
			return
		}
		i.releasePrepared = release // teardown calls it, whatever happens next
	}()
	defer func() { <-prepDone }()
	vol, err := r.newVolume(ctx, i.dir, i.diskMB)
	if err != nil {
		return err
	}
	i.vol = vol // teardown releases it, whatever happens next
	return nil
}

// imageSpec builds a docker LRP's container spec from its pulled layers
// and the image's execution metadata, making its volume first unless
// pullImage did.
func (r *Rep) imageSpec(ctx context.Context, i *instance, files startFiles) (container.Spec, error) {
	lrp := i.lrp
	err := files.prepErr
	if !files.prepared {
		err = r.prepareImageStart(ctx, i)
	}
	if err != nil {
		return container.Spec{}, err
	}
	vol := i.vol
	layers := files.layers
	idx := strconv.Itoa(i.index)
	i.stdout, i.stderr = outputWriters(r.logLimits(lrp.LogRateLimitBytes, "app instance"), func(typ, line string) {
		r.emit(lrp.AppGUID, appSource(lrp), idx, typ, line)
	})
	spec, err := imageContainerSpec(imageRun{
		id: containerID("app", i.guid), image: lrp.Image, meta: lrp.Docker, command: lrp.StartCommand,
		layers: layers, volume: vol, env: r.instanceEnv(lrp, i.index, i.guid, i.ports, i.memMB, i.diskMB),
		memMB: i.memMB, diskMB: i.diskMB, bindingFiles: lrp.BindingFiles, services: lrpServices(lrp.Env),
	})
	if err != nil {
		return container.Spec{}, err
	}
	spec.Stdout, spec.Stderr = i.stdout, i.stderr
	return spec, nil
}

// imageRun is a container of an image: a docker LRP's instance or a
// docker app's task.
type imageRun struct {
	id      string // the container's
	image   string
	meta    *pando.ExecutionMetadata
	command string // the user's (-c) or the task's; empty runs ENTRYPOINT+CMD
	layers  []string
	volume  container.Volume
	env     []string // the platform's and the app's, over the image's ENV
	// memMB and diskMB are the container's limits.
	memMB, diskMB int
	// bindingFiles is the app's binding-file feature ("": none) and
	// services its VCAP_SERVICES, written as files for it.
	bindingFiles, services string
}

// imageContainerSpec is the container spec of run (its output aside):
// the image's process (see imageProcess) on its layers, with its volume
// and limits and, when the app asked for them, the service binding files
// at bindingRoot, which the backend hands over to the image's user (its
// host uid in the container's user namespace) as for a buildpack app.
func imageContainerSpec(run imageRun) (container.Spec, error) {
	args, dir, user, env, err := imageProcess(run.image, run.meta, run.command, run.layers, run.env)
	if err != nil {
		return container.Spec{}, err
	}
	mounts, err := bindingMounts(run.volume.Dir(), run.bindingFiles, run.services)
	if err != nil {
		return container.Spec{}, err
	}
	return container.Spec{
		ID:          run.id,
		Layers:      run.layers,
		Mounts:      mounts,
		Volume:      run.volume.Dir(),
		User:        &user,
		Env:         env,
		Dir:         dir,
		Args:        args,
		MemoryBytes: int64(run.memMB) << 20,
		DiskBytes:   int64(run.diskMB) << 20,
		PidsLimit:   instancePids,
		CPUShares:   cpuShares(run.memMB),
	}, nil
}

// imageProcess is what a container of image runs (a docker LRP's
// instance or task): ENTRYPOINT+CMD as an argv (no shell, no launcher), or
// command (the user's, a task's) under sh -c; in
// WORKDIR (default /); as USER resolved in the image's own /etc/passwd and
// /etc/group (default root, of the container's user namespace); with the
// image's ENV under env (the app's and CF's win), and HOME, when neither
// sets it, the user's home in the image's passwd (else /), as Docker does.
func imageProcess(image string, md *pando.ExecutionMetadata, command string, layers []string, env []string) (args []string, dir string, user container.User, outEnv []string, err error) {
	var meta pando.ExecutionMetadata
	if md != nil {
		meta = *md
	}
	if strings.TrimSpace(command) != "" {
		args = []string{"/bin/sh", "-c", command}
	} else {
		args = append(append([]string(nil), meta.Entrypoint...), meta.Cmd...)
		if len(args) == 0 || args[0] == "" {
			return nil, "", user, nil, pando.Errorf(pando.EInvalid, "image %s has no ENTRYPOINT or CMD and the app no start command", image)
		}
	}
	dir = meta.Workdir
	if dir == "" {
		dir = "/"
	}
	if !filepath.IsAbs(dir) {
		dir = "/" + dir // Docker resolves a relative WORKDIR against /
	}
	user, err = imageUser(meta.User, layers)
	if err != nil {
		return nil, "", user, nil, fmt.Errorf("image %s: %w", image, err)
	}
	e := newEnv()
	for _, kv := range meta.Env {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" && !strings.ContainsRune(kv, 0) {
			e.Set(k, v)
		}
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		e.Set(k, v)
	}
	if _, ok := e.Get("HOME"); !ok {
		// As Docker: the user's home in the image's passwd, else /.
		home, err := imageHome(user.UID, layers)
		if err != nil {
			return nil, "", user, nil, fmt.Errorf("image %s: %w", image, err)
		}
		e.Set("HOME", home)
	}
	return args, dir, user, e.List(), nil
}

// imageHome is uid's home directory in the image's /etc/passwd, or "/".
func imageHome(uid uint32, layers []string) (string, error) {
	data, err := readImageFile(layers, "etc/passwd")
	if err != nil {
		return "", err
	}
	id := strconv.FormatUint(uint64(uid), 10)
	for _, line := range splitLines(data) {
		if f := strings.Split(line, ":"); len(f) >= 6 && f[2] == id && filepath.IsAbs(f[5]) {
			return f[5], nil
		}
	}
	return "/", nil
}

// imageUser resolves an image's USER ("", "uid", "uid:gid", "name",
// "name:group", or a mix) as Docker does: a name through the image's
// /etc/passwd or /etc/group, a uid alone with its passwd entry's group (0
// without one), empty as root.
func imageUser(spec string, layers []string) (container.User, error) {
	if spec == "" {
		return container.User{}, nil
	}
	name, group, hasGroup := strings.Cut(spec, ":")
	var passwd []string
	lookupPasswd := func() ([]string, error) {
		if passwd == nil {
			data, err := readImageFile(layers, "etc/passwd")
			if err != nil {
				return nil, err
			}
			passwd = splitLines(data)
		}
		return passwd, nil
	}
	var u container.User
	if id, err := strconv.ParseUint(name, 10, 32); err == nil {
		u.UID = uint32(id)
		if !hasGroup {
			entries, err := lookupPasswd()
			if err != nil {
				return u, err
			}
			for _, f := range entries {
				p := strings.Split(f, ":")
				if len(p) >= 4 && p[2] == name {
					if g, err := strconv.ParseUint(p[3], 10, 32); err == nil {
						u.GID = uint32(g)
					}
					break
				}
			}
		}
	} else {
		entries, err := lookupPasswd()
		if err != nil {
			return u, err
		}
		found := false
		for _, f := range entries {
			p := strings.Split(f, ":")
			if len(p) >= 4 && p[0] == name {
				uid, err1 := strconv.ParseUint(p[2], 10, 32)
				gid, err2 := strconv.ParseUint(p[3], 10, 32)
				if err1 == nil && err2 == nil {
					u.UID, u.GID, found = uint32(uid), uint32(gid), true
					break
				}
			}
		}
		if !found {
			return u, pando.Errorf(pando.EInvalid, "user %q is not in the image's /etc/passwd", name)
		}
	}
	if !hasGroup {
		return u, nil
	}
	if id, err := strconv.ParseUint(group, 10, 32); err == nil {
		u.GID = uint32(id)
		return u, nil
	}
	data, err := readImageFile(layers, "etc/group")
	if err != nil {
		return u, err
	}
	for _, f := range splitLines(data) {
		p := strings.Split(f, ":")
		if len(p) >= 3 && p[0] == group {
			if gid, err := strconv.ParseUint(p[2], 10, 32); err == nil {
				u.GID = uint32(gid)
				return u, nil
			}
		}
	}
	return u, pando.Errorf(pando.EInvalid, "group %q is not in the image's /etc/group", group)
}

func splitLines(data string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(data))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

// readImageFile reads rel (e.g. "etc/passwd") as the merged image sees it:
// from the highest layer that has it, unless a whiteout or an opaque
// directory on the way hides the lower ones. Symlinks are not followed (a
// layer's /etc/passwd might point at the host's files): a symlink or a
// missing file reads as empty.
func readImageFile(layers []string, rel string) (string, error) {
	parts := strings.Split(rel, "/")
	for k := len(layers) - 1; k >= 0; k-- {
		hidden := false
		p := layers[k]
		for n, part := range parts {
			p = filepath.Join(p, part)
			fi, err := os.Lstat(p)
			if errors.Is(err, os.ErrNotExist) {
				break // not in this layer: look below
			}
			if err != nil {
				return "", fmt.Errorf("read image /%s: %w", rel, err)
			}
			last := n == len(parts)-1
			switch {
			case isWhiteout(fi):
				return "", nil
			case last && fi.Mode().IsRegular():
				return readNoFollow(p)
			case last || !fi.IsDir():
				return "", nil // a symlink or something odd: not followed
			case isOpaque(p):
				hidden = true
			}
		}
		if hidden {
			// An opaque directory on the way, without the file below it.
			return "", nil
		}
	}
	return "", nil
}

func isWhiteout(fi os.FileInfo) bool {
	if fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	st, ok := fi.Sys().(*unix.Stat_t)
	return !ok || st.Rdev == 0
}

func isOpaque(dir string) bool {
	buf := make([]byte, 4)
	n, err := unix.Lgetxattr(dir, "trusted.overlay.opaque", buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

func readNoFollow(p string) (string, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return "", fmt.Errorf("read image file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxImageEtcFile))
	if err != nil {
		return "", fmt.Errorf("read image file: %w", err)
	}
	return string(data), nil
}
