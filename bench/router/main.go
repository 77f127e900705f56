// Command router measures Pando's router against nginx in front of the
// same app instance, and against a direct connection to the instance's
// host port, in one run: wrk at 32 and 512 connections, printing
// throughput and p50/p99 latency with the router's ratios. It starts its
// own `pando server` on free loopback ports in a temp dir and its own
// nginx (Debian's nginx-light); it needs root, wrk and nginx.
//
//	sudo PANDO_BIN=$PWD/bin/pando go run ./bench/router [-d 5s] [-n 1]
//
// nginx proxies to the instance's host port (the cell's forwarder, as any
// proxy outside the server must); the in-process router dials into the
// container's network namespace itself. "direct" is wrk on the host port.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/pandoplatform/pando/bench/internal/benchrun"
	"github.com/pandoplatform/pando/bench/internal/pandoserver"
	"github.com/pandoplatform/pando/internal/childproc"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type config struct {
	duration time.Duration
	rounds   int
	conns    []int
	pando    string
	keep     bool
	only     map[string]bool // nil: all targets
}

func run(args []string, stdout, stderr io.Writer) int {
	var cfg config
	fs := flag.NewFlagSet("router", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&cfg.duration, "d", 5*time.Second, "length of each wrk run")
	fs.IntVar(&cfg.rounds, "n", 1, "rounds (targets alternate within a round; the best round counts)")
	connList := fs.String("c", "1,32,512", "connection counts (1 measures added latency, the others throughput)")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the temp dir (server and nginx logs)")
	only := fs.String("only", "", "measure only these targets (comma-separated: direct, nginx, router), e.g. while profiling")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, f := range strings.Split(*connList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(stderr, "error: -c %q: want a list of positive counts\n", *connList)
			return 2
		}
		cfg.conns = append(cfg.conns, n)
	}
	if *only != "" {
		cfg.only = map[string]bool{}
		for _, t := range strings.Split(*only, ",") {
			cfg.only[strings.TrimSpace(t)] = true
		}
	}
	cfg.pando = benchrun.PandoBin()
	return benchrun.Main(stderr, func(ctx context.Context) error { return bench(ctx, cfg, stdout, stderr) })
}

// target is one way to reach the instance.
type target struct {
	name string
	url  string
	host string               // Host header
	cpu  func() time.Duration // CPU time used so far by the processes on the path
}

