// Package pgtest gives tests a fresh PostgreSQL database. The first test
// that asks starts a throwaway cluster on loopback (initdb and postgres from
// /usr/lib/postgresql/*/bin, as the postgres OS user when running as root,
// fsync off), shared by the test binary until Stop; each test gets its own
// database on it (empty, or a copy of a template the first test prepared).
// PANDO_TEST_DATABASE_URL points the tests at an existing server instead
// (its user must be allowed to create databases). Without PostgreSQL the tests skip, or fail under
// CI=true (testenv.Missing); with -short they skip.
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

	"github.com/pandoplatform/pando/internal/childproc"
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
	db     *sql.DB // the admin connection
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	dir    string

	// What launch needs to start postgres (again) on the same data.
	bin, data string
	port      int
	cred      *syscall.Credential // the postgres OS user's, running as root

	mu        sync.Mutex
	templates map[string]*template
	spares    map[string]chan spare // by template
	made      []string              // the databases created, to drop on an existing server
	stopping  bool                  // no more spares
	wg        sync.WaitGroup        // the spares being made
}

// The test binary's one cluster, started by the first URL call.
var (
	once    sync.Once
	shared  *cluster
	openErr error
)

// URL returns the URL of a new, empty database that only t uses (dropped
// when t ends on an existing server). It skips t (fails it under CI=true)
// when PostgreSQL is not installed.
func URL(t testing.TB) string {
	t.Helper()
	return newDatabase(t, "template0")
}

// Prepare fills a template database (e.g. migrates it), through url.
type Prepare func(ctx context.Context, url string) error

// TemplateURL is URL for a database that starts as a copy of the template
// named key, which the first call makes with prepare: quicker than
// preparing every test's database.
func TemplateURL(t testing.TB, key string, prepare Prepare) string {
	t.Helper()
	c := cluster1(t)
	c.mu.Lock()
	tpl, ok := c.templates[key]
	if !ok {
		tpl = &template{name: "pando_tpl_" + key + "_" + strings.ToLower(rand.Text()[:8])}
		c.templates[key] = tpl
	}
	c.mu.Unlock()
	tpl.once.Do(func() { tpl.err = c.makeTemplate(tpl.name, prepare) })
	if tpl.err != nil {
		t.Fatalf("pgtest: template %s: %v", key, tpl.err)
	}
	return newDatabase(t, tpl.name)
}

// template is a database tests' databases are copied from.
type template struct {
	name string
	once sync.Once
	err  error
}

func cluster1(t testing.TB) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("PostgreSQL tests do not run with -short")
	}
	once.Do(func() { shared, openErr = open() })
	if errors.Is(openErr, errNotInstalled) {
		testenv.Missing(t, openErr.Error())
	}
	if openErr != nil {
		t.Fatalf("pgtest: %v", openErr)
	}
	return shared
}

func newDatabase(t testing.TB, from string) string {
	t.Helper()
	c := cluster1(t)
	name, err := c.take(from)
	if err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	// An own cluster goes whole at Stop: only an existing server's
	// databases are dropped one by one.
	if c.dir == "" {
		t.Cleanup(func() {
			if _, err := c.db.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
				t.Errorf("pgtest: drop database %s: %v", name, err)
			}
		})
	}
	return c.url(name)
}

// spare is a database made from a template ahead of the test that takes
// it, or why it could not be.
type spare struct {
	name string
	err  error
}

// take returns a new database copied from the template from, and starts
// making the next one while the test runs.
func (c *cluster) take(from string) (string, error) {
	c.mu.Lock()
	ch, ok := c.spares[from]
	if !ok {
		ch = make(chan spare, 1)
		c.spares[from] = ch
		c.makeSpare(from, ch)
	}
	c.mu.Unlock()
	sp := <-ch
	c.mu.Lock()
	c.makeSpare(from, ch)
	c.mu.Unlock()
	return sp.name, sp.err
}

// makeSpare creates a database from the template from in the background
// and sends it on ch. c.mu is held.
func (c *cluster) makeSpare(from string, ch chan<- spare) {
	if c.stopping {
		return
	}
	name := "pando_test_" + strings.ToLower(rand.Text()[:12])
	c.made = append(c.made, name)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		_, err := c.db.ExecContext(context.Background(), "CREATE DATABASE "+name+" TEMPLATE "+from+" ENCODING 'UTF8'")
		ch <- spare{name: name, err: err}
	}()
}

func (c *cluster) url(database string) string {
	u := *c.admin
	u.Path = "/" + database
	return u.String()
}

