package launch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// ListeningURL returns the URL a line of a server's output announces with
// "listening on URL" (the servers log it once their socket is open; see
// cmd/internal/servercmd), and whether the line is one. The debug
// server's "... (pprof, metrics) listening on URL" is not one.
func ListeningURL(line string) (string, bool) {
	i := strings.Index(line, "listening on http")
	if i < 0 || strings.Contains(line, "pprof") {
		return "", false
	}
	u := line[i+len("listening on "):]
	if j := strings.IndexAny(u, " \t\r\n\""); j >= 0 {
		u = u[:j]
	}
	return u, true
}

// LineWriter copies a process's output to W line by line, each line with
// Prefix, under Mu so that lines of different processes never mix.
type LineWriter struct {
	Mu     *sync.Mutex
	W      io.Writer
	Prefix string
	OnLine func(line []byte) // if set, sees each line first
	buf    []byte
}

// MaxLine bounds a line kept waiting for its end.
const MaxLine = 16 << 10

func (l *LineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			if len(l.buf) > MaxLine {
				l.emit(append(l.buf, '\n'))
				l.buf = l.buf[:0]
			}
			return len(p), nil
		}
		l.emit(l.buf[:i+1])
		l.buf = l.buf[:copy(l.buf, l.buf[i+1:])]
	}
}

// Flush writes a last line that had no line break.
func (l *LineWriter) Flush() {
	if len(l.buf) > 0 {
		l.emit(append(l.buf, '\n'))
		l.buf = l.buf[:0]
	}
}

func (l *LineWriter) emit(line []byte) {
	if l.OnLine != nil {
		l.OnLine(line)
	}
	l.Mu.Lock()
	defer l.Mu.Unlock()
	_, _ = io.WriteString(l.W, l.Prefix)
	_, _ = l.W.Write(line)
}

// Child is a server process started by Start.
type Child struct {
	Cmd *exec.Cmd
	// Listening is closed when the process prints "listening on": only
	// then can an answer on its port be its own, not that of another
	// server already there.
	Listening <-chan struct{}
	Done      <-chan struct{} // closed once the process has been waited for
	err       error
}

// Start starts cmd with its stdout and stderr copied to w line by line,
// each line with prefix, under mu (nil: a lock of its own). The child
// runs in a process group of its own, so that a Ctrl-C in the terminal
// reaches this program only, which then stops its children in order; on
// Linux the kernel SIGTERMs it if this program dies without stopping it
// (e.g. SIGKILL), so that no server is orphaned. Its output is flushed
// before Done is closed.
func Start(cmd *exec.Cmd, w io.Writer, mu *sync.Mutex, prefix string) (*Child, error) {
	if mu == nil {
		mu = new(sync.Mutex)
	}
	listening := make(chan struct{})
	var once sync.Once
	out := &LineWriter{Mu: mu, W: w, Prefix: prefix, OnLine: func(line []byte) {
		if _, ok := ListeningURL(string(line)); ok {
			once.Do(func() { close(listening) })
		}
	}}
	cmd.Stdout = out // the same writer twice: exec uses one pipe and one goroutine
	cmd.Stderr = out
	cmd.SysProcAttr = childSysProcAttr()
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	c := &Child{Cmd: cmd, Listening: listening, Done: done}
	go func() {
		c.err = cmd.Wait()
		out.Flush()
		close(done)
	}()
	return c, nil
}

// Pid is the process's id.
func (c *Child) Pid() int { return c.Cmd.Process.Pid }

// Exited reports whether the process has exited and been waited for.
func (c *Child) Exited() bool { return IsClosed(c.Done) }

// Err is the process's exit error; read it once Done is closed.
func (c *Child) Err() error { return c.err }

// Terminate asks the process to shut down gracefully (SIGTERM; where
// there is none, it is killed).
func (c *Child) Terminate() error { return terminate(c.Cmd.Process) }

// ExitText describes an exit error, nil included.
func ExitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// IsClosed reports whether c is closed.
func IsClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// statusClient probes /status; no keep-alive, so that nothing lingers.
var statusClient = &http.Client{
	Timeout:   time.Second,
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
}

// WaitStatus waits until c is listening, then polls baseURL/status until
// it answers 200; it gives up when ctx ends, the deadline passes or c
// exits.
func (c *Child) WaitStatus(ctx context.Context, baseURL string, deadline time.Time) error {
	return waitStatus(ctx, baseURL, deadline, c.Listening, c.Done)
}

func waitStatus(ctx context.Context, baseURL string, deadline time.Time, listening, dead <-chan struct{}) error {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	// A probe in flight ends as soon as the process is gone.
	go func() {
		select {
		case <-dead:
			cancel()
		case <-ctx.Done():
		}
	}()
	select {
	case <-listening:
	case <-dead:
		return errors.New("exited")
	case <-ctx.Done():
		if IsClosed(dead) {
			return errors.New("exited")
		}
		if time.Now().After(deadline) {
			return errors.New(`not ready in time: it did not print "listening on"`)
		}
		return ctx.Err()
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/status", nil)
		if err != nil {
			return err
		}
		resp, err := statusClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/status answered %s", resp.Status)
		}
		last = err
		select {
		case <-dead:
			return errors.New("exited")
		case <-ctx.Done():
			if IsClosed(dead) {
				return errors.New("exited")
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) && time.Now().After(deadline) {
				return fmt.Errorf("not ready in time: %v", last)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}
