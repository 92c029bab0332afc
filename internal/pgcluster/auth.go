package pgcluster

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// superuser is the cluster's superuser, as initdb -U makes it.
const superuser = "postgres"

// hba is the whole pg_hba.conf: every connection, socket or loopback TCP, proves the password;
// a standby (standby.go) streams from the primary over loopback TCP with it too.
const hba = `# Written by xsell's pgcluster: the password is in ../password.
local all all scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
host  all all ::1/128 scram-sha-256
host  replication all 127.0.0.1/32 scram-sha-256
`

// newPassword makes a superuser's password: 192 random bits, hex so that it needs no escaping
// in a URL or SQL literal.
func newPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making the cluster's password: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// savePassword keeps the password in a file only the cluster's owner (and root) may read.
func (c *Cluster) savePassword(pw string) error {
	if err := c.run.writeFile(c.passwordFile(), []byte(pw+"\n")); err != nil {
		return err
	}
	c.password = pw
	return nil
}

func (c *Cluster) initdb() error {
	pw, err := newPassword()
	if err != nil {
		return err
	}
	if err := c.savePassword(pw); err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(c.bin, "initdb"), "-D", c.dataDir(), "-U", superuser,
		"--pwfile="+c.passwordFile(), "--auth=scram-sha-256",
		"-E", "UTF8", "--locale=C", "--no-instructions")
	if !c.Durable {
		cmd.Args = append(cmd.Args, "--no-sync")
	}
	if err := c.run.run(cmd); err != nil {
		return fmt.Errorf("initdb in %s: %w", c.dataDir(), err)
	}
	return c.run.writeFile(filepath.Join(c.dataDir(), "pg_hba.conf"), []byte(hba))
}

// secureLegacy gives a password to a cluster that an older xsell made with trust
// authentication, so that its data stays and other local users lose their way in.
func (c *Cluster) secureLegacy() error {
	if c.password != "" {
		return nil
	}
	if c.Running() {
		return fmt.Errorf("the cluster in %s was made by an older xsell, with no password, and its server is running: stop it (pg_ctl stop -D %s, as its owner) and start again, which gives it one", c.Dir, c.dataDir())
	}
	pw, err := newPassword()
	if err != nil {
		return err
	}
	// Single-user mode needs no authentication and no running server. The password file comes
	// last: while it is missing, the next start tries again.
	cmd := exec.Command(filepath.Join(c.bin, "postgres"), "--single", "-D", c.dataDir(), superuser)
	cmd.Stdin = strings.NewReader(fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'\n", superuser, pw))
	if err := c.run.run(cmd); err != nil {
		return fmt.Errorf("setting the password of the cluster in %s: %w", c.Dir, err)
	}
	if err := c.run.writeFile(filepath.Join(c.dataDir(), "pg_hba.conf"), []byte(hba)); err != nil {
		return err
	}
	return c.savePassword(pw)
}