// cpuOf is the CPU time (user and system) used so far by process pid,
// or by every process in process group pgid, from /proc.
func cpuOf(pid, pgid int) time.Duration {
	var ticks int64
	add := func(stat []byte) {
		// Fields after the command (which may hold spaces) in ")".
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			return
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 13 {
			return
		}
		if pgid != 0 {
			if g, _ := strconv.Atoi(f[2]); g != pgid {
				return
			}
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	if pid != 0 {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			add(b)
		}
	} else {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			if e.Name()[0] < '0' || e.Name()[0] > '9' {
				continue
			}
			if b, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil {
				add(b)
			}
		}
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// result is one wrk run.
type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
	// cpu is the CPU time per request of the processes in the path
	// (server, nginx), when known.
	cpu time.Duration
}

func bench(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	for _, tool := range []string{"wrk", "nginx"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (apt-get install -y wrk nginx-light)", tool)
		}
	}
	if os.Geteuid() != 0 {
		return errors.New("the bench runs pando server, which needs root")
	}
	dir, err := os.MkdirTemp("", "pando-bench-router-")
	if err != nil {
		return err
	}
	if cfg.keep {
		fmt.Fprintln(stderr, "keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	srv, err := startServer(ctx, cfg.pando, dir)
	if err != nil {
		return err
	}
	defer srv.Stop()
	fmt.Fprintln(stderr, "pushing the app ...")
	hostPort, err := srv.pushApp(ctx, dir)
	if err != nil {
		return err
	}
	nginxAddr, nginxPgid, stopNginx, err := startNginx(ctx, dir, hostPort)
	if err != nil {
		return err
	}
	defer stopNginx()

	// CPU time is counted in the processes each path goes through: the
	// server (the cell's forwarder for direct and nginx, the router), and
	// nginx's master and workers. It does not depend on how busy the
	// machine is, as throughput does.
	server := func() time.Duration { return cpuOf(srv.Pid(), 0) }
	targets := []target{
		{"direct", "http://" + hostPort + "/", "", server},
		{"nginx", "http://" + nginxAddr + "/", "bench.localhost", func() time.Duration { return server() + cpuOf(0, nginxPgid) }},
		{"router", "http://" + srv.RouterAddr + "/", "bench.localhost", server},
	}
	if cfg.only != nil {
		var kept []target
		for _, tg := range targets {
			if cfg.only[tg.name] {
				kept = append(kept, tg)
			}
		}
		targets = kept
	}
	for _, tg := range targets {
		if err := probe(ctx, tg); err != nil {
			return fmt.Errorf("%s: %w", tg.name, err)
		}
	}
	best := map[string]result{}
	for round := 0; round < cfg.rounds; round++ {
		for _, c := range cfg.conns {
			for _, tg := range targets {
				if _, err := wrk(ctx, tg, c, time.Second); err != nil { // warm-up
					return err
				}
				before := tg.cpu()
				r, err := wrk(ctx, tg, c, cfg.duration)
				if err != nil {
					return err
				}
				if n := r.rps * cfg.duration.Seconds(); n > 0 {
					r.cpu = time.Duration(float64(tg.cpu()-before) / n)
				}
				fmt.Fprintf(stderr, "round %d  %-6s c=%-4d %8.0f req/s  p50 %-9v p99 %-9v cpu/req %v\n", round+1, tg.name, c, r.rps, r.p50, r.p99, r.cpu)
				k := key(tg.name, c)
				if b, ok := best[k]; !ok || r.rps > b.rps {
					best[k] = r
				}
			}
		}
	}
	report(stdout, cfg, best)
	return nil
}

func key(name string, c int) string { return name + "/" + strconv.Itoa(c) }

func report(w io.Writer, cfg config, best map[string]result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "conns\ttarget\treq/s\tp50\tp99\terrors\tcpu/req\t")
	for _, c := range cfg.conns {
		for _, n := range []string{"direct", "nginx", "router"} {
			r := best[key(n, c)]
			fmt.Fprintf(tw, "%d\t%s\t%.0f\t%v\t%v\t%d\t%v\t\n", c, n, r.rps, r.p50, r.p99, r.errors, r.cpu.Round(100*time.Nanosecond))
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, c := range cfg.conns {
		rt, ng, di := best[key("router", c)], best[key("nginx", c)], best[key("direct", c)]
		if rt.rps == 0 || ng.rps == 0 {
			continue
		}
		fmt.Fprintf(w, "c=%d: router/nginx throughput %.2fx, p50 %v vs %v (router adds %v over direct), p99 %v vs %v, CPU per request %v vs %v (nginx's includes the forwarder's %v)\n",
			c, rt.rps/ng.rps, rt.p50, ng.p50, (rt.p50 - di.p50).Round(time.Microsecond), rt.p99, ng.p99,
			rt.cpu.Round(100*time.Nanosecond), ng.cpu.Round(100*time.Nanosecond), di.cpu.Round(100*time.Nanosecond))
	}
}

// probe checks a target answers 200 before it is measured.
func probe(ctx context.Context, tg target) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, tg.url, nil)
	if err != nil {
		return err
	}
	if tg.host != "" {
		req.Host = tg.host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s answered %s", tg.url, resp.Status)
	}
	return nil
}

var (
	rpsRe     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	pctRe     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	errorsRe  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	non2xxRe  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	durations = map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}
)

