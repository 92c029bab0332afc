// Package servertest builds the server binary once per test process and runs it as a
// subprocess, for tests that need a real process: crashes, restarts, two servers at once.
//
// A package whose tests use it has a TestMain that calls Main, which removes the built binary
// when the tests end: each build is tens of megabytes, and one left behind per test process
// fills /tmp within a day of test runs.
package servertest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/pgcluster"
)

var (
	buildOnce sync.Once
	binary    string
	binDir    string
	buildErr  error
	inMain    bool
)

// Main runs the package's tests and then removes the server binary Binary built, if any. A
// TestMain calls it as os.Exit(servertest.Main(m)). A test process that dies without
// returning from m.Run (a panic, go test's -timeout) still leaves its directory behind.
func Main(m *testing.M) int {
	inMain = true
	code := m.Run()
	if binDir != "" {
		if err := os.RemoveAll(binDir); err != nil {
			fmt.Fprintf(os.Stderr, "servertest: removing the server binary: %v\n", err)
			return 1
		}
	}
	return code
}

// Binary builds cmd/server into a temporary directory, once per test process. It fails the
// test when the package's TestMain does not run through Main, since nothing else would remove
// the directory.
func Binary(t testing.TB) string {
	t.Helper()
	if !inMain {
		t.Fatal("servertest: this package's TestMain must call servertest.Main, which removes the server binary when the tests end")
	}
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "xsell-server-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binDir = dir
		binary = filepath.Join(dir, "server")
		cmd := exec.Command("go", "build", "-o", binary, "./cmd/server")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/server: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// Env is the environment of a server subprocess: this process's, without DATABASE_URL and
// every XSELL_ variable a developer's shell may hold (keys, addresses, log level), so that a
// test sees the server's defaults plus extra and nothing else.
func Env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "XSELL_") || strings.HasPrefix(kv, "DATABASE_URL=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// Command is the server binary run with args in Env(extra...), for one-shot commands such as
// migrate.
func Command(t testing.TB, extra []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	cmd.Env = Env(extra...)
	return cmd
}

// Process is a running server.
type Process struct {
	URL  string // http://127.0.0.1:PORT
	Addr string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

// Start runs the server against databaseURL with the given extra environment, waits until
// /readyz answers 200 (or fails the test after 30 s), and kills it when the test ends.
func Start(t testing.TB, databaseURL string, env ...string) *Process {
	t.Helper()
	port, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return StartAt(t, addr, databaseURL, env...)
}

// StartAt is Start on a given address, for a restart on the same port.
func StartAt(t testing.TB, addr, databaseURL string, env ...string) *Process {
	t.Helper()
	p := Launch(t, addr, databaseURL, env...)
	p.WaitReady(t)
	return p
}

// Launch starts the server like StartAt but returns at once, for tests that start several
// servers together; WaitReady waits for it.
func Launch(t testing.TB, addr, databaseURL string, env ...string) *Process {
	t.Helper()
	p := &Process{URL: "http://" + addr, Addr: addr, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = Command(t, append([]string{"DATABASE_URL=" + databaseURL, "XSELL_ADDR=" + addr, "XSELL_LOG_LEVEL=warn"}, env...))
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("server output:\n%s", p.Output())
		}
	})
	return p
}

// WaitReady waits until /readyz answers 200, or fails the test when the server exits first or
// after 30 s.
func (p *Process) WaitReady(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get(p.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("server exited before it was ready: %v\n%s", p.err, p.Output())
		case <-ctx.Done():
			t.Fatalf("server not ready after 30s\n%s", p.Output())
		case <-tick.C:
		}
	}
}

// Signal sends sig to the server.
func (p *Process) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits for the server to exit and returns its exit error.
func (p *Process) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("server still running after %s", timeout)
	}
}

// Kill ends the server at once, as a crash would (SIGKILL), and waits for it.
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Output is what the server printed so far.
func (p *Process) Output() string { return p.out.String() }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(b)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
