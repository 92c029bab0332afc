package pgcluster

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// relocationRoot holds the clusters of directories the postgres user cannot reach, such as a
// checkout under root's 0700 home: one directory per asked-for path, kept across runs.
const relocationRoot = "/var/lib/xsell"

// locate returns where the cluster asked for in want lives: want itself when the runner's user
// can reach it, else a directory of its own under relocationRoot, keyed by want's path. A
// cluster already made in the relocated directory is found there again.
func locate(want string, r runner) (string, error) {
	if !r.asOther {
		return want, nil
	}
	alt := relocated(want)
	if isFile(filepath.Join(alt, "data", "PG_VERSION")) || !r.canReach(want) {
		if err := os.MkdirAll(relocationRoot, 0o711); err != nil {
			return "", fmt.Errorf("the %s user cannot reach %s, and %s cannot be made for its cluster: %w (set DATABASE_URL, or open the parents with chmod o+x)", r.user, want, relocationRoot, err)
		}
		return alt, nil
	}
	return want, nil
}

// relocated names want's cluster under relocationRoot: readable (the last two elements of the
// path) and unique (a hash of all of it).
func relocated(want string) string {
	sum := sha256.Sum256([]byte(want))
	name := filepath.Base(filepath.Dir(want)) + "-" + filepath.Base(want)
	name = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return -1
	}, name)
	if len(name) > 40 {
		name = name[:40]
	}
	return filepath.Join(relocationRoot, name+"-"+hex.EncodeToString(sum[:5]))
}
