package buildpacks_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pandoplatform/pando/internal/lifecycle/builder"
	"github.com/pandoplatform/pando/internal/testenv"
)

func TestJava_memoryCalculator(t *testing.T) {
	t.Parallel()
	cases := []struct {
		limit, classes, opts string
		want                 string // flags, or the error's start
	}{
		{"1024m", "0", "", "-Xmx605M -Xss1M -XX:MaxMetaspaceSize=31M -XX:ReservedCodeCacheSize=128M -XX:MaxDirectMemorySize=10M"},
		{"1G", "0", "", "-Xmx605M -Xss1M -XX:MaxMetaspaceSize=31M -XX:ReservedCodeCacheSize=128M -XX:MaxDirectMemorySize=10M"},
		{"2048M", "0", "", "-Xmx1517M -Xss1M -XX:MaxMetaspaceSize=31M -XX:ReservedCodeCacheSize=240M -XX:MaxDirectMemorySize=10M"},
		{"512m", "0", "", "-Xmx279M -Xss1M -XX:MaxMetaspaceSize=31M -XX:ReservedCodeCacheSize=64M -XX:MaxDirectMemorySize=10M"},
		// 256M: 64 threads, not 250, so the heap gets about half.
		{"256m", "0", "", "-Xmx119M -Xss1M -XX:MaxMetaspaceSize=31M -XX:ReservedCodeCacheSize=32M -XX:MaxDirectMemorySize=10M"},
		{"128m", "0", "", "-Xmx39M -Xss1M -XX:MaxMetaspaceSize=31M -XX:ReservedCodeCacheSize=16M -XX:MaxDirectMemorySize=10M"},
		// A big app: 20000 classes, 35% loaded: 14M + 10000 x 5800 bytes.
		{"1024m", "20000", "", "-Xmx566M -Xss1M -XX:MaxMetaspaceSize=70M -XX:ReservedCodeCacheSize=128M -XX:MaxDirectMemorySize=10M"},
		// JAVA_OPTS sizes are kept, counted and not repeated.
		{"256m", "0", "-Xss256k -Dx='a b'", "-Xmx167M -XX:MaxMetaspaceSize=31M -XX:ReservedCodeCacheSize=32M -XX:MaxDirectMemorySize=10M"},
		{"1024m", "0", "-Xmx300m -XX:MaxMetaspaceSize=64m", "-Xss1M -XX:ReservedCodeCacheSize=128M -XX:MaxDirectMemorySize=10M"},
		{"256m", "0", "-XX:ReservedCodeCacheSize=8M -XX:MaxDirectMemorySize=1M", "-Xmx152M -Xss1M -XX:MaxMetaspaceSize=31M"},
		{"96m", "0", "", "error: MEMORY_LIMIT 96m is too small for the JVM: 32 thread stacks of 1M, metaspace 31M, code cache 16M and direct memory 10M leave 7M of heap"},
		{"1024", "0", "", "error: MEMORY_LIMIT 1024 is too small"}, // bytes
		{"lots", "0", "", "error: MEMORY_LIMIT 'lots' is not a memory size"},
		{"", "0", "", "error: MEMORY_LIMIT '' is not a memory size"},
		{"256m", "0", "-Xmx1q", "error: JAVA_OPTS has a size the memory calculator cannot read: '1q'"},
	}
	for _, c := range cases {
		cmd := exec.Command("bash", "-c", `set -eu; source java_buildpack/lib/memory.sh; java_memory_flags "$@"`, "-", c.limit, c.classes, c.opts)
		out, err := cmd.CombinedOutput()
		got := strings.TrimSpace(string(out))
		if err != nil {
			got = "error: " + got
		}
		if !strings.HasPrefix(got, c.want) || (!strings.HasPrefix(c.want, "error: ") && got != c.want) {
			t.Errorf("limit %q classes %s JAVA_OPTS %q:\n got %s\nwant %s", c.limit, c.classes, c.opts, got, c.want)
		}
	}
}

// javaTools returns the host's java, javac and jar (a JDK), which the tests
// build jars with; java is also the stack's, the app's runtime.
func javaTools(t *testing.T) (java, javac, jar string) {
	t.Helper()
	var paths [3]string
	for i, tool := range []string{"java", "javac", "jar"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			testenv.Missing(t, "no "+tool+" on PATH (apt-get install default-jdk-headless)")
		}
		paths[i] = p
	}
	return paths[0], paths[1], paths[2]
}

