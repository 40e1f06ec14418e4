//go:build unix && !linux

package launch

import (
	"os"
	"syscall"
)

// childSysProcAttr puts a server child in a process group of its own, so
// that a Ctrl-C in the terminal reaches its parent only, which then stops
// the children in order.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// terminate asks a child to shut down gracefully.
func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
