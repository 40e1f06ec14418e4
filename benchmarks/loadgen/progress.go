package loadgen

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// IsTerminal reports whether w is a character device, without a terminal
// library: enough to choose between redrawing one line and printing one
// line per interval (which suits logs and CI).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// startProgress prints the progress line every interval until the
// returned stop is called; stop prints a last line and waits. A nil w
// prints nothing.
func startProgress(w io.Writer, interval time.Duration, start time.Time, live func() (done, ok, dropped int64)) (stop func()) {
	if w == nil {
		return func() {}
	}
	tty := IsTerminal(w)
	if interval <= 0 {
		interval = time.Second
		if tty {
			interval = 250 * time.Millisecond
		}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	var lastDone int64
	lastAt := start
	line := func(final bool) {
		now := time.Now()
		done, ok, dropped := live()
		rate := 0.0
		if dt := now.Sub(lastAt).Seconds(); dt > 0 {
			rate = float64(done-lastDone) / dt
		}
		if final {
			rate = float64(done) / now.Sub(start).Seconds()
		}
		lastDone, lastAt = done, now
		s := fmt.Sprintf("%6.1fs  %d requests  %.0f req/s  %d errors", now.Sub(start).Seconds(), done, rate, done-ok)
		if dropped > 0 {
			s += fmt.Sprintf("  %d dropped", dropped)
		}
		if tty {
			// \r and erase-to-end-of-line redraw the same line.
			fmt.Fprintf(w, "\r%s\x1b[K", s)
			if final {
				fmt.Fprintln(w)
			}
		} else {
			fmt.Fprintln(w, s)
		}
	}
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				line(true)
				return
			case <-t.C:
				line(false)
			}
		}
	})
	return func() {
		close(quit)
		wg.Wait()
	}
}
