// Package stackprobe finds which language runtimes a stack offers (node,
// npm, yarn, python3, pip, ruby, bundler, java, go) and their versions, for
// `pando stacks` and GET /v3/stacks. A root filesystem stack is read, never
// run: its Debian package database (/var/lib/dpkg/status) and version files
// (npm's package.json, /usr/local/go/VERSION). The host stack is the
// server's own machine: its runtimes are asked for their versions, as the
// buildpacks will find them there. Results are cached per stack, and the
// host's answers, kept in a file under what identifies each runtime's
// files, outlive a restart (Cache).
package stackprobe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pandoplatform/pando/internal/lowprio"
)

// Runtime is a language runtime a stack offers.
type Runtime struct {
	Name    string `json:"name"`    // node, npm, yarn, python3, pip, ruby, bundler, java, go
	Version string `json:"version"` // upstream version, e.g. 18.19.0
}

// order is the order runtimes are listed in.
var order = []string{"node", "npm", "yarn", "python3", "pip", "ruby", "bundler", "java", "go"}

// Bounds on what is read from a rootfs, whose files the operator (or an
// image) supplied.
const (
	maxStatusBytes  = 64 << 20
	maxVersionBytes = 1 << 20
)

// RootFS reads the runtimes of the root filesystem at dir from its files.
func RootFS(dir string) ([]Runtime, error) {
	found := map[string]string{}
	if err := readDpkgStatus(filepath.Join(dir, "var", "lib", "dpkg", "status"), found); err != nil {
		return nil, err
	}
	// npm bundled with node (NodeSource) has no package of its own.
	for _, p := range []string{"usr/lib/node_modules/npm/package.json", "usr/share/nodejs/npm/package.json"} {
		if v := npmVersion(filepath.Join(dir, p)); v != "" && found["npm"] == "" {
			found["npm"] = v
		}
	}
	if v := goVersion(filepath.Join(dir, "usr", "local", "go", "VERSION")); v != "" {
		found["go"] = v
	}
	return sorted(found), nil
}

// readDpkgStatus adds the runtimes installed per a dpkg status file; a
// missing file (a rootfs not built from Debian packages) adds none.
func readDpkgStatus(path string, found map[string]string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read package database: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, maxStatusBytes))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var pkg, status, version string
	flush := func() {
		if pkg != "" && strings.HasSuffix(status, " installed") {
			addPackage(found, pkg, version)
		}
		pkg, status, version = "", "", ""
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			flush()
		case strings.HasPrefix(line, "Package: "):
			pkg = strings.TrimSpace(line[len("Package: "):])
		case strings.HasPrefix(line, "Status: "):
			status = strings.TrimSpace(line[len("Status: "):])
		case strings.HasPrefix(line, "Version: "):
			version = strings.TrimSpace(line[len("Version: "):])
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read package database %s: %w", path, err)
	}
	return nil
}

var (
	rubyPkg = regexp.MustCompile(`^ruby([0-9]+\.[0-9]+)$`)
	jrePkg  = regexp.MustCompile(`^openjdk-([0-9]+)-(jre|jdk)(-headless)?$`)
	goPkg   = regexp.MustCompile(`^golang-([0-9]+\.[0-9]+)-go$`)
)

// addPackage maps a Debian package to the runtime it provides.
func addPackage(found map[string]string, pkg, version string) {
	v := upstream(version)
	if v == "" {
		return
	}
	name := ""
	switch {
	case pkg == "nodejs":
		name = "node"
	case pkg == "npm":
		name = "npm"
	case pkg == "yarnpkg" || pkg == "yarn": // Debian's, yarnpkg.com's
		name = "yarn"
	case pkg == "python3":
		name = "python3"
	case pkg == "python3-pip":
		name = "pip"
	case pkg == "ruby-bundler" || pkg == "bundler":
		name = "bundler"
	case rubyPkg.MatchString(pkg):
		name = "ruby"
	case jrePkg.MatchString(pkg):
		name = "java"
	case goPkg.MatchString(pkg):
		name = "go"
	default:
		return
	}
	if old, ok := found[name]; !ok || versionLess(old, v) {
		found[name] = v
	}
}

