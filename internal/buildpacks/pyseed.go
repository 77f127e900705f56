package buildpacks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The cell-wide fresh venv (pip and setuptools as ensurepip installs them)
// the python buildpack copies into an app's first install instead of
// running ensurepip. A seed directory holds venv/ and the file key, whose
// content the buildpack compares with the key it computes itself (the same
// pytool.py seedid under the stack's python, the buildpack's version and
// the venv's path): any difference and it runs ensurepip as before. A
// cell mounts its seed from a stable path (PublishPythonSeed), so it
// starts without waiting for python to say the key.
const (
	// PythonSeedVenvPath is where staging containers make an app's venv
	// (the lifecycle's build dir /tmp/app).
	PythonSeedVenvPath = "/tmp/app/.venv"
	// PythonSeedKeyFile in a seed directory holds its key.
	PythonSeedKeyFile = "key"
)

// PythonSeedReady reports whether dir holds a finished seed.
func PythonSeedReady(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, PythonSeedKeyFile))
	return err == nil
}

// HostPython is the python3 a staging container on the host stack finds
// first on its PATH (the container's default PATH order), or "" when the
// host has none.
func HostPython() string {
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		p := filepath.Join(d, "python3")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// PythonSeedKey computes the key the python buildpack computes for a
// venv at venvPath made by python: pytool.py seedid (the python's path,
// version, size and mtime, and ensurepip's wheels), run by that python.
// It runs python (a third of a second): cells compute it in the
// background, never on their way to serving.
func PythonSeedKey(ctx context.Context, python, venvPath string) (string, error) {
	tool, err := writePytool()
	if err != nil {
		return "", fmt.Errorf("python seed key: %w", err)
	}
	defer os.Remove(tool)
	out, err := exec.CommandContext(ctx, python, tool, "seedid").Output()
	if err != nil {
		return "", fmt.Errorf("python seed key: %s pytool.py seedid: %w", python, err)
	}
	id := strings.TrimSpace(string(out))
	if len(id) != 64 {
		return "", fmt.Errorf("python seed key: unexpected seedid %q", id)
	}
	v, _ := files.ReadFile("python_buildpack/VERSION")
	return fmt.Sprintf("pyseed1 %s venv=%s %s", strings.TrimSpace(string(v)), venvPath, id), nil
}

// PythonSeedDirOf is where the seed of key is kept: a directory under
// cacheDir/python-venv-seed named by the key, so servers sharing a
// machine share one seed and a changed key (another python, ensurepip
// wheels or buildpack version) gets another directory.
func PythonSeedDirOf(cacheDir, key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(cacheDir, "python-venv-seed", hex.EncodeToString(sum[:8]))
}

// PythonSeedDir is where a cell keeps the fresh venv seed of python (see
// HostPython) for venvs at venvPath: PythonSeedDirOf its PythonSeedKey.
func PythonSeedDir(ctx context.Context, cacheDir, python, venvPath string) (string, error) {
	if python == "" {
		return "", errors.New("no python3 on this host")
	}
	key, err := PythonSeedKey(ctx, python, venvPath)
	if err != nil {
		return "", err
	}
	return PythonSeedDirOf(cacheDir, key), nil
}

// WarmPythonSeed makes the fresh venv seed of key (from PythonSeedKey with
// the same python and venvPath) in dir (PythonSeedDirOf key), unless it is
// there already: python -m venv --copies with ensurepip, the scripts made
// relocatable and the paths the venv records pointing to venvPath, as the
// python buildpack makes an app's venv. It is made beside dir and renamed
// into place (a half-made seed is never offered), readable by all and
// written by no staging (cells mount it read-only). made reports whether
// this call made it.
func WarmPythonSeed(ctx context.Context, dir, key, python, venvPath string) (made bool, err error) {
	if PythonSeedReady(dir) {
		return false, nil
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return false, fmt.Errorf("warm python seed: %w", err)
	}
	work, err := os.MkdirTemp(parent, ".python-seed-")
	if err != nil {
		return false, fmt.Errorf("warm python seed: %w", err)
	}
	defer os.RemoveAll(work)
	venv := filepath.Join(work, "venv")
	if out, err := exec.CommandContext(ctx, python, "-m", "venv", "--copies", venv).CombinedOutput(); err != nil {
		return false, fmt.Errorf("warm python seed: %s -m venv: %w: %s", python, err, out)
	}
	if err := pythonSeedFinish(ctx, python, venv, venvPath); err != nil {
		return false, fmt.Errorf("warm python seed: %w", err)
	}
	if err := os.WriteFile(filepath.Join(work, PythonSeedKeyFile), []byte(key), 0o644); err != nil {
		return false, fmt.Errorf("warm python seed: %w", err)
	}
	if err := os.Chmod(work, 0o755); err != nil {
		return false, fmt.Errorf("warm python seed: %w", err)
	}
	if err := os.Rename(work, dir); err != nil {
		if PythonSeedReady(dir) {
			return false, nil // another server finished first
		}
		return false, fmt.Errorf("warm python seed: %w", err)
	}
	return true, nil
}

// PublishPythonSeed points link, the path a cell mounts into staging
// containers whatever the key, at dir, a ready seed (WarmPythonSeed; see
// publishSeed). Until its key is known a restarted cell offers what the
// link named in its last run, which the buildpack uses only if its key
// still matches.
func PublishPythonSeed(link, dir string) error {
	return publishSeed("python seed", link, dir, PythonSeedReady)
}

// RemoveOtherPythonSeeds removes the seeds of other keys beside dir older
// than an hour, which bounds the disk they take; a cell calls it once it
// made dir and published it (a seed its link named until then is not
// removed under it).
func RemoveOtherPythonSeeds(dir string) {
	removeOtherSeeds(filepath.Dir(dir), filepath.Base(dir))
}

// pythonSeedFinish does to the new venv what the buildpack's
// python_make_venv and relocate do, and points what names the venv's own
// path (activate scripts, pyvenv.cfg) to venvPath. Compiled files keep
// the path they were compiled at: python replaces it on import.
func pythonSeedFinish(ctx context.Context, python, venv, venvPath string) error {
	out, err := exec.CommandContext(ctx, python, "-c", `import sys; print("python%d.%d" % sys.version_info[:2])`).Output()
	if err != nil {
		return fmt.Errorf("%s: %w", python, err)
	}
	pyname := strings.TrimSpace(string(out))
	bin := filepath.Join(venv, "bin")
	if fi, err := os.Lstat(filepath.Join(bin, pyname)); err == nil && fi.Mode().IsRegular() {
		for _, n := range []string{"python", "python3"} {
			if n == pyname {
				continue
			}
			p := filepath.Join(bin, n)
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if err := os.Symlink(pyname, p); err != nil {
				return err
			}
		}
	}
	tool, err := writePytool()
	if err != nil {
		return err
	}
	defer os.Remove(tool)
	if out, err := exec.CommandContext(ctx, python, tool, "relocate", venv).CombinedOutput(); err != nil {
		return fmt.Errorf("pytool.py relocate: %w: %s", err, out)
	}
	entries, err := os.ReadDir(bin)
	if err != nil {
		return err
	}
	texts := []string{filepath.Join(venv, "pyvenv.cfg")}
	for _, e := range entries {
		if e.Type().IsRegular() {
			texts = append(texts, filepath.Join(bin, e.Name()))
		}
	}
	for _, p := range texts {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.IndexByte(data, 0) >= 0 || !bytes.Contains(data, []byte(venv)) {
			continue // a binary (the python copy) or nothing to change
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, bytes.ReplaceAll(data, []byte(venv), []byte(venvPath)), fi.Mode().Perm()); err != nil {
			return err
		}
	}
	// Readable by the vcap user that copies it during staging.
	return filepath.WalkDir(venv, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := fi.Mode().Perm() | 0o444
		if d.IsDir() || mode&0o100 != 0 {
			mode |= 0o111
		}
		return os.Chmod(p, mode)
	})
}

