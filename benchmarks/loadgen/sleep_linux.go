package loadgen

import (
	"syscall"
	"time"
)

// preciseSleepBelow is the stretch of an open-loop wait left to
// preciseSleep rather than to a Go timer.
const preciseSleepBelow = 2 * time.Millisecond

// minPreciseSleep is the shortest wait worth a system call: shorter ones
// come at rates where the process is busy and a Go timer is precise enough.
const minPreciseSleep = 25 * time.Microsecond

// preciseSleep blocks this thread for d in the kernel (nanosleep: tens of
// microseconds late at most, where a Go timer in an idle process may be a
// millisecond late). The Go scheduler runs other goroutines meanwhile.
func preciseSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for {
		var left syscall.Timespec
		if err := syscall.Nanosleep(&ts, &left); err != syscall.EINTR {
			return
		}
		ts = left // interrupted by a signal: sleep the rest
	}
}
