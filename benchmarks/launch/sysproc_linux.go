package launch

import (
	"os"
	"syscall"
)

// childSysProcAttr puts a server child in a process group of its own, so
// that a Ctrl-C in the terminal reaches its parent only, which then stops
// the children in order; and asks the kernel to SIGTERM the child if the
// parent dies without stopping it (e.g. SIGKILL), so that no server is
// orphaned.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// terminate asks a child to shut down gracefully.
func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
