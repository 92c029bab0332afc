package servertest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"testing"
)

// TestMain checks what Main promises: after the tests, the directory of the binary they built
// is gone.
func TestMain(m *testing.M) {
	code := Main(m)
	if binDir != "" {
		if _, err := os.Stat(binDir); !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(os.Stderr, "servertest.Main left the server binary's directory %s behind (stat: %v)\n", binDir, err)
			code = 1
		}
	}
	os.Exit(code)
}

func TestBinaryIsBuiltOnceAsAnExecutable(t *testing.T) {
	first := Binary(t)
	info, err := os.Stat(first)
	if err != nil {
		t.Fatalf("the built server: %v", err)
	}
	if !info.Mode().IsRegular() || info.Mode().Perm()&0o100 == 0 {
		t.Fatalf("the built server %s is not an executable file: %v", first, info.Mode())
	}
	if again := Binary(t); again != first {
		t.Fatalf("second Binary = %s, want the first build %s", again, first)
	}
}
