// Package pgcluster starts and stops a private PostgreSQL cluster, so that make run, make test
// and analyze work on a machine where no database server runs.
//
// The cluster is private in the literal sense: its directory and unix socket directory are
// 0700, owned by the user postgres runs as, and every connection, by socket or TCP, needs the
// superuser's password (SCRAM), which lives in a 0600 file next to the data. It never installs
// anything: scripts/setup.sh does, when asked to.
package pgcluster

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Cluster is a local PostgreSQL cluster in a directory of its own.
type Cluster struct {
	// Dir holds the cluster: data/ for PGDATA, socket/ for the unix socket, password,
	// postgres.log. It is the directory asked for, or, when postgres runs as another user that
	// cannot reach that one, a directory of its own under /var/lib/xsell (see location.go).
	Dir string
	// Port is the TCP port, or 0 for a cluster reachable only through its unix socket.
	Port int
	// Durable false turns off fsync for throwaway test clusters, where speed matters more.
	Durable bool

	bin      string
	run      runner
	password string // the superuser's password, once the cluster has one
	started  bool   // this process started the server, so Stop stops it
}

// Options describe the cluster to open.
type Options struct {
	Dir     string
	Port    int
	Durable bool
	// Log receives progress lines (initdb, relocation); nil discards them.
	Log func(format string, args ...any)
}

// Open finds the PostgreSQL server binaries and decides where the cluster for opts.Dir lives;
// it creates nothing on disk until Start.
func Open(opts Options) (*Cluster, error) {
	logf := opts.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	want, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("cluster directory %q: %w", opts.Dir, err)
	}
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	run, err := newRunner()
	if err != nil {
		return nil, err
	}
	dir, err := locate(want, run)
	if err != nil {
		return nil, err
	}
	if dir != want {
		logf("the %s user cannot reach %s, so its cluster lives in %s", run.user, want, dir)
	}
	c := &Cluster{Dir: dir, Port: opts.Port, Durable: opts.Durable, bin: bin, run: run}
	if pw, err := os.ReadFile(c.passwordFile()); err == nil {
		c.password = strings.TrimSpace(string(pw))
	}
	return c, nil
}

func (c *Cluster) dataDir() string      { return filepath.Join(c.Dir, "data") }
func (c *Cluster) socketDir() string    { return filepath.Join(c.Dir, "socket") }
func (c *Cluster) logFile() string      { return filepath.Join(c.Dir, "postgres.log") }
func (c *Cluster) passwordFile() string { return filepath.Join(c.Dir, "password") }
func (c *Cluster) exists() bool         { return isFile(filepath.Join(c.dataDir(), "PG_VERSION")) }

// socketPort is the port number in the unix socket's file name; a socket-only cluster still
// needs one, and its own socket directory keeps it apart from any other server.
func (c *Cluster) socketPort() int {
	if c.Port != 0 {
		return c.Port
	}
	return 5432
}

// URL is the connection string of the cluster's postgres database, password included.
func (c *Cluster) URL() string { return c.DatabaseURL("postgres") }

// DatabaseURL is the connection string of one database of the cluster, password included.
func (c *Cluster) DatabaseURL(db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(superuser, c.password), Path: "/" + db}
	q := url.Values{"sslmode": {"disable"}}
	if c.Port != 0 {
		u.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port))
	} else {
		q.Set("host", c.socketDir())
		q.Set("port", strconv.Itoa(c.socketPort()))
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Running reports whether a server is running on the cluster's data directory.
func (c *Cluster) Running() bool {
	if !c.exists() {
		return false
	}
	return c.run.run(c.pgctl("status", "-D", c.dataDir())) == nil
}

// Start creates the cluster when it does not exist yet and starts its server unless one runs
// already; Stop stops only a server that this Start started.
func (c *Cluster) Start(ctx context.Context) error {
	if err := c.prepareDirs(); err != nil {
		return err
	}
	if !c.exists() {
		if err := c.initdb(); err != nil {
			return err
		}
	} else if err := c.secureLegacy(); err != nil {
		return err
	}
	if c.Running() {
		return nil
	}
	opts := []string{
		"-k " + c.socketDir(),
		"-p " + strconv.Itoa(c.socketPort()),
		"-c unix_socket_permissions=0700",
	}
	if c.Port != 0 {
		opts = append(opts, "-c listen_addresses=127.0.0.1")
	} else {
		opts = append(opts, "-c listen_addresses=''")
	}
	if !c.Durable {
		opts = append(opts, "-c fsync=off", "-c full_page_writes=off", "-c synchronous_commit=off")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "pg_ctl"), "start", "-w", "-t", "60",
		"-D", c.dataDir(), "-l", c.logFile(), "-o", strings.Join(opts, " "))
	// A process group of its own: Ctrl-C in the terminal reaches the server, which drains and
	// writes what it queued before it stops the cluster, not the database under it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.run.run(cmd); err != nil {
		log, _ := os.ReadFile(c.logFile())
		return fmt.Errorf("starting postgres in %s: %w\n%s", c.Dir, err, lastLines(log, 15))
	}
	c.started = true
	return nil
}

// Stop stops the server if this process started it.
func (c *Cluster) Stop() error {
	if !c.started {
		return nil
	}
	c.started = false
	if err := c.run.run(c.pgctl("stop", "-w", "-m", "fast", "-D", c.dataDir())); err != nil {
		return fmt.Errorf("stopping postgres in %s: %w", c.Dir, err)
	}
	return nil
}

// Remove stops the server (whoever started it) and deletes the cluster's directory.
func (c *Cluster) Remove() error {
	if c.Running() {
		_ = c.run.run(c.pgctl("stop", "-w", "-m", "immediate", "-D", c.dataDir()))
	}
	c.started = false
	return os.RemoveAll(c.Dir)
}

func (c *Cluster) pgctl(args ...string) *exec.Cmd {
	return exec.Command(filepath.Join(c.bin, "pg_ctl"), args...)
}

// prepareDirs makes the cluster's directory and socket directory, private to the user postgres
// runs as.
func (c *Cluster) prepareDirs() error {
	// A unix socket path is limited to 107 bytes; say so rather than fail obscurely.
	if sock := filepath.Join(c.socketDir(), ".s.PGSQL."+strconv.Itoa(c.socketPort())); len(sock) > 107 {
		return fmt.Errorf("the cluster directory %s is too deep for a unix socket path (%d > 107 bytes): move the checkout to a shorter path or set DATABASE_URL", c.Dir, len(sock))
	}
	if err := os.MkdirAll(filepath.Dir(c.Dir), 0o755); err != nil {
		return fmt.Errorf("cluster directory: %w", err)
	}
	for _, d := range []string{c.Dir, c.socketDir()} {
		if err := c.run.privateDir(d); err != nil {
			return err
		}
	}
	return nil
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on right now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartPrivate starts (creating it on first use) the persistent cluster that make run and
// analyze use when DATABASE_URL is unset: durable, reachable only through its unix socket.
func StartPrivate(ctx context.Context, dir string, logf func(string, ...any)) (*Cluster, error) {
	c, err := Open(Options{Dir: dir, Durable: true, Log: logf})
	if err != nil {
		return nil, err
	}
	if logf != nil && !c.exists() {
		logf("creating the private PostgreSQL cluster in %s (first start only)", c.Dir)
	}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
