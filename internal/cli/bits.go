package cli

import (
	"archive/zip"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pandoplatform/pando/internal/cli/api"
)

// Bounds on what push uploads.
const (
	maxAppBytes = 2 << 30 // total size of an app's files
	maxAppFiles = 200_000
	maxIgnore   = 1 << 20 // size of .cfignore
)

// defaultIgnores are always left out of the upload (the cf CLI's list plus
// Pando's .cf directory).
var defaultIgnores = []string{".cfignore", "/manifest.yml", ".gitignore", ".git", ".hg", ".svn", "_darcs", ".DS_Store", ".cf"}

// appFile is one file of the app being pushed.
type appFile struct {
	rel     string // slash-separated path inside the app
	mode    fs.FileMode
	size    int64
	sha1    string
	symlink string // link target, for symlinks
	modTime time.Time
	open    func() (io.ReadCloser, error)
}

func (f appFile) modeString() string { return strconv.FormatUint(uint64(f.mode.Perm()), 8) }

func (f appFile) resource() api.Resource {
	var r api.Resource
	r.Checksum.Value = f.sha1
	r.SizeInBytes = f.size
	r.Path = f.rel
	r.Mode = f.modeString()
	return r
}

// ignoreRule is one .cfignore line, compiled.
type ignoreRule struct {
	re      *regexp.Regexp
	negate  bool
	dirOnly bool
}

// ignorer applies gitignore-style rules: the last matching rule wins, "!"
// re-includes, a trailing "/" matches directories only, a pattern with a
// "/" is relative to the app root, "*" and "?" stay within one path
// segment and "**" spans segments.
type ignorer struct{ rules []ignoreRule }