var leadingVersion = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*`)

// upstream turns a Debian version (1:3.1.2-7+deb12u1, 18.19.0+dfsg-6~deb12u2)
// into the upstream one (3.1.2, 18.19.0).
func upstream(debian string) string {
	if _, after, ok := strings.Cut(debian, ":"); ok {
		debian = after
	}
	return leadingVersion.FindString(debian)
}

// versionLess compares dotted numeric versions.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, _ := strconv.Atoi(as[i])
		y, _ := strconv.Atoi(bs[i])
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}

func readBounded(path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, maxVersionBytes))
	return b
}

func npmVersion(path string) string {
	var pkg struct {
		Version string `json:"version"`
	}
	if json.Unmarshal(readBounded(path), &pkg) != nil {
		return ""
	}
	return leadingVersion.FindString(pkg.Version)
}

// goVersion reads Go's VERSION file ("go1.22.5\ntime ...").
func goVersion(path string) string {
	line, _, _ := bytes.Cut(readBounded(path), []byte("\n"))
	return leadingVersion.FindString(strings.TrimPrefix(string(line), "go"))
}

func sorted(found map[string]string) []Runtime {
	out := make([]Runtime, 0, len(found))
	for _, name := range order {
		if v, ok := found[name]; ok {
			out = append(out, Runtime{Name: name, Version: v})
		}
	}
	return out
}

// hostCommands are how each runtime tells its version on the host.
var hostCommands = []struct {
	name string
	args []string
}{
	{"node", []string{"node", "--version"}},
	{"npm", []string{"npm", "--version"}},
	{"yarn", []string{"yarn", "--version"}},
	{"yarn", []string{"yarnpkg", "--version"}}, // Debian's name
	{"python3", []string{"python3", "-I", "--version"}},
	{"pip", []string{"python3", "-I", "-m", "pip", "--version"}},
	{"ruby", []string{"ruby", "--version"}},
	{"bundler", []string{"bundle", "--version"}},
	{"java", []string{"java", "-version"}},
	{"go", []string{"go", "version"}},
}

var anyVersion = regexp.MustCompile(`[0-9]+(\.[0-9]+)+`)

// Host asks the runtimes found in the directories of path (a PATH value)
// for their versions, all at once, each within timeout, at the lowest CPU
// priority (lowprio). They run with a clean environment, from "/", with
// no home, and as nobody when the server is root: nothing another local
// user could plant (a pip module in the working directory, an .npmrc) is
// read. Cache keeps the answers and asks again only what changed.
func Host(ctx context.Context, path string, timeout time.Duration) []Runtime {
	versions := make([]string, len(hostCommands))
	var wg sync.WaitGroup
	for i, c := range hostCommands {
		bin := lookPath(c.args[0], path)
		if bin == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			versions[i] = runHost(ctx, path, bin, c.args[1:], timeout).version
		}()
	}
	wg.Wait()
	return hostRuntimes(versions)
}

// hostRuntimes lists the runtimes of the versions hostCommands answered
// (one per command, "" for none).
func hostRuntimes(versions []string) []Runtime {
	found := map[string]string{}
	for i, v := range versions {
		if name := hostCommands[i].name; v != "" && found[name] == "" {
			found[name] = v // the first command of a name that answers
		}
	}
	return sorted(found)
}

// hostAnswer is what one host command answered.
type hostAnswer struct {
	version string // "" when it gave none
	// final says the command ended by itself (with or without a
	// version), so a version it gave holds until the command changes; an
	// answer cut short by the timeout or ctx, or a command that did not
	// start, is asked again soon (Cache's incompleteRetry).
	final bool
}

// runHost runs the runtime bin with args, as Host describes.
func runHost(ctx context.Context, path, bin string, args []string, timeout time.Duration) hostAnswer {
	// NODE_PATH: Debian's yarnpkg loads its modules from /usr/share/nodejs,
	// where Debian's node looks and a node from elsewhere does not (the
	// nodejs_buildpack runs it so too).
	env := []string{"PATH=" + path, "HOME=/nonexistent", "LANG=C", "npm_config_update_notifier=false", "NODE_PATH=/usr/share/nodejs"}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, bin, args...)
	cmd.Env, cmd.Dir, cmd.WaitDelay = env, "/", time.Second
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// At the lowest CPU priority: the probes (java, pip and bundler cost
	// over a second of CPU together) run at the server's start, when a
	// push may be starting too.
	if err := lowprio.Start(cmd); err != nil {
		return hostAnswer{}
	}
	err := cmd.Wait()
	if cctx.Err() != nil {
		return hostAnswer{} // cut short: not an answer to keep
	}
	if err != nil {
		return hostAnswer{final: true} // not usable: a python3 without pip, a broken link
	}
	b := out.Bytes()
	return hostAnswer{version: anyVersion.FindString(string(b[:min(len(b), 4096)])), final: true}
}

// nobody is the uid and gid host probes run as under root.
const nobody = 65534

// lookPath finds an executable file named name in the path's directories.
func lookPath(name, path string) string {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}