// helloJava answers with the JVM's version and its maximum heap.
const helloJava = `package com.example;

import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;

public class Main {
	public static void main(String[] args) throws Exception {
		HttpServer s = HttpServer.create(new InetSocketAddress("127.0.0.1", Integer.parseInt(System.getenv("PORT"))), 0);
		s.createContext("/", x -> {
			byte[] b = ("java " + Runtime.version().feature() + " heap " + Runtime.getRuntime().maxMemory()).getBytes();
			x.sendResponseHeaders(200, b.length);
			x.getResponseBody().write(b);
			x.close();
		});
		s.start();
	}
}
`

// buildJar compiles helloJava into a jar with the manifest given (the
// Main-Class line, or none) and returns the jar's bytes: once per manifest
// and test binary (fixtures), as javac is slow.
func buildJar(t *testing.T, manifest string) []byte {
	t.Helper()
	_, javac, jar := javaTools(t)
	return fixtures.get(t, "jar with manifest "+strconv.Quote(manifest), func() ([]byte, error) {
		dir, err := os.MkdirTemp("", "buildjar-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if err := os.MkdirAll(filepath.Join(dir, "src", "com", "example"), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "src", "com", "example", "Main.java"), []byte(helloJava), 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "manifest.txt"), []byte(manifest), 0o644); err != nil {
			return nil, err
		}
		for _, args := range [][]string{
			{javac, "-d", "classes", "src/com/example/Main.java"},
			{jar, "--create", "--file", "app.jar", "--manifest", "manifest.txt", "-C", "classes", "."},
		} {
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, out)
			}
		}
		return os.ReadFile(filepath.Join(dir, "app.jar"))
	})
}

func javaFeature(t *testing.T) string {
	java, _, _ := javaTools(t)
	out, err := exec.Command(java, "-version").CombinedOutput()
	if err != nil {
		t.Fatalf("java -version: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`version "(\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("java -version: %s", out)
	}
	return string(m[1])
}

// heapOf reads the heap in bytes from helloJava's answer.
func heapOf(t *testing.T, body string) int64 {
	t.Helper()
	_, after, ok := strings.Cut(body, " heap ")
	n, err := strconv.ParseInt(after, 10, 64)
	if !ok || err != nil {
		t.Fatalf("answer %q has no heap", body)
	}
	return n
}

func TestJava_unpackedJarRunsMainWithTheHeapSizedFromMemoryLimit(t *testing.T) {
	t.Parallel()
	feature := javaFeature(t)
	s := newStage(t, nil)
	// As `cf push -p app.jar` uploads it: the jar's contents.
	unzip(t, buildJar(t, "Main-Class: com.example.Main\n"), s.cfg.BuildDir)
	s.cfg.Env = append(s.cfg.Env, "MEMORY_LIMIT=256m")
	res, err := s.build(t)
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, s.out.String())
	}
	if res.BuildpackName != "java_buildpack" || res.DetectedBuildpack != "java 1.0.0" {
		t.Fatalf("result = %+v\n%s", res, s.out.String())
	}
	if want := "$HOME/.java-buildpack/start -cp $HOME/. com.example.Main"; res.StartCommand != want {
		t.Fatalf("start command %q, want %q\n%s", res.StartCommand, want, s.out.String())
	}
	for _, want := range []string{"-----> Java Main: com.example.Main", "Using the stack's Java " + feature,
		"With staging's MEMORY_LIMIT=256m (each start sizes for the app's own limit): -Xmx119M -Xss1M"} {
		if !strings.Contains(s.out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, s.out.String())
		}
	}
	body := serve(t, s, "MEMORY_LIMIT=256m "+res.StartCommand)
	if !strings.HasPrefix(body, "java "+feature+" heap ") {
		t.Fatalf("GET / = %q", body)
	}
	// -Xmx119M: the JVM reports a little less (one survivor space) or,
	// with G1, rounds up to its 2M regions.
	if heap := heapOf(t, body); heap > 120<<20 || heap < 100<<20 {
		t.Fatalf("max heap %d MiB at MEMORY_LIMIT=256m, want about 119 MiB", heap>>20)
	}

	// JAVA_OPTS is honoured: its -Xmx wins.
	body = serve(t, s, `MEMORY_LIMIT=256m JAVA_OPTS="-Xmx64m -Dgreeting='hello there'" `+res.StartCommand)
	if heap := heapOf(t, body); heap > 64<<20 || heap < 50<<20 {
		t.Fatalf("max heap %d MiB with JAVA_OPTS=-Xmx64m", heap>>20)
	}
}

