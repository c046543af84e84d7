package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
// Without it, the module version or VCS revision from the build info is used.
var version = ""

const versionHelp = `Usage: usher version

Prints the version of this binary, its VCS revision when known, and the Go
version it was built with.
`

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version")
	if err := parse(fs, versionHelp, args, stdout, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "usher %s (%s)\n", buildVersion(), runtime.Version())
	return nil
}

func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev != "" && (v == "(devel)" || v == "") {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		return v + " " + rev + dirty
	}
	return v
}
