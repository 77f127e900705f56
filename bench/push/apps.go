package main

import (
	"archive/zip"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pandoplatform/pando/internal/cli/api"
)

// appSpec is one sample app and how it is pushed.
type appSpec struct {
	Kind       string   `json:"kind"`
	Dir        string   `json:"-"`
	Buildpacks []string `json:"buildpacks,omitempty"`
	Command    string   `json:"command,omitempty"`
	Files      int      `json:"files"`
	Bytes      int64    `json:"bytes"`
}

const (
	appStatic = "static"
	appBinary = "binary"
	appNode   = "node"
)

func parseApps(list string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, a := range strings.Split(list, ",") {
		a = strings.TrimSpace(a)
		switch a {
		case "":
			continue
		case appStatic, appBinary, appNode:
		default:
			return nil, fmt.Errorf("unknown app %q: use static, binary and/or node", a)
		}
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no app to push")
	}
	return out, nil
}

// prepareApp writes the sample app of kind under dir.
func prepareApp(ctx context.Context, kind, dir string, reg *npmRegistry) (*appSpec, error) {
	a := &appSpec{Kind: kind, Dir: filepath.Join(dir, kind)}
	if err := os.MkdirAll(a.Dir, 0o755); err != nil {
		return nil, err
	}
	switch kind {
	case appStatic:
		// What `cf push` of a tiny site sends: a page and an empty Staticfile
		// that makes staticfile_buildpack detect it.
		page := "<!doctype html>\n<title>pando bench</title>\n<h1>Hello from a static site</h1>\n"
		if err := os.WriteFile(filepath.Join(a.Dir, "index.html"), []byte(page), 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(a.Dir, "Staticfile"), nil, 0o644); err != nil {
			return nil, err
		}
	case appBinary:
		if err := buildGoServer(ctx, filepath.Join(dir, "binary-src"), filepath.Join(a.Dir, "server")); err != nil {
			return nil, err
		}
		a.Buildpacks = []string{"binary_buildpack"}
		a.Command = "./server"
	case appNode:
		if err := prepareNodeApp(ctx, a.Dir, reg); err != nil {
			return nil, err
		}
		a.Buildpacks = []string{"nodejs_buildpack"}
	}
	files, err := collectFiles(a.Dir)
	if err != nil {
		return nil, err
	}
	a.Files = len(files)
	for _, f := range files {
		a.Bytes += f.size
	}
	return a, nil
}

const goServerSource = `package main

import (
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello from a Go binary\n"))
	})
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}
`

// buildGoServer compiles a net/http hello server (static, stripped) on the
// host, as a user of binary_buildpack does before pushing.
func buildGoServer(ctx context.Context, srcDir, out string) error {
	if err := os.MkdirAll(srcDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(srcDir, "go.mod"), []byte("module benchserver\n\ngo 1.22\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(srcDir, "main.go"), []byte(goServerSource), 0o644); err != nil {
		return err
	}
	goBin, err := findGo()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags", "-s -w", "-o", out, ".")
	cmd.Dir = srcDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOTOOLCHAIN=local", "GOPROXY=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the Go sample app: %w: %s", err, strings.TrimSpace(string(b)))
	}
	return nil
}

// findGo finds the go command: on PATH, else where Go is installed on the
// project's machines (sudo often resets PATH).
func findGo() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/local/go/bin/go"); err == nil {
		return "/usr/local/go/bin/go", nil
	}
	return "", fmt.Errorf("go command not found (put /usr/local/go/bin on PATH)")
}

// appFile is one regular file of an app directory.
type appFile struct {
	rel  string // slash-separated, relative to the app dir
	abs  string
	mode fs.FileMode
	size int64
	sha1 string
}

func (f appFile) resource() api.Resource {
	var r api.Resource
	r.Checksum.Value = f.sha1
	r.SizeInBytes = f.size
	r.Path = f.rel
	r.Mode = strconv.FormatUint(uint64(f.mode.Perm()), 8)
	return r
}

// collectFiles lists the regular files under dir with their SHA1, as the
// CLI does before resource matching. The sample apps have no links or
// ignore files.
func collectFiles(dir string) ([]appFile, error) {
	var files []appFile
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		sum, err := sha1File(p)
		if err != nil {
			return err
		}
		files = append(files, appFile{rel: filepath.ToSlash(rel), abs: p, mode: fi.Mode(), size: fi.Size(), sha1: sum})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list app files in %s: %w", dir, err)
	}
	return files, nil
}

func sha1File(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha1.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeZip writes files as a deflated zip keeping their modes, the way the
// pando CLI packages an upload.
func writeZip(w io.Writer, files []appFile) error {
	zw := zip.NewWriter(w)
	for _, f := range files {
		h := &zip.FileHeader{Name: f.rel, Method: zip.Deflate}
		h.SetMode(f.mode.Perm())
		fw, err := zw.CreateHeader(h)
		if err != nil {
			return fmt.Errorf("zip %s: %w", f.rel, err)
		}
		if err := copyExactly(fw, f); err != nil {
			return fmt.Errorf("zip %s: %w", f.rel, err)
		}
	}
	return zw.Close()
}

func copyExactly(w io.Writer, f appFile) error {
	r, err := os.Open(f.abs)
	if err != nil {
		return err
	}
	defer r.Close()
	n, err := io.Copy(w, io.LimitReader(r, f.size+1))
	if err != nil {
		return err
	}
	if n != f.size {
		return fmt.Errorf("file changed while zipping (size %d, now %d)", f.size, n)
	}
	return nil
}

// zipToTemp zips files into a new file in dir and returns its path and
// size; the caller removes it.
func zipToTemp(dir string, files []appFile) (string, int64, error) {
	tmp, err := os.CreateTemp(dir, "package-*.zip")
	if err != nil {
		return "", 0, fmt.Errorf("create package zip: %w", err)
	}
	if err := writeZip(tmp, files); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", 0, fmt.Errorf("create package zip: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return "", 0, fmt.Errorf("create package zip: %w", err)
	}
	fi, err := os.Stat(tmp.Name())
	if err != nil {
		os.Remove(tmp.Name())
		return "", 0, err
	}
	return tmp.Name(), fi.Size(), nil
}
