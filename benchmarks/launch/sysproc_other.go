//go:build !unix

package launch

import (
	"os"
	"syscall"
)

// childSysProcAttr has nothing to set where there are no process groups.
func childSysProcAttr() *syscall.SysProcAttr { return nil }

// terminate stops a child. Without SIGTERM there is no graceful request a
// console process can receive from another, so it is killed.
func terminate(p *os.Process) error { return p.Kill() }