func wrk(ctx context.Context, tg target, conns int, d time.Duration) (result, error) {
	args := []string{"-t" + strconv.Itoa(min(2, conns)), "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(max(int(d.Seconds()), 1)) + "s", "--latency"}
	if tg.host != "" {
		args = append(args, "-H", "Host: "+tg.host)
	}
	args = append(args, tg.url)
	out, err := exec.CommandContext(ctx, "wrk", args...).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return parseWrk(string(out))
}

func parseWrk(out string) (result, error) {
	var r result
	m := rpsRe.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec in wrk output:\n%s", out)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	for _, m := range pctRe.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		d := time.Duration(v * float64(durations[m[3]])).Round(time.Microsecond)
		if m[1] == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	if m := errorsRe.FindStringSubmatch(out); m != nil {
		for _, f := range m[1:] {
			n, _ := strconv.Atoi(f)
			r.errors += n
		}
	}
	if m := non2xxRe.FindStringSubmatch(out); m != nil {
		n, _ := strconv.Atoi(m[1])
		r.errors += n
	}
	return r, nil
}

// server is the pando server under test.
type server struct {
	*pandoserver.Server
}

func startServer(ctx context.Context, bin, dir string) (*server, error) {
	s, err := pandoserver.Start(ctx, bin, dir, "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	return &server{s}, nil
}

const appSource = `package main

import (
	"net/http"
	"os"
)

func main() {
	body := []byte("hello from the bench app\n")
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})
	http.ListenAndServe(":"+os.Getenv("PORT"), nil)
}
`

// pushApp builds a Go hello server, pushes it as "bench" and returns the
// host port of its instance.
func (s *server) pushApp(ctx context.Context, dir string) (string, error) {
	out, err := benchrun.BuildApp(ctx, dir, "example.com/benchapp", appSource)
	if err != nil {
		return "", err
	}
	if b, err := s.CLI(ctx, nil, "push", "bench", "-p", out, "-b", "binary_buildpack", "-c", "./server", "-m", "512M"); err != nil {
		return "", fmt.Errorf("push: %w: %s", err, b)
	}
	return s.hostPortFromStats(ctx)
}

// hostPortFromStats reads the instance's host address from the API.
func (s *server) hostPortFromStats(ctx context.Context) (string, error) {
	tok, err := s.Token(ctx)
	if err != nil {
		return "", err
	}
	var apps struct {
		Resources []struct {
			GUID string `json:"guid"`
		} `json:"resources"`
	}
	if err := s.GetJSON(ctx, tok, "/v3/apps?names=bench", &apps); err != nil || len(apps.Resources) != 1 {
		return "", fmt.Errorf("find the app: %v", err)
	}
	var stats struct {
		Resources []struct {
			Host  string `json:"host"`
			Ports []struct {
				External int `json:"external"`
			} `json:"instance_ports"`
		} `json:"resources"`
	}
	if err := s.GetJSON(ctx, tok, "/v3/apps/"+apps.Resources[0].GUID+"/processes/web/stats", &stats); err != nil {
		return "", err
	}
	if len(stats.Resources) == 0 || len(stats.Resources[0].Ports) == 0 {
		return "", errors.New("the instance has no host port")
	}
	r := stats.Resources[0]
	return net.JoinHostPort(r.Host, strconv.Itoa(r.Ports[0].External)), nil
}

// startNginx runs nginx in the foreground with a config of its own that
// proxies every request to upstream with keep-alive connections, as one
// would put it in front of an app.
func startNginx(ctx context.Context, dir, upstream string) (string, int, func(), error) {
	addr, err := pandoserver.FreeAddr()
	if err != nil {
		return "", 0, nil, err
	}
	ndir := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(ndir, 0o755); err != nil {
		return "", 0, nil, err
	}
	conf := fmt.Sprintf(`worker_processes auto;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
	access_log %[1]s/access.log;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	upstream app { server %[2]s; keepalive 256; }
	server {
		listen %[3]s;
		location / {
			proxy_pass http://app;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host $host;
			proxy_set_header X-Forwarded-For $remote_addr;
			proxy_set_header X-Forwarded-Proto $scheme;
		}
	}
}
`, ndir, upstream, addr)
	confPath := filepath.Join(ndir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return "", 0, nil, err
	}
	cmd := exec.Command("nginx", "-c", confPath, "-p", ndir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = io.Discard
	// Dies with the bench, and only then (childproc).
	waited, err := childproc.Start(cmd)
	if err != nil {
		return "", 0, nil, fmt.Errorf("start nginx: %w", err)
	}
	done := make(chan struct{})
	go func() { <-waited; close(done) }()
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr, cmd.Process.Pid, stop, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return "", 0, nil, fmt.Errorf("nginx did not listen on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond) // polling for nginx, with a deadline
	}
}
