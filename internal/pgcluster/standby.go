package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// StartStandby makes a hot standby of the running primary c in opts.Dir (a streaming replica
// copied with pg_basebackup, answering read-only queries) and starts it. Its password is the
// primary's; applicationName names it in the primary's pg_stat_replication and in
// synchronous_standby_names. Remove deletes it as any cluster.
func (c *Cluster) StartStandby(ctx context.Context, opts Options, applicationName string) (*Cluster, error) {
	if c.Port == 0 || c.password == "" {
		return nil, errors.New("a standby streams from a primary reachable over TCP with a password")
	}
	s, err := Open(opts)
	if err != nil {
		return nil, err
	}
	if s.Port == 0 {
		return nil, errors.New("a standby needs a TCP port of its own")
	}
	if s.exists() {
		return nil, fmt.Errorf("%s holds a cluster already", s.Dir)
	}
	if err := s.prepareDirs(); err != nil {
		return nil, err
	}
	if err := s.savePassword(c.password); err != nil {
		return nil, err
	}
	// -R writes standby.signal and primary_conninfo (password included, in the data
	// directory only its owner reads); -X stream copies the WAL written meanwhile.
	conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s application_name=%s",
		c.Port, superuser, c.password, applicationName)
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "pg_basebackup"), "-D", s.dataDir(),
		"-d", conninfo, "-X", "stream", "-R", "--checkpoint=fast", "--no-sync")
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
	if err := s.run.run(cmd); err != nil {
		_ = os.RemoveAll(s.dataDir())
		return nil, fmt.Errorf("copying the primary on port %s: %w", strconv.Itoa(c.Port), err)
	}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}