// makeTemplate creates the database name, prepares it, and closes it to
// connections, as a template must be.
func (c *cluster) makeTemplate(name string, prepare Prepare) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if _, err := c.db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return err
	}
	if _, err := c.db.ExecContext(ctx, "CREATE DATABASE "+name+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		return err
	}
	c.mu.Lock()
	c.made = append(c.made, name)
	c.mu.Unlock()
	if err := prepare(ctx, c.url(name)); err != nil {
		return err
	}
	// The prepared database's sessions may outlive their connections by a
	// moment: end them, and admit no more.
	if _, err := c.db.ExecContext(ctx, "ALTER DATABASE "+name+" WITH ALLOW_CONNECTIONS false"); err != nil {
		return err
	}
	_, err := c.db.ExecContext(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
	return err
}

// Stop stops the cluster the tests started, if any, and removes its files;
// on an existing server it drops the templates. TestMain calls it after
// m.Run.
func Stop() error {
	if shared == nil {
		return nil
	}
	shared.mu.Lock()
	shared.stopping = true
	shared.mu.Unlock()
	shared.wg.Wait()
	var err error
	if shared.dir == "" {
		for _, name := range shared.made {
			_, e := shared.db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			err = errors.Join(err, e)
		}
	}
	return errors.Join(err, shared.stop())
}

var errNotInstalled = errors.New("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): install the postgresql package, or set " + EnvURL)

func open() (*cluster, error) {
	c, err := find()
	if err != nil {
		return nil, err
	}
	c.templates, c.spares = map[string]*template{}, map[string]chan spare{}
	if c.db, err = sql.Open("pgx", c.admin.String()); err != nil {
		c.stop()
		return nil, err
	}
	c.db.SetMaxOpenConns(2)
	return c, nil
}

// find starts a cluster, or names the server EnvURL gives.
func find() (*cluster, error) {
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
	c = &cluster{dir: dir, bin: bin, data: filepath.Join(dir, "data")}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
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
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	password := rand.Text()
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if c.cred != nil {
		if err := os.Chown(pwfile, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return nil, err
		}
	}
	// The databases collate as most servers' do (ICU en-US, where "a"
	// sorts before "B"), not bytewise, where PostgreSQL 15's ICU allows.
	base := []string{"-D", c.data, "-U", "pando", "--pwfile", pwfile,
		"-E", "UTF8", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"}
	for _, extra := range [][]string{{"--locale-provider=icu", "--icu-locale=en-US"}, nil} {
		initdb := exec.Command(filepath.Join(bin, "initdb"), append(slices.Clip(base), extra...)...)
		initdb.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
		initdb.Dir = dir
		out, err := initdb.CombinedOutput()
		if err == nil {
			break
		}
		if extra == nil {
			return nil, fmt.Errorf("initdb: %v: %s", err, out)
		}
		if err := os.RemoveAll(c.data); err != nil {
			return nil, err
		}
	}
	if c.port, err = freePort(); err != nil {
		return nil, err
	}
	c.admin = &url.URL{Scheme: "postgres", User: url.UserPassword("pando", password),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)), Path: "/postgres", RawQuery: "sslmode=disable"}
	return c, c.launch()
}

// launch starts postgres on c's data dir and port and waits until it
// accepts logins.
func (c *cluster) launch() error {
	logf, err := os.OpenFile(filepath.Join(c.dir, "postgres.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(c.bin, "postgres"), "-D", c.data, "-k", c.dir, "-p", strconv.Itoa(c.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "shared_buffers=16MB", "-c", "max_connections=200")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Setpgid: true}
	cmd.Stdout, cmd.Stderr, cmd.Dir = logf, logf, c.dir
	// It dies with the test binary, and only then: a parent-death signal
	// set from an arbitrary thread fires when the Go runtime ends that
	// thread (the shared cluster got SIGTERM mid-run that way).
	waited, err := childproc.Start(cmd)
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { <-waited; close(exited) }()
	c.cmd, c.exited = cmd, exited
	db, err := sql.Open("pgx", c.admin.String())
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
			return fmt.Errorf("postgres exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not ready within %s: %v", startTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop shuts the server down and removes its directory.
func (c *cluster) stop() error {
	var err error
	if c.db != nil {
		err = c.db.Close()
	}
	err = errors.Join(err, c.halt())
	if c.dir != "" {
		err = errors.Join(err, os.RemoveAll(c.dir))
	}
	return err
}

// halt shuts the server down fast (SIGINT: sessions are ended), killing
// it if it lingers.
func (c *cluster) halt() error {
	if c.cmd == nil {
		return nil
	}
	var err error
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.exited
		err = errors.New("postgres did not stop within 10s of SIGINT: killed")
	}
	c.cmd = nil
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
