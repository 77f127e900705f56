package e2e

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/testenv"
)

// javaApp answers GET / with its max heap, GET /fill by filling three
// quarters of that heap with live, touched arrays (kept until it exits),
// and GET /threads by starting 60 threads that each touch about half a MiB
// of their stack and stay (the memory calculator reserves 64 stacks at
// 256M).
const javaApp = `package com.example;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;

public class Main {
	static final List<byte[]> kept = new ArrayList<>();
	static final CountDownLatch forever = new CountDownLatch(1);

	// deep recurses n frames (about 250 bytes of stack each while
	// interpreted), then parks.
	static long deep(int n, long a, long b, long c, long d, long e, long f, CountDownLatch ready) throws InterruptedException {
		if (n == 0) {
			ready.countDown();
			forever.await();
			return a + b + c + d + e + f;
		}
		return deep(n - 1, a + 1, b + a, c + b, d + c, e + d, f + e, ready) + 1;
	}

	static void answer(HttpExchange x, String s) throws IOException {
		byte[] b = s.getBytes();
		x.sendResponseHeaders(200, b.length);
		x.getResponseBody().write(b);
		x.close();
	}

	public static void main(String[] args) throws Exception {
		HttpServer s = HttpServer.create(new InetSocketAddress(Integer.parseInt(System.getenv("PORT"))), 0);
		s.createContext("/", x -> answer(x, "heap " + Runtime.getRuntime().maxMemory()));
		s.createContext("/fill", x -> {
			long goal = Runtime.getRuntime().maxMemory() * 3 / 4, n = 0;
			while (n < goal) {
				byte[] b = new byte[1 << 20];
				for (int i = 0; i < b.length; i += 4096) b[i] = 1;
				kept.add(b);
				n += b.length;
			}
			answer(x, "filled " + n);
		});
		s.createContext("/threads", x -> {
			CountDownLatch ready = new CountDownLatch(60);
			for (int i = 0; i < 60; i++) {
				Thread th = new Thread(() -> {
					try {
						deep(2000, 1, 2, 3, 4, 5, 6, ready);
					} catch (InterruptedException e) {
						Thread.currentThread().interrupt();
					} catch (StackOverflowError e) {
						// Ends the thread (the count shows it), not the answer.
						ready.countDown();
					}
				});
				th.setDaemon(true);
				th.start();
			}
			try {
				ready.await();
			} catch (InterruptedException e) {
				throw new IOException(e);
			}
			answer(x, "threads " + Thread.activeCount());
		});
		s.start();
	}
}
`

// javaJar builds javaApp into an executable jar with the host's JDK.
func javaJar(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"java", "javac", "jar"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, "no "+tool+" on the host (apt-get install default-jdk-headless)")
		}
	}
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"src/com/example/Main.java": javaApp,
		"manifest.txt":              "Main-Class: com.example.Main\n",
	})
	for _, args := range [][]string{
		{"javac", "-d", "classes", "src/com/example/Main.java"},
		{"jar", "--create", "--file", "app.jar", "--manifest", "manifest.txt", "-C", "classes", "."},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return filepath.Join(dir, "app.jar")
}

