package stackprobe

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"github.com/pandoplatform/pando/internal/atomicfile"
)

// keyFormat changes when what a probe key covers does: old answers are
// then asked again.
const keyFormat = "pando-probe-key/1"

// probeKey identifies what a host command runs, so that its answer can be
// kept until that changes: the command, the PATH and the uid it runs
// with, and the identity (device, inode, size, mtime, ctime, mode) of the
// binary bin resolves to, of a script's interpreter, and of the files a
// runtime reads its version from besides (depFiles). "" when the binary
// cannot be identified: it is asked every time.
func probeKey(path, bin, name string, args []string) string {
	resolved, err := filepath.EvalSymlinks(bin)
	if err != nil {
		return ""
	}
	id, ok := fileIdentity(resolved)
	if !ok {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\x00uid=%d\x00path=%s\x00args=%q\x00%s\x00", keyFormat, os.Geteuid(), path, args, id)
	if interp := interpreter(resolved, path); interp != "" {
		b.WriteString("interpreter " + identityOrMissing(interp) + "\x00")
	}
	for _, p := range depFiles(name, resolved) {
		b.WriteString(identityOrMissing(p) + "\x00")
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

// fileIdentity says which file is at path, and which version of it: a
// replaced or rewritten file (a package upgrade, an alternative switched)
// has another identity.
func fileIdentity(path string) (string, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", false
	}
	return fmt.Sprintf("%s dev=%d ino=%d size=%d mtime=%d.%d ctime=%d.%d mode=%o", path, st.Dev, st.Ino, st.Size,
		st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec, fi.Mode()), true
}

func identityOrMissing(path string) string {
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		path = resolved
	}
	if id, ok := fileIdentity(path); ok {
		return id
	}
	return path + " missing"
}

// interpreter is the program a script at path is run with ("#!/usr/bin/env
// node": node as found on the PATH); "" for a binary.
func interpreter(path, pathEnv string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	head := make([]byte, 256)
	n, _ := io.ReadFull(f, head)
	line, ok := bytes.CutPrefix(head[:n], []byte("#!"))
	if !ok {
		return ""
	}
	line, _, _ = bytes.Cut(line, []byte("\n"))
	fields := strings.Fields(string(line))
	if len(fields) == 0 {
		return ""
	}
	if filepath.Base(fields[0]) != "env" {
		return fields[0]
	}
	for _, f := range fields[1:] {
		if !strings.HasPrefix(f, "-") && !strings.Contains(f, "=") {
			if p := lookPath(f, pathEnv); p != "" {
				return p
			}
			return f
		}
	}
	return fields[0]
}

// maxDepFiles bounds the files a key covers besides the binary.
const maxDepFiles = 32

// depFiles are the files and directories a runtime's version comes from
// besides its binary: pip's and bundler's package directories (an
// upgrade adds and removes entries there), npm's and yarn's package.json,
// the JDK's release file, Go's VERSION.
func depFiles(name, resolved string) []string {
	prefix := filepath.Dir(filepath.Dir(resolved))
	var patterns []string
	switch name {
	case "pip":
		patterns = []string{
			filepath.Join(prefix, "lib", "python3*", "site-packages"),
			filepath.Join(prefix, "lib", "python3*", "dist-packages"),
			"/usr/lib/python3/dist-packages",
			"/usr/local/lib/python3*/dist-packages",
			"/usr/local/lib/python3*/site-packages",
		}
	case "bundler":
		patterns = []string{
			filepath.Join(prefix, "lib", "ruby", "gems", "*", "specifications"),
			"/usr/lib/ruby/gems/*/specifications",
			"/var/lib/gems/*/specifications",
			"/usr/share/rubygems-integration/all/specifications",
		}
	case "npm", "yarn":
		return []string{filepath.Join(prefix, "package.json")}
	case "java":
		return []string{filepath.Join(prefix, "release")}
	case "go":
		return []string{filepath.Join(prefix, "VERSION")}
	default:
		return nil
	}
	var out []string
	for _, p := range patterns {
		m, _ := filepath.Glob(p)
		out = append(out, m...)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	return out[:min(len(out), maxDepFiles)]
}

// storeFormat names the answers file's format: a file of another format
// (or none) is not read.
const storeFormat = "pando-stack-runtimes/1"

// Bounds on the answers file (the server's own, but read at every start).
const (
	maxStoreBytes   = 1 << 20
	maxStoreAnswers = 256
)

// store is the answers file: the host commands' answers by probe key, and
// the machine they were asked on.
type store struct {
	Format  string            `json:"format"`
	Machine string            `json:"machine"`
	Answers map[string]string `json:"answers"`
}

// machineID tells this machine from another whose data dir was copied
// here: /etc/machine-id and the host name.
func machineID() string {
	id, _ := os.ReadFile("/etc/machine-id")
	host, _ := os.Hostname()
	return strings.TrimSpace(string(id[:min(len(id), 128)])) + "/" + host
}

var validVersion = regexp.MustCompile(`^([0-9]+(\.[0-9]+)+)?$`)

// load reads the kept answers; a missing, corrupt or foreign file (another
// format, another machine's) gives none: everything is asked again.
func (c *Cache) load() map[string]string {
	if c.File == "" {
		return nil
	}
	b, err := readStore(c.File)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			c.log().Warn("stack runtimes: kept answers not read; asking the runtimes again", "file", c.File, "err", err)
		}
		return nil
	}
	var s store
	if err := json.Unmarshal(b, &s); err != nil {
		c.log().Warn("stack runtimes: kept answers not read; asking the runtimes again", "file", c.File, "err", err)
		return nil
	}
	if s.Format != storeFormat || s.Machine != machineID() || len(s.Answers) > maxStoreAnswers {
		c.log().Info("stack runtimes: kept answers are another format's or machine's; asking the runtimes again", "file", c.File)
		return nil
	}
	for k, v := range s.Answers {
		if len(k) != 2*sha256.Size || len(v) > 64 || !validVersion.MatchString(v) {
			c.log().Warn("stack runtimes: kept answers not valid; asking the runtimes again", "file", c.File)
			return nil
		}
		if v == "" { // a failure an older version kept: asked again
			delete(s.Answers, k)
		}
	}
	return s.Answers
}

func readStore(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStoreBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxStoreBytes {
		return nil, fmt.Errorf("over %d bytes", maxStoreBytes)
	}
	return b, nil
}

// save writes the answers, whole or not at all; a failure only costs
// asking again at the next start.
func (c *Cache) save(answers map[string]string) {
	if c.File == "" {
		return
	}
	b, err := json.Marshal(store{Format: storeFormat, Machine: machineID(), Answers: answers})
	if err == nil {
		err = atomicfile.WriteFile(c.File, b, 0o644)
	}
	if err != nil {
		c.log().Warn("stack runtimes: answers not kept for the next start", "file", c.File, "err", err)
	}
}
