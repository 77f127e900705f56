package runc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
	"golang.org/x/sys/unix"
)

// A bundle directory holds everything of one container:
//
//	config.json   the OCI spec
//	overlay/      upper and work dirs of the overlay; lower/N: the
//	              idmapped mount of the Nth lower layer
//	etc/          generated passwd, group (not for images), hosts,
//	              resolv.conf (bound ro)
//	home/         /home/vcap, owned by the process's user
//	tmp/          /tmp, mode 1777
//	init.pid      written by runc with the container's init pid
//	runc.log      runc's own log (JSON), read when the start fails
//
// The rootfs (an empty dir for the host stack, the overlay mount for an
// image rootfs) is outside, at <RunDir>/rootfs/<hash>/<id>/root: runc
// mounts it from inside the container's user namespace, as the container's
// unprivileged root, which cannot pass through a private data dir. <id> is
// the container root's and mode 0700, so other host users cannot look in.
//
// With a Spec.Volume, the writable ones (overlay/upper and work, home/,
// tmp/) are in <volume>/container instead, under the volume's limit.
type bundle struct {
	dir     string
	rootfs  string
	rw      string // holds overlay/, home/ and tmp/
	overlay bool
	image   bool // an OCI image's layers: its own /etc/passwd, no /home/vcap
	created bool // this call created dir
}

func (d bundle) path(elem ...string) string {
	return filepath.Join(append([]string{d.dir}, elem...)...)
}

// writable is the path of a directory the container writes to.
func (d bundle) writable(elem ...string) string {
	return filepath.Join(append([]string{d.rw}, elem...)...)
}

// hostStack is what the "host" stack takes from the host, read-only. A path
// that is a symlink on the host (Debian 12's /bin -> usr/bin) becomes the
// same symlink in the rootfs: runc would resolve a mount onto a symlink
// inside the rootfs, not follow the host's. Debian's JREs keep their
// configuration (java.security, logging.properties) under /etc/java-N-openjdk.
var hostStack = []string{
	"/usr", "/bin", "/lib", "/lib32", "/lib64", "/libx32", "/sbin",
	"/etc/ssl", "/etc/alternatives", "/etc/ld.so.cache", "/etc/localtime",
	"/etc/java-11-openjdk", "/etc/java-17-openjdk", "/etc/java-21-openjdk", "/etc/java-25-openjdk",
}

// Bounds on files read from the host or an image rootfs.
const (
	maxEtcFile = 1 << 20
)

