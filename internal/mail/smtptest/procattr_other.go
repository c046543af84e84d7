//go:build !linux

package smtptest

import "os/exec"

func dieWithParent(cmd *exec.Cmd) {}
