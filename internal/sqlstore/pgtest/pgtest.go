// Package pgtest gives tests a fresh PostgreSQL database. The first test
// that asks starts a throwaway cluster on loopback (initdb and postgres from
// /usr/lib/postgresql/*/bin, as the postgres OS user when running as root,
// fsync off), shared by the test binary until Stop; each test gets its own
// database on it, dropped when the test ends. PANDO_TEST_DATABASE_URL
// points the tests at an existing server instead (its user must be allowed
// to create databases). Without PostgreSQL the tests skip, or fail under
// CI=true (testenv.Missing).
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/pandoplatform/pando/internal/testenv"
)

// EnvURL names an existing server to test against instead of a throwaway
// cluster: a URL whose user may CREATE DATABASE.
const EnvURL = "PANDO_TEST_DATABASE_URL"

const startTimeout = 60 * time.Second

// cluster is the test binary's server: its admin URL, and the process and
// directory to remove at Stop (none for EnvURL).
type cluster struct {
	admin  *url.URL
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	dir    string
}

// The test binary's one cluster, started by the first URL call.
var (
	once    sync.Once
	shared  *cluster
	openErr error
)

// URL returns the URL of a new, empty database that only t uses (dropped
// when t ends on an existing server). It skips t (fails it under CI=true) when PostgreSQL is not
// installed.
func URL(t testing.TB) string {
	t.Helper()
	once.Do(func() { shared, openErr = open() })
	if errors.Is(openErr, errNotInstalled) {
		testenv.Missing(t, openErr.Error())
	}
	if openErr != nil {
		t.Fatalf("pgtest: %v", openErr)
	}
	ctx := context.Background()
	admin, err := sql.Open("pgx", shared.admin.String())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := "pando_test_" + strings.ToLower(rand.Text()[:12])
	// template0 copies fastest; an own cluster goes whole at Stop, so only
	// an existing server's databases are dropped one by one.
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	if shared.cmd == nil {
		t.Cleanup(func() {
			admin, err := sql.Open("pgx", shared.admin.String())
			if err != nil {
				t.Error(err)
				return
			}
			defer admin.Close()
			if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
				t.Errorf("pgtest: drop database %s: %v", name, err)
			}
		})
	}
	u := *shared.admin
	u.Path = "/" + name
	return u.String()
}

// Stop stops the cluster the tests started, if any, and removes its files.
// TestMain calls it after m.Run.
func Stop() error {
	if shared == nil || shared.cmd == nil {
		return nil
	}
	return shared.stop()
}

var errNotInstalled = errors.New("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): install the postgresql package, or set " + EnvURL)

func open() (*cluster, error) {
	if v := os.Getenv(EnvURL); v != "" {
		u, err := url.Parse(v)
		if err != nil {
			return nil, fmt.Errorf("%s is not a URL", EnvURL)
		}
		return &cluster{admin: u}, nil
	}
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	var last error
	for range 3 { // another process may take the port first
		c, err := start(bin)
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}

// binDir is the newest /usr/lib/postgresql/N/bin, or where initdb is on
// PATH.
func binDir() (string, error) {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	slices.SortFunc(found, func(a, b string) int { return version(a) - version(b) })
	if len(found) > 0 {
		return filepath.Dir(found[len(found)-1]), nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errNotInstalled
}

func version(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// start initialises a cluster in a new temp dir and starts it on a free
// loopback port, its socket in the dir. Running as root, the dir and the
// processes are the postgres user's: postgres refuses root.
func start(bin string) (c *cluster, err error) {
	dir, err := os.MkdirTemp("", "pando-pgtest-")
	if err != nil {
		return nil, err
	}
	c = &cluster{dir: dir}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, PostgreSQL needs the postgres OS user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	password := rand.Text()
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(pwfile, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "pando", "--pwfile", pwfile,
		"-E", "UTF8", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	c.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", dir, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "shared_buffers=16MB", "-c", "max_connections=200")
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGTERM, Setpgid: true}
	c.cmd.Stdout, c.cmd.Stderr, c.cmd.Dir = logf, logf, dir
	if err := c.cmd.Start(); err != nil {
		c.cmd = nil
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	c.exited = make(chan struct{})
	go func() { c.cmd.Wait(); close(c.exited) }()
	c.admin = &url.URL{Scheme: "postgres", User: url.UserPassword("pando", password),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Path: "/postgres", RawQuery: "sslmode=disable"}
	db, err := sql.Open("pgx", c.admin.String())
	if err != nil {
		return nil, err
	}
	defer db.Close()
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			return c, nil
		}
		select {
		case <-c.exited:
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			return nil, fmt.Errorf("postgres exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("postgres not ready within %s: %v", startTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop shuts the server down fast (SIGINT), killing it if it lingers, and
// removes its directory.
func (c *cluster) stop() error {
	var err error
	if c.cmd != nil {
		_ = c.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			<-c.exited
			err = errors.New("postgres did not stop within 10s of SIGINT: killed")
		}
	}
	if c.dir != "" {
		err = errors.Join(err, os.RemoveAll(c.dir))
	}
	return err
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
