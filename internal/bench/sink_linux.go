package bench

import (
	"os/exec"
	"syscall"
)

// dieWithParent kills the SMTP sink when the benchmark dies, even by
// SIGKILL, so no server is left listening.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
