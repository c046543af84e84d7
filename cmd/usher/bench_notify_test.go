package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/store/storetest"
)

func TestBenchFlagErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"UnknownSuite", []string{"bench", "--suites", "usage,mail"}, `unknown benchmark "mail"`},
		{"NegativeAccounts", []string{"bench", "--notify", "-5"}, "--notify -5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := cli(t, c.args...)
			if code != exitUsage {
				t.Fatalf("exit: got %d, want %d (stderr %q)", code, exitUsage, stderr)
			}
			if line := oneErrorLine(t, stderr); !strings.Contains(line, c.want) {
				t.Errorf("stderr %q does not contain %q", line, c.want)
			}
		})
	}
}

// TestBenchNotifyPrintsTheTableOnBothEngines runs only the notification
// benchmark, small, and checks that the table reaches stdout and --out.
func TestBenchNotifyPrintsTheTableOnBothEngines(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bench.md")
	code, stdout, stderr := cli(t, "bench", "--suites", "notify", "--notify", "20", "--postgres", storetest.PostgresURL(), "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := "| received by the sink (scheduler / bare) | 20 | 20 / 20 | 20 / 20 |"
	if !strings.Contains(stdout, want) {
		t.Fatalf("stdout lacks %q:\n%s", want, stdout)
	}
	if strings.Contains(stdout, "ingest") {
		t.Errorf("--suites notify also ran the usage benchmark:\n%s", stdout)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != stdout {
		t.Errorf("--out differs from stdout:\n%s", b)
	}
}

// TestBenchReclaimPrintsTheTableOnBothEngines runs only the reclaim
// benchmark, tiny, and checks that its table, and only its, reaches stdout.
func TestBenchReclaimPrintsTheTableOnBothEngines(t *testing.T) {
	code, stdout, stderr := cli(t, "bench", "--suites", "reclaim", "--scale", "0.0005", "--postgres", storetest.PostgresURL())
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"| seats previewed / warned / reclaimed / unassigned | 15 | 15 / 15 / 15 / 15 | 15 / 15 / 15 / 15 |", "| warnings / notices delivered | 15 / 15 | 15 / 15 | 15 / 15 |"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "ingest") || strings.Contains(stdout, "scheduler ÷ bare") {
		t.Errorf("--suites reclaim also ran another benchmark:\n%s", stdout)
	}
}
