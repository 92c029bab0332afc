// Command devdb runs a command against a throwaway PostgreSQL cluster, so that make test needs
// no database server on the machine.
//
//	devdb exec -- go test ./...
//
// When DATABASE_URL is set, the command runs against it and no cluster is made. Otherwise a
// cluster is created in a temporary directory, DATABASE_URL points the command at it, and the
// cluster is removed when the command ends, whatever its outcome.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/xsell/xsell/internal/pgcluster"
)

func main() {
	args := os.Args[1:]
	if len(args) < 3 || args[0] != "exec" || args[1] != "--" {
		fmt.Fprintln(os.Stderr, "usage: devdb exec -- COMMAND [ARGS...]")
		os.Exit(2)
	}
	os.Exit(execWithCluster(args[2:]))
}

func execWithCluster(command []string) int {
	if os.Getenv("DATABASE_URL") != "" {
		return runCommand(command, os.Environ())
	}
	dir, err := os.MkdirTemp("", "xsell-test-pg-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	port, err := pgcluster.FreePort()
	if err != nil {
		return fail(err)
	}
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, "devdb: "+f+"\n", a...) }
	c, err := pgcluster.Open(pgcluster.Options{Dir: dir, Port: port, Log: logf})
	if err != nil {
		return fail(err)
	}
	if err := c.Start(context.Background()); err != nil {
		_ = c.Remove()
		return fail(err)
	}
	defer func() {
		if err := c.Remove(); err != nil {
			logf("removing the test cluster: %v", err)
		}
	}()
	logf("throwaway cluster on 127.0.0.1:%d in %s", port, c.Dir)
	return runCommand(command, append(os.Environ(), "DATABASE_URL="+c.URL()))
}

// runCommand runs the command to its end; an interrupt or termination goes to it, and we clean
// up after. The signals are caught, not ignored: an ignored signal stays ignored in the child
// across exec, and a test run could then only be stopped with SIGKILL.
func runCommand(command, env []string) int {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		if exit.ExitCode() < 0 {
			return 1
		}
		return exit.ExitCode()
	case err != nil:
		return fail(err)
	}
	return 0
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "devdb:", err)
	return 1
}
