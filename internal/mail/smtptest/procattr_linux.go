package smtptest

import (
	"os/exec"
	"syscall"
)

// dieWithParent kills the server when the test binary dies, even by SIGKILL.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
