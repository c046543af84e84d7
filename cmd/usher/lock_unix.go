//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockSuffix names the lock file beside an SQLite database: `usher serve`
// holds it shared while it runs, `usher restore` exclusively.
const lockSuffix = ".lock"

// errLocked says another process holds the lock.
var errLocked = errors.New("held by another process")

// lockFile takes an advisory lock (flock) on path, creating the file, and
// returns its release. exclusive fails at once with errLocked when anyone
// holds it; shared fails only against an exclusive holder. The kernel lets
// go when the process dies, so a crashed server leaves no stale lock.
func lockFile(path string, exclusive bool) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, fmt.Errorf("flock: %w", err)
	}
	return func() { f.Close() }, nil
}
