package pgcluster

import (
	"errors"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// errNoBinaries says exactly what to install, and that this package does not install it.
var errNoBinaries = errors.New("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: run `make setup` (installs them with apt-get when you are root) or `sudo apt-get install postgresql`, or set DATABASE_URL to a server you have")

// findBinaries returns the directory of initdb and pg_ctl: pg_config's, Debian's newest
// /usr/lib/postgresql/N/bin (kept out of PATH), or PATH's.
func findBinaries() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if isFile(filepath.Join(dir, "initdb")) {
			return dir, nil
		}
	}
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