func newIgnorer(lines []string) (*ignorer, error) {
	ig := &ignorer{}
	for _, line := range lines {
		line = strings.TrimRight(line, " \t\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var r ignoreRule
		if strings.HasPrefix(line, "!") {
			r.negate, line = true, line[1:]
		}
		if strings.HasSuffix(line, "/") {
			r.dirOnly, line = true, strings.TrimRight(line, "/")
		}
		anchored := strings.Contains(line, "/")
		line = strings.TrimPrefix(line, "/")
		if line == "" {
			continue
		}
		body, err := globToRegexp(line)
		if err != nil {
			return nil, fmt.Errorf(".cfignore pattern %q: %w", line, err)
		}
		prefix := "^(?:.*/)?"
		if anchored {
			prefix = "^"
		}
		re, err := regexp.Compile(prefix + body + "$")
		if err != nil {
			return nil, fmt.Errorf(".cfignore pattern %q: %w", line, err)
		}
		r.re = re
		ig.rules = append(ig.rules, r)
	}
	return ig, nil
}

func globToRegexp(p string) (string, error) {
	var sb strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch c {
		case '*':
			if i+1 < len(p) && p[i+1] == '*' {
				i++
				if i+1 < len(p) && p[i+1] == '/' {
					i++
					sb.WriteString("(?:.*/)?")
				} else {
					sb.WriteString(".*")
				}
			} else {
				sb.WriteString("[^/]*")
			}
		case '?':
			sb.WriteString("[^/]")
		case '[':
			end := strings.IndexByte(p[i+1:], ']')
			if end < 0 {
				sb.WriteString(`\[`)
				continue
			}
			class := p[i+1 : i+1+end]
			i += end + 1
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			if _, err := regexp.Compile("[" + class + "]"); err != nil {
				return "", err
			}
			sb.WriteString("[" + class + "]")
		case '\\':
			if i+1 < len(p) {
				i++
				sb.WriteString(regexp.QuoteMeta(string(p[i])))
			}
		default:
			sb.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return sb.String(), nil
}

func (ig *ignorer) ignored(rel string, isDir bool) bool {
	out := false
	for _, r := range ig.rules {
		if r.dirOnly && !isDir {
			continue
		}
		if r.re.MatchString(rel) {
			out = !r.negate
		}
	}
	return out
}

// collectFiles lists the files of the app at root: a directory (honouring
// .cfignore) or a .zip/.jar/.war archive.
func collectFiles(root string) ([]appFile, error) {
	fi, err := os.Stat(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("app path %s does not exist: give the app's directory, .jar or .zip with -p (or path: in the manifest)", root)
	}
	if err != nil {
		return nil, fmt.Errorf("app path: %w", err)
	}
	if !fi.IsDir() {
		switch strings.ToLower(filepath.Ext(root)) {
		case ".zip", ".jar", ".war":
			return archiveFiles(root)
		}
		return nil, fmt.Errorf("app path %s must be a directory or a .zip, .jar or .war file", root)
	}
	lines := append([]string(nil), defaultIgnores...)
	if b, err := readBounded(filepath.Join(root, ".cfignore"), maxIgnore); err == nil {
		lines = append(lines, strings.Split(string(b), "\n")...)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	ig, err := newIgnorer(lines)
	if err != nil {
		return nil, err
	}
	var files []appFile
	var total int64
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if ig.ignored(rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if len(files) >= maxAppFiles {
			return fmt.Errorf("more than %d files", maxAppFiles)
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			files = append(files, appFile{rel: rel, mode: info.Mode(), symlink: target, modTime: info.ModTime()})
		case info.Mode().IsRegular():
			total += info.Size()
			if total > maxAppBytes {
				return fmt.Errorf("app is larger than %d bytes", int64(maxAppBytes))
			}
			sum, err := sha1File(p)
			if err != nil {
				return err
			}
			abs := p
			files = append(files, appFile{
				rel: rel, mode: info.Mode().Perm(), size: info.Size(), sha1: sum, modTime: info.ModTime(),
				open: func() (io.ReadCloser, error) { return os.Open(abs) },
			})
		}
		// Sockets, devices and pipes are not part of an app.
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read app files in %s: %w", root, err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	return files, nil
}

// archiveFiles lists the regular files of a zip archive.
func archiveFiles(p string) ([]appFile, error) {
	zr, err := zip.OpenReader(p)
	if errors.Is(err, zip.ErrFormat) {
		return nil, fmt.Errorf("app path %s is not a zip file (%w): a .zip, .jar or .war must be one; give the app's directory otherwise", p, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	defer zr.Close()
	var files []appFile
	var total int64
	for _, zf := range zr.File {
		name := zf.Name
		if !fs.ValidPath(strings.TrimSuffix(name, "/")) || strings.Contains(name, `\`) {
			return nil, fmt.Errorf("%s: unsafe entry name %q", p, name)
		}
		if zf.FileInfo().IsDir() || !zf.Mode().IsRegular() {
			continue
		}
		total += int64(zf.UncompressedSize64)
		if total > maxAppBytes || len(files) >= maxAppFiles {
			return nil, fmt.Errorf("%s: archive too large", p)
		}
		rc, err := zf.Open()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		h := sha1.New()
		n, err := io.Copy(h, io.LimitReader(rc, maxAppBytes))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		mode := zf.Mode().Perm()
		if mode == 0 {
			mode = 0o644
		}
		archive, entry := p, name
		files = append(files, appFile{
			rel: name, mode: mode, size: n, sha1: hex.EncodeToString(h.Sum(nil)), modTime: zf.Modified,
			open: func() (io.ReadCloser, error) { return openZipEntry(archive, entry) },
		})
	}
	return files, nil
}

// openZipEntry opens one entry of a zip; closing the result closes both.
func openZipEntry(archive, name string) (io.ReadCloser, error) {
	zr, err := zip.OpenReader(archive)
	if err != nil {
		return nil, err
	}
	rc, err := zr.Open(name)
	if err != nil {
		zr.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{rc, closerFunc(func() error { rc.Close(); return zr.Close() })}, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

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

func readBounded(p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, limit)
	}
	return b, nil
}

// writeZip writes files into a zip at dst, keeping their unix modes.
func writeZip(dst string, files []appFile) error {
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(out)
	for _, f := range files {
		// Keep the files' times: static servers, make and caches use them.
		h := &zip.FileHeader{Name: f.rel, Method: zip.Deflate, Modified: f.modTime}
		if f.symlink != "" {
			h.Method = zip.Store
			h.SetMode(fs.ModeSymlink | 0o777)
			w, err := zw.CreateHeader(h)
			if err == nil {
				_, err = io.WriteString(w, f.symlink)
			}
			if err != nil {
				out.Close()
				return fmt.Errorf("zip %s: %w", f.rel, err)
			}
			continue
		}
		h.SetMode(f.mode.Perm())
		w, err := zw.CreateHeader(h)
		if err != nil {
			out.Close()
			return fmt.Errorf("zip %s: %w", f.rel, err)
		}
		if err := copyFile(w, f); err != nil {
			out.Close()
			return fmt.Errorf("zip %s: %w", f.rel, err)
		}
	}
	if err := zw.Close(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func copyFile(w io.Writer, f appFile) error {
	r, err := f.open()
	if err != nil {
		return err
	}
	defer r.Close()
	n, err := io.Copy(w, io.LimitReader(r, f.size+1))
	if err != nil {
		return err
	}
	if n != f.size {
		return fmt.Errorf("file changed while pushing (size %d, now %d)", f.size, n)
	}
	return nil
}
