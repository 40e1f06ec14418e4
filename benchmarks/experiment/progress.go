package experiment

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/bank/gobank/benchmarks/loadgen"
)

// progress shows how far the grid is. On a terminal it is a bar redrawn
// in place on one line (cells done / total, elapsed, ETA, the current
// cell and how long it has run); elsewhere (a log, CI) a plain line as
// each cell starts.
type progress struct {
	w     io.Writer
	tty   bool
	total int
	start time.Time
	guess time.Duration // a cell's wall time before any has finished

	mu       sync.Mutex
	done     int
	current  string
	cellFrom time.Time
	shown    bool // the bar is on screen

	quit chan struct{}
	wg   sync.WaitGroup
}

// progressTick is how often the bar is redrawn.
const progressTick = 500 * time.Millisecond

// barWidth is the bar's width in characters.
const barWidth = 24

// newProgress starts showing the progress of total cells on w (nil shows
// nothing). guess estimates a cell's wall time until the first ends.
func newProgress(w io.Writer, total int, guess time.Duration) *progress {
	p := &progress{w: w, tty: w != nil && loadgen.IsTerminal(w), total: total, start: time.Now(), guess: guess, quit: make(chan struct{})}
	if p.tty {
		p.wg.Go(func() {
			t := time.NewTicker(progressTick)
			defer t.Stop()
			for {
				select {
				case <-p.quit:
					return
				case <-t.C:
					p.mu.Lock()
					p.draw()
					p.mu.Unlock()
				}
			}
		})
	}
	return p
}

// begin says that cell number i (0-based) starts.
func (p *progress) begin(i int, c Cell) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = i
	p.current = c.String()
	p.cellFrom = time.Now()
	if p.tty {
		p.draw()
		return
	}
	eta := ""
	if left, ok := p.left(); ok {
		eta = fmt.Sprintf(", ~%s left", left.Round(time.Second))
	}
	fmt.Fprintf(p.w, "[%d/%d %s elapsed%s] %s\n", i+1, p.total, time.Since(p.start).Round(time.Second), eta, c)
}

// print writes s to out (a finished cell's line) without garbling the
// bar: it is cleared first, and redrawn at the next cell or tick.
func (p *progress) print(out io.Writer, s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	_, _ = io.WriteString(out, s)
}

// close stops the bar and removes it.
func (p *progress) close() {
	close(p.quit)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	p.current = ""
}

// left estimates the time the grid still needs: the mean wall time of
// the cells done (or the guess) for each cell not done, less what the
// current cell has run.
func (p *progress) left() (time.Duration, bool) {
	per := p.guess
	if p.done > 0 {
		per = time.Since(p.start) / time.Duration(p.done)
	}
	if per <= 0 {
		return 0, false
	}
	left := per * time.Duration(p.total-p.done)
	if !p.cellFrom.IsZero() {
		left -= min(time.Since(p.cellFrom), per)
	}
	return max(left, 0), true
}

// draw redraws the bar (p.mu held).
func (p *progress) draw() {
	if !p.tty || p.current == "" {
		return
	}
	filled := 0
	if p.total > 0 {
		filled = barWidth * p.done / p.total
	}
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", barWidth-filled)
	eta := ""
	if left, ok := p.left(); ok {
		eta = fmt.Sprintf("  ~%s left", left.Round(time.Second))
	}
	cur := p.current
	if len(cur) > 60 {
		cur = cur[:59] + "…"
	}
	fmt.Fprintf(p.w, "\r[%s] %d/%d  %s elapsed%s  %s (%ds)\x1b[K", bar, p.done, p.total,
		time.Since(p.start).Round(time.Second), eta, cur, int(time.Since(p.cellFrom).Seconds()))
	p.shown = true
}

// clear erases the bar (p.mu held).
func (p *progress) clear() {
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
}
