//go:build !linux

package loadgen

import "time"

// preciseSleepBelow is the stretch of an open-loop wait left to
// preciseSleep rather than to a Go timer: none here.
const preciseSleepBelow = 0

// minPreciseSleep: preciseSleep is never used in place of a timer here.
const minPreciseSleep = time.Duration(1<<63 - 1)

// preciseSleep sleeps d with a Go timer: elsewhere than Linux no more
// precise sleep is used.
func preciseSleep(d time.Duration) { time.Sleep(d) }