// prepare lays out the bundle directory and returns the mounts the stack
// needs (before the standard and caller mounts).
func (b *Backend) prepare(spec container.Spec, uid, gid uint32, ids *idLease, userns string) (bundle, []stackMount, error) {
	d := bundle{dir: filepath.Join(b.bundles, spec.ID), rootfs: filepath.Join(b.rootfsDir, spec.ID, "root"),
		overlay: spec.RootFS != "" || len(spec.Layers) > 0, image: len(spec.Layers) > 0}
	d.rw = d.dir
	if spec.Volume != "" {
		d.rw = filepath.Join(spec.Volume, "container")
	}
	// The container's root, as the host sees it, owns the skeleton a
	// container needs to write into (mount points, /tmp).
	root := int(ids.host(0))
	if err := os.Mkdir(d.dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return d, nil, pando.Errorf(pando.EConflict, "container %s: bundle %s is left from an earlier container; run Cleanup", spec.ID, d.dir)
		}
		return d, nil, fmt.Errorf("create bundle: %w", err)
	}
	d.created = true
	if err := os.Mkdir(filepath.Dir(d.rootfs), 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return d, nil, pando.Errorf(pando.EConflict, "container %s: rootfs %s is left from an earlier container; run Cleanup", spec.ID, d.rootfs)
		}
		return d, nil, fmt.Errorf("create rootfs: %w", err)
	}
	if err := os.Chown(filepath.Dir(d.rootfs), root, root); err != nil {
		return d, nil, fmt.Errorf("create rootfs: %w", err)
	}
	if err := os.Mkdir(d.rootfs, 0o755); err != nil {
		return d, nil, fmt.Errorf("create rootfs: %w", err)
	}
	if err := os.Mkdir(d.path("etc"), 0o755); err != nil {
		return d, nil, fmt.Errorf("create bundle: %w", err)
	}
	if d.rw != d.dir {
		if err := os.Mkdir(d.rw, 0o755); err != nil {
			return d, nil, fmt.Errorf("create container dirs on volume: %w", err)
		}
	}
	for _, sub := range []string{"home", "tmp"} {
		if err := os.Mkdir(d.writable(sub), 0o755); err != nil {
			return d, nil, fmt.Errorf("create bundle: %w", err)
		}
	}
	if err := os.Chown(d.writable("home"), int(ids.host(uid)), int(ids.host(gid))); err != nil {
		return d, nil, fmt.Errorf("create home: %w", err)
	}
	// Explicit chmod: Mkdir's mode passes through the umask.
	if err := os.Chmod(d.writable("tmp"), os.ModePerm|os.ModeSticky); err != nil {
		return d, nil, fmt.Errorf("create tmp: %w", err)
	}
	if err := os.Chown(d.writable("tmp"), root, root); err != nil {
		return d, nil, fmt.Errorf("create tmp: %w", err)
	}
	if err := writeEtc(d, spec, root); err != nil {
		return d, nil, err
	}
	if d.overlay {
		lowers := spec.Layers
		if !d.image {
			lowers = []string{spec.RootFS}
		}
		if err := mountOverlay(b.log, d, lowers, root, userns); err != nil {
			return d, nil, err
		}
		return d, nil, nil
	}
	var mounts []stackMount
	for _, p := range hostStack {
		fi, err := os.Lstat(p)
		if err != nil {
			continue // optional on this host (e.g. /lib64 on arm64)
		}
		dst := filepath.Join(d.rootfs, p)
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return d, nil, fmt.Errorf("host stack %s: %w", p, err)
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return d, nil, fmt.Errorf("host stack %s: %w", p, err)
			}
			if err := os.Symlink(target, dst); err != nil {
				return d, nil, fmt.Errorf("host stack %s: %w", p, err)
			}
			continue
		}
		mounts = append(mounts, stackMount{source: p, dest: p})
	}
	if err := chownTree(context.Background(), d.rootfs, root, root); err != nil {
		return d, nil, fmt.Errorf("create rootfs: %w", err)
	}
	return d, mounts, nil
}

type stackMount struct{ source, dest string }

// maxOverlayOptions is what the kernel takes as mount options (a page).
const maxOverlayOptions = 4095

// mountOverlay mounts the lower layers (lowest first) with a writable layer
// at d.rootfs. Each lower layer is an idmapped mount through the
// container's user namespace, so the image's ids are the container's (its
// root owns the image's root files, and root inside is the id block's
// base on the host); a filesystem without idmapped mounts is used as it is
// (the image's files then appear owned by nobody). The upper dir's root is
// the container root's, so "/" is its own inside.
func mountOverlay(log *slog.Logger, d bundle, lowers []string, root int, userns string) error {
	upper, work := d.writable("overlay", "upper"), d.writable("overlay", "work")
	for _, p := range []string{upper, work} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("create overlay dirs: %w", err)
		}
	}
	if err := os.Chown(upper, root, root); err != nil {
		return fmt.Errorf("create overlay dirs: %w", err)
	}
	for _, lower := range lowers {
		fi, err := os.Stat(lower)
		if err != nil || !fi.IsDir() {
			return pando.Errorf(pando.EInvalid, "rootfs layer %s is not a directory", lower)
		}
	}
	// overlayfs lists lower dirs top first.
	mount := func(dirs []string) error {
		top := make([]string, len(dirs))
		for k, dir := range dirs {
			top[len(dirs)-1-k] = dir
		}
		opts := "lowerdir=" + strings.Join(top, ":") + ",upperdir=" + upper + ",workdir=" + work
		if len(opts) > maxOverlayOptions {
			return pando.Errorf(pando.EInvalid, "%d image layers make overlay options of %d bytes, over the kernel's %d", len(dirs), len(opts), maxOverlayOptions)
		}
		return unix.Mount("overlay", d.rootfs, "overlay", unix.MS_NODEV, opts)
	}
	mapped, err := idmapLayers(d, lowers, userns)
	if err == nil {
		err = mount(mapped)
	}
	if err != nil {
		for _, m := range mapped {
			_ = unix.Unmount(m, unix.MNT_DETACH)
		}
		if pando.ErrorKindOf(err) == pando.EInvalid {
			return err
		}
		log.Warn("image rootfs without id mapping: its files appear owned by nobody", "layers", lowers, "error", err)
		if err := mount(lowers); err != nil {
			return fmt.Errorf("mount overlay on %s: %w", strings.Join(lowers, ", "), err)
		}
	}
	return nil
}

