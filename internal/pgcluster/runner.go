package pgcluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
)

// runner runs PostgreSQL's commands as the user who owns the cluster: ourselves, or, when we
// are root (initdb and postgres refuse root), the postgres user through runuser.
type runner struct {
	user     string
	uid, gid int
	asOther  bool // commands go through runuser
}

func newRunner() (runner, error) {
	if os.Geteuid() != 0 {
		name := strconv.Itoa(os.Geteuid())
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
		return runner{user: name, uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	pw, err := user.Lookup("postgres")
	if err != nil {
		return runner{}, errors.New("running as root and there is no postgres user to run the cluster as (initdb refuses root): run `make setup`, which creates it, or run as a normal user")
	}
	if _, err := exec.LookPath("runuser"); err != nil {
		return runner{}, errors.New("runuser not found: it is needed to run postgres as the postgres user when root (Debian package util-linux)")
	}
	uid, _ := strconv.Atoi(pw.Uid)
	gid, _ := strconv.Atoi(pw.Gid)
	return runner{user: "postgres", uid: uid, gid: gid, asOther: true}, nil
}

// run runs cmd as the runner's user, with its output in the error when it fails.
func (r runner) run(cmd *exec.Cmd) error {
	name := filepath.Base(cmd.Args[0])
	if r.asOther {
		path, _ := exec.LookPath("runuser")
		cmd.Args = append([]string{"runuser", "-u", r.user, "--"}, cmd.Args...)
		cmd.Path = path
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, "LC_ALL=C")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v: %s", name, err, lastLines(out.Bytes(), 10))
	}
	return nil
}

// privateDir makes dir if needed and leaves it 0700, owned by the runner's user.
func (r runner) privateDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("cluster directory: %w", err)
	}
	return r.own(dir, 0o700)
}

// writeFile writes a file only the runner's user (and root) may read.
func (r runner) writeFile(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return r.own(path, 0o600)
}

func (r runner) own(path string, mode os.FileMode) error {
	if r.asOther {
		if err := os.Chown(path, r.uid, r.gid); err != nil {
			return fmt.Errorf("handing %s to %s: %w", path, r.user, err)
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	return nil
}

// canReach reports whether the runner's user can reach dir's parent: then dir, made by us and
// handed to it, is reachable too.
func (r runner) canReach(dir string) bool {
	if !r.asOther {
		return true
	}
	p := filepath.Dir(dir)
	for {
		if _, err := os.Stat(p); err == nil {
			break
		}
		p = filepath.Dir(p)
	}
	return r.run(exec.Command("test", "-x", p)) == nil
}
