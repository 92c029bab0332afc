// Package pgcluster starts and stops a private PostgreSQL cluster, so that make run, make test
// and analyze work on a machine where no database server runs.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Cluster is a local PostgreSQL cluster in a directory of its own.
type Cluster struct {
	// Dir holds the cluster: data/ for PGDATA, socket/ for the unix socket, postgres.log.
	Dir string
	// Port is the TCP port, or 0 for a cluster reachable only through its unix socket.
	Port int
	// Durable false turns off fsync for throwaway test clusters, where speed matters more.
	Durable bool

	bin     string
	asUser  string // non-empty when commands must run as another user (we are root)
	started bool   // this process started the server, so Stop stops it
}

// Options describe the cluster to open.
type Options struct {
	Dir     string
	Port    int
	Durable bool
	// Install lets Open install PostgreSQL with apt-get when it is missing and we are root.
	Install bool
	// Log receives progress lines (initdb, installs); nil discards them.
	Log func(format string, args ...any)
}

// Open finds the PostgreSQL server binaries and prepares a Cluster in opts.Dir; it creates
// nothing on disk until Start.
func Open(opts Options) (*Cluster, error) {
	logf := opts.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	bin, err := findBinaries()
	if err != nil {
		if !opts.Install || os.Geteuid() != 0 {
			return nil, err
		}
		logf("PostgreSQL server binaries not found; installing them with apt-get (we are root)")
		if ierr := installPostgres(); ierr != nil {
			return nil, fmt.Errorf("installing PostgreSQL: %w", ierr)
		}
		if bin, err = findBinaries(); err != nil {
			return nil, err
		}
	}
	c := &Cluster{Dir: dir, Port: opts.Port, Durable: opts.Durable, bin: bin}
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root; the Debian package's postgres user owns it.
		if _, err := user.Lookup("postgres"); err != nil {
			return nil, errors.New("running as root and there is no postgres user to run the cluster as: create one (useradd --system postgres) or run as a normal user")
		}
		c.asUser = "postgres"
	}
	return c, nil
}

// errNoBinaries says exactly what to install.
var errNoBinaries = errors.New("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: install them with `sudo apt-get install postgresql` (Debian/Ubuntu), or set DATABASE_URL to a server you have")