// idmapLayers mounts each of lowers idmapped under d's overlay/lower and
// returns the mount points; on error, those mounted so far.
func idmapLayers(d bundle, lowers []string, userns string) ([]string, error) {
	var mapped []string
	for k, lower := range lowers {
		dst := d.path("overlay", "lower", strconv.Itoa(k))
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return mapped, fmt.Errorf("create overlay dirs: %w", err)
		}
		if err := idmappedMount(lower, dst, userns); err != nil {
			return mapped, err
		}
		mapped = append(mapped, dst)
	}
	return mapped, nil
}

// idmappedMount mounts src read-only at dst with the ids of the user
// namespace at userns: a file src's uid N owns appears owned by the host
// uid that N maps to.
func idmappedMount(src, dst, userns string) error {
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("clone mount of %s: %w", src, err)
	}
	defer unix.Close(tree)
	ns, err := unix.Open(userns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open user namespace: %w", err)
	}
	defer unix.Close(ns)
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_RDONLY, Userns_fd: uint64(ns)}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, attr); err != nil {
		return fmt.Errorf("idmap mount of %s: %w", src, err)
	}
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount %s at %s: %w", src, dst, err)
	}
	return nil
}

// writeEtc generates the /etc files every container gets, owned by the
// container's root. With a RootFS, its passwd and group are kept and vcap
// is added when missing; an image (Layers) keeps its own passwd and group
// untouched and gets only hosts and resolv.conf.
func writeEtc(d bundle, spec container.Spec, root int) error {
	resolv, err := readBounded("/etc/resolv.conf")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read host resolv.conf: %w", err)
	}
	hosts := "127.0.0.1\tlocalhost " + hostname(spec.ID) + "\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	files := map[string]string{"hosts": hosts, "resolv.conf": resolv}
	if d.image {
		return writeFiles(d, root, files)
	}
	files["passwd"] = "root:x:0:0:root:/root:/bin/sh\nvcap:x:2000:2000::/home/vcap:/bin/bash\n"
	files["group"] = "root:x:0:\nvcap:x:2000:\n"
	if spec.RootFS != "" {
		imgPasswd, err := readInRoot(spec.RootFS, "etc/passwd")
		if err != nil {
			return err
		}
		imgGroup, err := readInRoot(spec.RootFS, "etc/group")
		if err != nil {
			return err
		}
		files["passwd"] = mergeEntries(imgPasswd, []string{"root:x:0:0:root:/root:/bin/sh", "vcap:x:2000:2000::/home/vcap:/bin/sh"})
		files["group"] = mergeEntries(imgGroup, []string{"root:x:0:", "vcap:x:2000:"})
	}
	return writeFiles(d, root, files)
}

// etcFiles are the /etc files a container may get from its bundle, in
// mount order.
var etcFiles = []string{"passwd", "group", "hosts", "resolv.conf"}

func writeFiles(d bundle, root int, files map[string]string) error {
	for name, content := range files {
		if err := os.WriteFile(d.path("etc", name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("write /etc/%s: %w", name, err)
		}
		if err := os.Chown(d.path("etc", name), root, root); err != nil {
			return fmt.Errorf("write /etc/%s: %w", name, err)
		}
	}
	return nil
}

// readInRoot reads a file of an image rootfs without following symlinks out
// of it (an image's /etc/passwd may point at the host's /etc/shadow).
func readInRoot(root, rel string) (string, error) {
	rootFd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("open rootfs %s: %w", root, err)
	}
	defer unix.Close(rootFd)
	fd, err := unix.Openat2(rootFd, rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	if err != nil {
		if err == unix.ENOENT {
			return "", nil
		}
		return "", fmt.Errorf("open %s in rootfs: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return "", nil
	}
	data, err := io.ReadAll(io.LimitReader(f, maxEtcFile))
	if err != nil {
		return "", fmt.Errorf("read %s in rootfs: %w", rel, err)
	}
	return string(data), nil
}

func readBounded(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxEtcFile))
	return string(data), err
}

