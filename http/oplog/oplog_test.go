package oplog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fixed is the example instant from the log specification.
var fixed = time.Date(2022, 5, 22, 2, 40, 4, 0, time.Local)

func fixedClock() time.Time { return fixed }

// lockedBuffer lets the test read what the background flusher writes
// without racing with it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// signalWriter reports each write on a channel so tests can wait for the
// flusher instead of sleeping.
type signalWriter struct {
	lockedBuffer
	wrote chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	n, err := w.lockedBuffer.Write(p)
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return n, err
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

// newTestLog returns a log whose timer never fires during a test, so output
// only appears through Flush/Close and assertions are deterministic.
func newTestLog(t *testing.T, w io.Writer, now func() time.Time) *Log {
	t.Helper()
	l := New(w, Options{FlushInterval: time.Hour, Now: now})
	t.Cleanup(func() { l.Close() })
	return l
}

func TestFormat(t *testing.T) {
	tests := []struct {
		name  string
		clock []time.Time // cycled through, one reading per line
		write func(l *Log)
		want  string
	}{
		{
			name:  "spec example",
			clock: []time.Time{fixed},
			write: func(l *Log) { l.Entry("10.0.0.7:5000", "getSaldo").Int(5).Int(1000).Done() },
			want:  "05/22/2022 02:40:04, 1, 10.0.0.7:5000, getSaldo, 5, 1000\n",
		},
		{
			name:  "no params",
			clock: []time.Time{fixed},
			write: func(l *Log) { l.Entry("c1", "ping").Done() },
			want:  "05/22/2022 02:40:04, 1, c1, ping\n",
		},
		{
			name:  "refusal with error as last param and negative int",
			clock: []time.Time{fixed},
			write: func(l *Log) {
				l.Entry("c1", "transfere").Int(3).Int(-250).Str("saldo insuficiente").Done()
			},
			want: "05/22/2022 02:40:04, 1, c1, transfere, 3, -250, saldo insuficiente\n",
		},
		{
			name:  "booleans in the original's words",
			clock: []time.Time{fixed},
			write: func(l *Log) {
				l.Entry("127.0.0.1", "autentica").Bool(true).Done()
				l.Entry("127.0.0.1", "autentica").Bool(false).Done()
			},
			want: "05/22/2022 02:40:04, 1, 127.0.0.1, autentica, True\n05/22/2022 02:40:04, 2, 127.0.0.1, autentica, False\n",
		},
		{
			name:  "empty string param keeps its column",
			clock: []time.Time{fixed},
			write: func(l *Log) { l.Entry("c1", "op").Str("").Int(1).Done() },
			want:  "05/22/2022 02:40:04, 1, c1, op, , 1\n",
		},
		{
			name: "numbering and timestamp cache across seconds",
			clock: []time.Time{
				fixed,
				fixed.Add(999 * time.Millisecond), // same second: cached text
				fixed.Add(time.Second),            // next second: re-rendered
				time.Date(2023, 12, 31, 23, 59, 59, 0, time.Local),
			},
			write: func(l *Log) {
				for i := range 4 {
					l.Entry("c", "op").Int(int64(i)).Done()
				}
			},
			want: "05/22/2022 02:40:04, 1, c, op, 0\n" +
				"05/22/2022 02:40:04, 2, c, op, 1\n" +
				"05/22/2022 02:40:05, 3, c, op, 2\n" +
				"12/31/2023 23:59:59, 4, c, op, 3\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := 0
			clock := func() time.Time {
				c := tt.clock[i%len(tt.clock)]
				i++
				return c
			}
			var buf bytes.Buffer
			l := newTestLog(t, &buf, clock)
			tt.write(l)
			if err := l.Flush(); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestSanitize(t *testing.T) {
	tests := []struct {
		name      string
		id, op, s string
		want      string
	}{
		{"clean", "10.0.0.7:5000", "getSaldo", "ok", "05/22/2022 02:40:04, 1, 10.0.0.7:5000, getSaldo, ok\n"},
		{"comma in param", "c", "op", "a, 2", "05/22/2022 02:40:04, 1, c, op, a  2\n"},
		{"comma in id", "1.2.3.4:5, 99", "op", "x", "05/22/2022 02:40:04, 1, 1.2.3.4:5  99, op, x\n"},
		{"newline in op", "c", "op\nforged", "x", "05/22/2022 02:40:04, 1, c, op forged, x\n"},
		{
			name: "forged line in param",
			id:   "c", op: "op",
			s:    "x\r\n05/22/2022 02:40:04, 2, evil, transfere, 1000000",
			want: "05/22/2022 02:40:04, 1, c, op, x  05/22/2022 02:40:04  2  evil  transfere  1000000\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := newTestLog(t, &buf, fixedClock)
			l.Entry(tt.id, tt.op).Str(tt.s).Done()
			if err := l.Flush(); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			got := buf.String()
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if n := strings.Count(got, "\n"); n != 1 {
				t.Errorf("got %d lines, want 1", n)
			}
			if n := strings.Count(got, ","); n != 4 {
				t.Errorf("got %d separators, want 4 (5 columns)", n)
			}
		})
	}
}

func TestConcurrentNumbering(t *testing.T) {
	const goroutines, perG = 8, 1000
	var buf bytes.Buffer
	l := New(&buf, Options{FlushInterval: time.Millisecond, Now: fixedClock})

	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			id := "g" + strconv.Itoa(g)
			for i := range perG {
				l.Entry(id, "op").Int(int64(i)).Str("payload-" + strconv.Itoa(i)).Done()
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	next := make([]int, goroutines) // next expected i for each goroutine
	sc := bufio.NewScanner(&buf)
	line := 0
	for sc.Scan() {
		line++
		f := strings.Split(sc.Text(), ", ")
		if len(f) != 6 {
			t.Fatalf("line %d garbled: %q", line, sc.Text())
		}
		if f[0] != "05/22/2022 02:40:04" || f[3] != "op" {
			t.Fatalf("line %d garbled: %q", line, sc.Text())
		}
		if n, err := strconv.Atoi(f[1]); err != nil || n != line {
			t.Fatalf("line %d has N %q, want %d", line, f[1], line)
		}
		g, err := strconv.Atoi(strings.TrimPrefix(f[2], "g"))
		if err != nil || g < 0 || g >= goroutines {
			t.Fatalf("line %d has bad id %q", line, f[2])
		}
		// Each goroutine's lines must appear in its own program order.
		if want := strconv.Itoa(next[g]); f[4] != want || f[5] != "payload-"+want {
			t.Fatalf("line %d: goroutine %d params %q %q, want %s", line, g, f[4], f[5], want)
		}
		next[g]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if line != goroutines*perG {
		t.Fatalf("got %d lines, want %d", line, goroutines*perG)
	}
}

func TestPeriodicFlush(t *testing.T) {
	w := &signalWriter{wrote: make(chan struct{}, 1)}
	l := New(w, Options{FlushInterval: 5 * time.Millisecond, Now: fixedClock})
	defer l.Close()

	l.Entry("c", "op").Int(1).Done()
	select {
	case <-w.wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("background flusher did not write within 10s")
	}
	if got, want := w.String(), "05/22/2022 02:40:04, 1, c, op, 1\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestClose(t *testing.T) {
	const want = "05/22/2022 02:40:04, 1, c, op, 1\n"
	tests := []struct {
		name string
		// open returns the log and a function reading what reached the sink
		// after Close.
		open func(t *testing.T) (*Log, func() string)
	}{
		{
			name: "New",
			open: func(t *testing.T) (*Log, func() string) {
				w := &lockedBuffer{}
				l := New(w, Options{FlushInterval: time.Hour, Now: fixedClock})
				return l, w.String
			},
		},
		{
			name: "Open file",
			open: func(t *testing.T) (*Log, func() string) {
				path := filepath.Join(t.TempDir(), "ops.log")
				l, err := Open(path, Options{FlushInterval: time.Hour, Now: fixedClock})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				return l, func() string {
					b, err := os.ReadFile(path)
					if err != nil {
						t.Fatal(err)
					}
					return string(b)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, read := tt.open(t)
			l.Entry("c", "op").Int(1).Done()
			if got := read(); got != "" {
				t.Fatalf("before Close got %q, want nothing (hour-long flush interval)", got)
			}
			for i := range 3 {
				if err := l.Close(); err != nil {
					t.Fatalf("Close #%d: %v", i+1, err)
				}
			}
			l.Entry("c", "late").Int(2).Done() // must not panic nor be written
			if err := l.Flush(); err != nil {
				t.Errorf("Flush after Close: %v", err)
			}
			if got := read(); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

func TestOpenAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ops.log")
	for range 2 {
		l, err := Open(path, Options{Now: fixedClock})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		l.Entry("c", "op").Done()
		if err := l.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const line = "05/22/2022 02:40:04, 1, c, op\n"
	if got := string(b); got != line+line {
		t.Errorf("got %q, want two runs each numbered from 1", got)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// The umask can only remove bits, so check none beyond 0644 are set.
	if perm := fi.Mode().Perm(); perm&^0o644 != 0 {
		t.Errorf("mode %v has bits beyond 0644", perm)
	}
}

func TestOpenStdout(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	orig := os.Stdout
	os.Stdout = w
	defer func() { os.Stdout = orig }()

	l, err := Open("-", Options{Now: fixedClock})
	if err != nil {
		t.Fatalf("Open(-): %v", err)
	}
	l.Entry("c", "op").Int(7).Done()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close must leave stdout open: this write fails if it was closed.
	if _, err := w.WriteString("still open\n"); err != nil {
		t.Fatalf("stdout closed by Close: %v", err)
	}
	w.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "05/22/2022 02:40:04, 1, c, op, 7\nstill open\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestOpenError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "dir", "ops.log")
	l, err := Open(path, Options{})
	if err == nil {
		l.Close()
		t.Fatal("Open in a missing directory succeeded")
	}
	if l != nil {
		t.Errorf("Open returned non-nil Log with error")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not mention %q", err, path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap fs.ErrNotExist", err)
	}
}

func TestWriteError(t *testing.T) {
	boom := errors.New("disk full")
	l := New(errWriter{boom}, Options{FlushInterval: time.Hour, Now: fixedClock})
	l.Entry("c", "op").Done()
	if err := l.Flush(); !errors.Is(err, boom) {
		t.Errorf("Flush = %v, want %v", err, boom)
	}
	// The first error must survive later calls.
	if err := l.Flush(); !errors.Is(err, boom) {
		t.Errorf("second Flush = %v, want %v", err, boom)
	}
	if err := l.Close(); !errors.Is(err, boom) {
		t.Errorf("Close = %v, want %v", err, boom)
	}
}

func TestNilLog(t *testing.T) {
	var l *Log
	e := l.Entry("c", "op")
	if e != nil {
		t.Fatalf("nil Log Entry = %v, want nil", e)
	}
	if got := e.Int(1).Str("x"); got != nil {
		t.Errorf("nil Entry chain = %v, want nil", got)
	}
	e.Done()
	if err := l.Flush(); err != nil {
		t.Errorf("nil Flush = %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("nil Close = %v", err)
	}
}

func BenchmarkEntry(b *testing.B) {
	l := New(io.Discard, Options{})
	defer l.Close()
	b.ReportAllocs()
	for b.Loop() {
		l.Entry("10.0.0.7:5000", "getSaldo").Int(5).Int(1000).Str("ok").Done()
	}
}

func BenchmarkEntryParallel(b *testing.B) {
	l := New(io.Discard, Options{})
	defer l.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Entry("10.0.0.7:5000", "getSaldo").Int(5).Int(1000).Str("ok").Done()
		}
	})
}

// ExampleLog shows the line a data server writes for a balance query.
func ExampleLog() {
	l := New(os.Stdout, Options{Now: func() time.Time {
		return time.Date(2022, 5, 22, 2, 40, 4, 0, time.Local)
	}})
	defer l.Close()
	l.Entry("10.0.0.7:5000", "getSaldo").Int(5).Int(1000).Done()
	if err := l.Flush(); err != nil {
		fmt.Println(err)
	}
	// Output: 05/22/2022 02:40:04, 1, 10.0.0.7:5000, getSaldo, 5, 1000
}

// TestSharedFileKeepsLinesWhole has two Logs, as two processes would,
// append to one file at once: every write must hold whole lines, so that
// no line in the file is cut by the other's.
func TestSharedFileKeepsLinesWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.log")
	var logs []*Log
	for range 2 {
		l, err := Open(path, Options{FlushInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, l)
	}
	const perLog = 20000
	var wg sync.WaitGroup
	for i, l := range logs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("server-%d", i)
			for j := range perLog {
				l.Entry(id, "transferencia").Int(int64(j)).Str("padding-padding-padding").Done()
			}
		}()
	}
	wg.Wait()
	for _, l := range logs {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^\d\d/\d\d/\d{4} \d\d:\d\d:\d\d, \d+, server-[01], transferencia, \d+, padding-padding-padding$`)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 2*perLog {
		t.Fatalf("%d lines, want %d", len(lines), 2*perLog)
	}
	for _, l := range lines {
		if !line.MatchString(l) {
			t.Fatalf("cut or mixed line %q", l)
		}
	}
}