func findBinaries() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if isFile(filepath.Join(dir, "initdb")) {
			return dir, nil
		}
	}
	// Debian keeps server binaries out of PATH, one directory per major version; take the newest.
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return majorOf(dirs[i]) > majorOf(dirs[j]) })
	for _, d := range dirs {
		if isFile(filepath.Join(d, "initdb")) && isFile(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errNoBinaries
}

func majorOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func installPostgres() error {
	for _, args := range [][]string{{"update"}, {"install", "-y", "--no-install-recommends", "postgresql"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %v\n%s", strings.Join(args, " "), err, lastLines(out, 20))
		}
	}
	return nil
}

func (c *Cluster) dataDir() string   { return filepath.Join(c.Dir, "data") }
func (c *Cluster) socketDir() string { return filepath.Join(c.Dir, "socket") }
func (c *Cluster) logFile() string   { return filepath.Join(c.Dir, "postgres.log") }

// socketPort is the port number in the unix socket's file name; a socket-only cluster still
// needs one, and its own socket directory keeps it apart from any other server.
func (c *Cluster) socketPort() int {
	if c.Port != 0 {
		return c.Port
	}
	return 5432
}

// URL is the connection string of the cluster's postgres database.
func (c *Cluster) URL() string { return c.DatabaseURL("postgres") }

// DatabaseURL is the connection string of one database of the cluster.
func (c *Cluster) DatabaseURL(db string) string {
	if c.Port != 0 {
		return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
	}
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&port=%d&sslmode=disable", db, c.socketDir(), c.socketPort())
}

// Running reports whether a server is running on the cluster's data directory.
func (c *Cluster) Running() bool {
	if !isFile(filepath.Join(c.dataDir(), "PG_VERSION")) {
		return false
	}
	return c.run(exec.Command(filepath.Join(c.bin, "pg_ctl"), "status", "-D", c.dataDir())) == nil
}

// Start creates the cluster when it does not exist yet and starts its server unless one runs
// already; Stop stops only a server that this Start started.
func (c *Cluster) Start(ctx context.Context) error {
	if err := c.prepareDirs(); err != nil {
		return err
	}
	if !isFile(filepath.Join(c.dataDir(), "PG_VERSION")) {
		if err := c.initdb(); err != nil {
			return err
		}
	}
	if c.Running() {
		return nil
	}
	opts := []string{
		"-k " + c.socketDir(),
		"-p " + strconv.Itoa(c.socketPort()),
		"-c unix_socket_permissions=0777",
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
	if err := c.run(cmd); err != nil {
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
	return c.run(exec.Command(filepath.Join(c.bin, "pg_ctl"), "stop", "-w", "-m", "fast", "-D", c.dataDir()))
}

// Remove stops the server (whoever started it) and deletes the cluster's directory.
func (c *Cluster) Remove() error {
	if c.Running() {
		_ = c.run(exec.Command(filepath.Join(c.bin, "pg_ctl"), "stop", "-w", "-m", "immediate", "-D", c.dataDir()))
	}
	c.started = false
	return os.RemoveAll(c.Dir)
}

func (c *Cluster) prepareDirs() error {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(c.socketDir(), 0o777); err != nil {
		return err
	}
	// A unix socket path is limited to 107 bytes; say so rather than fail obscurely.
	if sock := filepath.Join(c.socketDir(), ".s.PGSQL."+strconv.Itoa(c.socketPort())); len(sock) > 107 {
		return fmt.Errorf("the cluster directory %s is too deep for a unix socket path (%d > 107 bytes): move the checkout to a shorter path or set DATABASE_URL", c.Dir, len(sock))
	}
	if c.asUser == "" {
		return nil
	}
	// As root, the postgres user must own the cluster and be able to reach it.
	if err := c.run(exec.Command("test", "-x", c.Dir)); err != nil {
		return fmt.Errorf("the postgres user cannot reach %s (a parent directory is closed to other users): open it with chmod o+x on each parent, or set DATABASE_URL", c.Dir)
	}
	pw, err := user.Lookup(c.asUser)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(pw.Uid)
	gid, _ := strconv.Atoi(pw.Gid)
	for _, p := range []string{c.Dir, c.socketDir()} {
		if err := os.Chown(p, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) initdb() error {
	cmd := exec.Command(filepath.Join(c.bin, "initdb"), "-D", c.dataDir(), "-U", "postgres",
		"--auth=trust", "-E", "UTF8", "--locale=C", "--no-instructions")
	if !c.Durable {
		cmd.Args = append(cmd.Args, "--no-sync")
	}
	if err := c.run(cmd); err != nil {
		return fmt.Errorf("initdb in %s: %w", c.dataDir(), err)
	}
	return nil
}

// run runs a PostgreSQL command, as the postgres user when we are root.
func (c *Cluster) run(cmd *exec.Cmd) error {
	if c.asUser != "" {
		args := append([]string{"-u", c.asUser, "--"}, cmd.Args...)
		cmd.Path, _ = exec.LookPath("runuser")
		cmd.Args = append([]string{"runuser"}, args...)
		if cmd.Path == "" {
			return errors.New("runuser not found: it is needed to run postgres as the postgres user when root")
		}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%v: %s", err, lastLines(out.Bytes(), 10))
	}
	return nil
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on right now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// StartPrivate starts (creating it on first use) the persistent cluster that make run and
// analyze use when DATABASE_URL is unset: durable, reachable only through its unix socket in
// dir. PostgreSQL is installed first when it is missing and we are root.
func StartPrivate(ctx context.Context, dir string, logf func(string, ...any)) (*Cluster, error) {
	c, err := Open(Options{Dir: dir, Durable: true, Install: true, Log: logf})
	if err != nil {
		return nil, err
	}
	if logf != nil && !isFile(filepath.Join(c.dataDir(), "PG_VERSION")) {
		logf("creating the private PostgreSQL cluster in %s (first start only)", c.Dir)
	}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}