func TestJava_topLevelJarRunsWithJavaJar(t *testing.T) {
	t.Parallel()
	feature := javaFeature(t)
	s := newStage(t, nil)
	must(t, os.WriteFile(filepath.Join(s.cfg.BuildDir, "app.jar"), buildJar(t, "Main-Class: com.example.Main\n"), 0o644))
	res, err := s.build(t)
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, s.out.String())
	}
	if want := "$HOME/.java-buildpack/start -jar $HOME/app.jar"; res.BuildpackName != "java_buildpack" || res.StartCommand != want {
		t.Fatalf("result %+v, want the java_buildpack starting %q\n%s", res, want, s.out.String())
	}
	if !strings.Contains(s.out.String(), "Java Main: com.example.Main (from app.jar)") {
		t.Fatalf("output:\n%s", s.out.String())
	}
	// Without MEMORY_LIMIT the calculator assumes CF's default, 1G.
	if body := serve(t, s, res.StartCommand); heapOf(t, body) < 500<<20 || !strings.HasPrefix(body, "java "+feature) {
		t.Fatalf("GET / = %q", body)
	}

	// A second executable jar: which one to run is the user's to say.
	must(t, os.WriteFile(filepath.Join(s.cfg.BuildDir, "other.jar"), buildJar(t, "Main-Class: com.example.Main\n"), 0o644))
	if _, err := s.build(t); builder.ExitCode(err) != builder.ExitFinalizeFailed || !strings.Contains(s.out.String(), "several executable jars (app.jar other.jar)") {
		t.Fatalf("err = %v\n%s", err, s.out.String())
	}
}

func TestJava_jarWithoutMainClassIsNotDetected(t *testing.T) {
	t.Parallel()
	javaTools(t)
	s := newStage(t, nil)
	jar := buildJar(t, "Created-By: test\n")
	must(t, os.WriteFile(filepath.Join(s.cfg.BuildDir, "lib.jar"), jar, 0o644))
	unzip(t, jar, s.cfg.BuildDir)
	if _, err := s.build(t); builder.ExitCode(err) != builder.ExitNoAppDetected {
		t.Fatalf("err = %v, want no app detected\n%s", err, s.out.String())
	}
}

func TestJava_tooLittleMemoryFailsAtStartSayingSo(t *testing.T) {
	t.Parallel()
	javaTools(t)
	s := newStage(t, nil)
	unzip(t, buildJar(t, "Main-Class: com.example.Main\n"), s.cfg.BuildDir)
	res, err := s.build(t)
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, s.out.String())
	}
	cmd := exec.Command("bash", "-c", res.StartCommand)
	cmd.Dir = s.cfg.BuildDir
	cmd.Env = append(os.Environ(), "HOME="+s.cfg.BuildDir, "MEMORY_LIMIT=64m", "PORT=0")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(string(out), "MEMORY_LIMIT 64m is too small for the JVM") {
		t.Fatalf("err = %v\n%s", err, out)
	}
}

func TestJava_noJavaOnTheStackFailsNamingIt(t *testing.T) {
	t.Parallel()
	javaTools(t)
	// A PATH with the tools the scripts use, but no java.
	bin := t.TempDir()
	for _, tool := range []string{"bash", "cat", "dirname", "head", "tail", "od", "tr", "grep", "gzip", "awk", "find", "wc", "mkdir", "cp", "chmod"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		must(t, os.Symlink(p, filepath.Join(bin, tool)))
	}
	s := newStage(t, nil)
	unzip(t, buildJar(t, "Main-Class: com.example.Main\n"), s.cfg.BuildDir)
	s.cfg.Env = []string{"PATH=" + bin, "CF_STACK=bare"}
	_, err := s.build(t)
	out := s.out.String()
	if builder.ExitCode(err) != builder.ExitFinalizeFailed || !strings.Contains(out, "The stack 'bare' has no Java") || strings.Contains(out, "command not found") {
		t.Fatalf("err = %v\n%s", err, out)
	}
}