func TestPush_javaJarRunsIn256MWithTheHeapSizedFromTheLimit(t *testing.T) {
	t.Parallel()
	jar := javaJar(t)
	s := sharedServer(t)
	const name = "java-hello"
	s.deleteAppOnCleanup(t, name)

	r := s.mustPando(t, "push", name, "-p", jar, "-m", "256M")

	requireOutput(t, r, `Detected java_buildpack`, `Java Main: com\.example\.Main`, `Using the stack's Java \d+`,
		`web: 1 of 1 instances running`, `start command:\s+\$HOME/\.java-buildpack/start -cp \$HOME/\. com\.example\.Main`)
	body := s.curlRoute(t, name+".localhost", "/")
	heap, err := strconv.ParseInt(strings.TrimPrefix(body, "heap "), 10, 64)
	if err != nil {
		t.Fatalf("GET / = %q", body)
	}
	// The calculator's -Xmx at 256M is 119M (TestJava_memoryCalculator);
	// the JVM's own default would be a quarter of the limit, 64M.
	if heap < 100<<20 || heap > 120<<20 {
		t.Fatalf("max heap %d MiB in 256M, want about 119 MiB", heap>>20)
	}
	guid := s.instances(t, name)

	// Three quarters of the heap in use and 60 more threads deep in their
	// stacks: the JVM stays under the limit.
	// Each asked once (a retry would fill or start threads again), with a
	// bound on a hang only: under CI's load the JVM has taken over a
	// minute to answer.
	once := func(path string) string {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+s.routerAddr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = name + ".localhost"
		resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %q %v", path, resp.Status, body, err)
		}
		return string(body)
	}
	if body := once("/fill"); !strings.HasPrefix(body, "filled ") {
		t.Fatalf("GET /fill = %q", body)
	}
	if body := once("/threads"); !strings.HasPrefix(body, "threads ") {
		t.Fatalf("GET /threads = %q", body)
	} else if n, err := strconv.Atoi(strings.TrimPrefix(body, "threads ")); err != nil || n < 61 {
		t.Fatalf("GET /threads = %q, want at least 61 live threads", body)
	}
	if body := s.curlRoute(t, name+".localhost", "/"); body != "heap "+strconv.FormatInt(heap, 10) {
		t.Fatalf("GET / after /fill = %q", body)
	}
	if got := s.instances(t, name); got != guid || !strings.HasSuffix(got, "RUNNING") {
		t.Fatalf("instances after /fill: %q, want the same one running: %q", got, guid)
	}
	events := s.mustPando(t, "events", name)
	if strings.Contains(events.stdout, "audit.app.process.crash") {
		t.Fatalf("the app crashed:\n%s", events)
	}
	logs := s.mustPando(t, "logs", name, "--recent")
	requireOutput(t, logs, `JVM Memory Configuration: -Xmx119M -Xss1M -XX:MaxMetaspaceSize=\d+M -XX:ReservedCodeCacheSize=32M -XX:MaxDirectMemorySize=10M`)
	_ = os.Remove(jar)
}

func TestStacks_showTheHostsRuntimes(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("java", "-version").CombinedOutput()
	if err != nil {
		testenv.Missing(t, "no java on the host (apt-get install default-jdk-headless)")
	}
	v := regexp.MustCompile(`version "([0-9.]+)`).FindSubmatch(out)
	if v == nil {
		t.Fatalf("java -version: %s", out)
	}
	// node, and yarn as Debian names it (its modules where Debian's node
	// looks; a node from elsewhere needs NODE_PATH).
	node := strings.TrimPrefix(hostNode(t), "v")
	yarnCmd := exec.Command("yarnpkg", "--version")
	yarnCmd.Env = append(os.Environ(), "NODE_PATH=/usr/share/nodejs")
	yarn, err := yarnCmd.Output()
	if err != nil {
		testenv.Missing(t, "no yarnpkg on the host (apt-get install yarnpkg)")
	}
	s := sharedServer(t)
	// The runtimes are asked at the lowest CPU priority: on a busy machine
	// one may be cut short and asked again a little later.
	java := regexp.MustCompile(`(?m)^host\s+.*\bjava ` + regexp.QuoteMeta(string(v[1])) + `\b`)
	var r result
	eventually(t, "pando stacks shows java", 3*time.Minute, func() (bool, string) {
		r = s.mustPando(t, "stacks")
		return java.MatchString(r.out()), r.out()
	})
	requireOutput(t, r, `(?m)^name\s+description\s+runtimes$`,
		`(?m)^host\s+.*\bnode `+regexp.QuoteMeta(node)+`\b.*\byarn `+regexp.QuoteMeta(strings.TrimSpace(string(yarn)))+`\b`)
}