// mergeEntries appends each of add whose name (first field) or id (third
// field) is not already in the colon-separated database.
func mergeEntries(db string, add []string) string {
	names, ids := map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(db, "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 3 {
			names[f[0]], ids[f[2]] = true, true
		}
	}
	out := db
	if out != "" && !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	for _, e := range add {
		f := strings.Split(e, ":")
		if !names[f[0]] && !ids[f[2]] {
			out += e + "\n"
		}
	}
	return out
}

func hostname(id string) string {
	if len(id) > 63 {
		return id[:63]
	}
	return id
}

// sortMounts orders caller mounts so a parent is mounted before what goes
// below it; ties keep the caller's order.
func sortMounts(ms []container.Mount) []container.Mount {
	out := append([]container.Mount(nil), ms...)
	sort.SliceStable(out, func(i, j int) bool {
		return depth(out[i].Destination) < depth(out[j].Destination)
	})
	return out
}

func depth(p string) int { return strings.Count(filepath.Clean(p), "/") }

// makeMountPoints creates, as host root, the destinations of the bind
// mounts that land directly in an image rootfs. runc creates missing
// mount points from inside the container's user namespace, where the
// image's own (host root owned) directories are not writable. Symlinks
// resolve inside the rootfs, as runc resolves them.
func makeMountPoints(rootfs string, mounts []specs.Mount) error {
	rootFd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	defer unix.Close(rootFd)
	for i, m := range mounts {
		if m.Type != "bind" || underAny(m.Destination, mounts[:i]) {
			continue
		}
		fi, err := os.Stat(m.Source)
		if err != nil {
			return fmt.Errorf("mount source %s: %w", m.Source, err)
		}
		if err := makeInRoot(rootFd, m.Destination, fi.IsDir()); err != nil {
			return fmt.Errorf("mount point %s: %w", m.Destination, err)
		}
	}
	return nil
}

// underAny reports whether dest is below the destination of one of ms.
func underAny(dest string, ms []specs.Mount) bool {
	dest = filepath.Clean(dest)
	for _, m := range ms {
		if d := filepath.Clean(m.Destination); d != "/" && strings.HasPrefix(dest, d+"/") {
			return true
		}
	}
	return false
}

// makeInRoot creates rel (all its parents as directories; itself as a
// directory or an empty file) below rootFd unless it exists.
func makeInRoot(rootFd int, rel string, dir bool) error {
	how := func(flags uint64, mode uint64) *unix.OpenHow {
		return &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Mode: mode,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV}
	}
	parts := strings.Split(strings.Trim(filepath.Clean(rel), "/"), "/")
	cur, err := unix.Openat2(rootFd, ".", how(unix.O_PATH|unix.O_DIRECTORY, 0))
	if err != nil {
		return err
	}
	defer func() { unix.Close(cur) }()
	for i, name := range parts {
		p := strings.Join(parts[:i+1], "/")
		if i == len(parts)-1 && !dir {
			fd, err := unix.Openat2(rootFd, p, how(unix.O_CREAT|unix.O_RDONLY|unix.O_NONBLOCK, 0o644))
			if err != nil {
				return err
			}
			return unix.Close(fd)
		}
		next, err := unix.Openat2(rootFd, p, how(unix.O_PATH|unix.O_DIRECTORY, 0))
		if err == unix.ENOENT {
			if err := unix.Mkdirat(cur, name, 0o755); err != nil && err != unix.EEXIST {
				return err
			}
			next, err = unix.Openat2(rootFd, p, how(unix.O_PATH|unix.O_DIRECTORY, 0))
		}
		if err != nil {
			return err
		}
		unix.Close(cur)
		cur = next
	}
	return nil
}
