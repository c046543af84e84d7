package bench_test

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// buildUsher builds the usher binary into a temporary directory, for the
// benchmark's two `usher serve` processes.
func buildUsher(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "usher")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/usherhq/usher/cmd/usher").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
