//go:build !unix

package main

import "errors"

const lockSuffix = ".lock"

var errLocked = errors.New("held by another process")

// lockFile does nothing where flock is missing: there, stop `usher serve`
// before `usher restore` yourself (docs/operations.md says so).
func lockFile(path string, exclusive bool) (func(), error) { return func() {}, nil }