// otherSeedAge is how old another key's seed (or a leftover of a seed
// being made) must be before a new seed removes it: a server of another
// buildpack or python sharing the cache dir may still offer its seed.
const otherSeedAge = time.Hour

// removeOtherSeeds removes the entries in parent other than keep that are
// older than otherSeedAge: seeds of other keys, and what a server killed
// while making a seed left (hidden).
func removeOtherSeeds(parent, keep string) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		fi, err := e.Info()
		if e.Name() == keep || err != nil || time.Since(fi.ModTime()) < otherSeedAge {
			continue
		}
		old := filepath.Join(parent, e.Name())
		if strings.HasPrefix(e.Name(), ".") {
			_ = os.RemoveAll(old)
			continue
		}
		// Renamed first so no staging is offered a seed half removed.
		trash := filepath.Join(parent, ".old-"+e.Name())
		if os.Rename(old, trash) == nil {
			_ = os.RemoveAll(trash)
		}
	}
}

// writePytool writes the buildpack's pytool.py to a temporary file the
// caller removes.
func writePytool() (string, error) {
	src, err := files.ReadFile("python_buildpack/lib/pytool.py")
	if err != nil {
		return "", err // a build defect
	}
	f, err := os.CreateTemp("", "pando-pytool-*.py")
	if err != nil {
		return "", err
	}
	if _, err := f.Write(src); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
