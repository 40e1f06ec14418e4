// Package oplog writes the operation log of the bank's data and business
// servers: one line per operation, in the form
//
//	MM/DD/YYYY HH:MM:SS, N, ID_NEGOC, OPERACAO, P1, P2, ...
//
// The log sits on the request path of every server, so it is buffered,
// flushed in the background, and allocation-free once warmed up. Lines are
// meant to be split on ", " by audit tools, which is why every caller-supplied
// field is sanitized before it is written.
package oplog

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// timeLayout is the MM/DD/YYYY HH:MM:SS format the log consumers expect.
	timeLayout = "01/02/2006 15:04:05"

	// defaultFlushInterval bounds how stale the file can be after a crash
	// while still batching many lines per write syscall.
	defaultFlushInterval = 100 * time.Millisecond

	// bufSize is large enough that a busy server issues few write syscalls.
	bufSize = 64 << 10

	// maxPooledEntry keeps one huge line from pinning a large buffer in the
	// pool forever.
	maxPooledEntry = 4 << 10
)

// Options tunes a Log; the zero value gives production defaults.
type Options struct {
	// FlushInterval bounds how long a line may sit in memory before it
	// reaches the writer, limiting what a crash can lose. Zero or negative
	// means 100ms.
	FlushInterval time.Duration

	// Now lets tests pin the clock so lines are reproducible. Nil means
	// time.Now. The timestamp is rendered in the location of the returned
	// time, which for time.Now is local time.
	Now func() time.Time
}

// Log is safe for concurrent use. A nil *Log is a valid, silent log so that
// servers can run without one and without nil checks at every call site.
type Log struct {
	now      func() time.Time
	interval time.Duration
	closer   io.Closer // nil when the Log does not own the writer

	// closed lets Entry skip building lines that Done would drop anyway;
	// Done re-checks under mu, which is what actually guarantees it.
	closed atomic.Bool

	mu    sync.Mutex
	bw    *bufio.Writer
	n     int64  // number of the last line written
	err   error  // first write error, reported by Flush and Close
	tsSec int64  // Unix second that ts was rendered for
	ts    []byte // cached timestamp, since most lines share a second
	hdr   []byte // scratch for the whole line, so Done does not allocate
	shut  bool   // set under mu by Close; later lines are dropped

	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// New returns a Log that writes to w. It starts a goroutine that flushes
// periodically, so the caller must Close the Log to release it. Close does
// not close w, since the caller owns it.
func New(w io.Writer, opt Options) *Log {
	if opt.FlushInterval <= 0 {
		opt.FlushInterval = defaultFlushInterval
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	l := &Log{
		now:      opt.Now,
		interval: opt.FlushInterval,
		bw:       bufio.NewWriterSize(w, bufSize),
		tsSec:    -1 << 63, // no real clock reading maps here, forcing a first render
		ts:       make([]byte, 0, len(timeLayout)+8),
		hdr:      make([]byte, 0, 64),
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	go l.flusher()
	return l
}

// Open returns a Log appending to the file at path, so restarts never lose
// earlier history. Numbering restarts at 1 in each process. The path "-"
// means standard output, which Close leaves open because the process, not
// the Log, owns it.
func Open(path string, opt Options) (*Log, error) {
	if path == "-" {
		return New(os.Stdout, opt), nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		// *PathError already names the path; wrapping keeps errors.Is usable.
		return nil, fmt.Errorf("oplog: %w", err)
	}
	l := New(f, opt)
	l.closer = f
	return l, nil
}

// flusher bounds the latency between Done and the bytes reaching the writer,
// without paying a syscall per line.
func (l *Log) flusher() {
	defer close(l.stopped)
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.mu.Lock()
			if !l.shut && l.bw.Buffered() > 0 {
				l.setErr(l.bw.Flush())
			}
			l.mu.Unlock()
		}
	}
}

// setErr keeps only the first error, because later ones are usually
// consequences of it and bufio stops writing after the first anyway.
// Must be called with mu held.
func (l *Log) setErr(err error) {
	if err != nil && l.err == nil {
		l.err = err
	}
}

// Flush pushes buffered lines to the writer now, for callers that need
// durability at a specific point (e.g. before replying). It returns the first
// write error seen so far, so a failure is not lost just because it happened
// during a background flush.
func (l *Log) Flush() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.shut {
		l.setErr(l.bw.Flush())
	}
	return l.err
}

// Close stops the background flusher, flushes what is buffered and closes
// the file if Open created it. It is idempotent so that shutdown paths can
// call it defensively; every call returns the result of the first. Entries
// finished after Close are dropped silently, because requests still in
// flight during shutdown must not crash the server.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		close(l.stop)
		<-l.stopped

		l.mu.Lock()
		defer l.mu.Unlock()
		l.shut = true
		l.setErr(l.bw.Flush())
		err := l.err
		if l.closer != nil {
			if cerr := l.closer.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			err = fmt.Errorf("oplog: close: %w", err)
		}
		l.closeErr = err
	})
	return l.closeErr
}

// Entry is one log line under construction. It comes from a pool, so it
// must not be used after Done. A nil *Entry ignores every call, which is
// what a nil or closed Log hands out.
type Entry struct {
	l   *Log
	buf []byte // ", id, op, params...\n"; timestamp and N are added by Done
}

var entryPool = sync.Pool{New: func() any { return new(Entry) }}

// Entry starts the line for operation op requested by caller id. The
// timestamp and number are assigned by Done, so that both follow file order.
func (l *Log) Entry(id, op string) *Entry {
	if l == nil || l.closed.Load() {
		return nil
	}
	e := entryPool.Get().(*Entry)
	e.l = l
	e.buf = appendField(e.buf[:0], id)
	e.buf = appendField(e.buf, op)
	return e
}

// Int appends an integer parameter without going through fmt.
func (e *Entry) Int(v int64) *Entry {
	if e == nil {
		return nil
	}
	e.buf = append(e.buf, ", "...)
	e.buf = strconv.AppendInt(e.buf, v, 10)
	return e
}

// Bool appends a boolean parameter in the original's words, Python's
// True and False (its data server logged "autentica, True").
func (e *Entry) Bool(v bool) *Entry {
	if e == nil {
		return nil
	}
	if v {
		e.buf = append(e.buf, ", True"...)
	} else {
		e.buf = append(e.buf, ", False"...)
	}
	return e
}

// Str appends a string parameter. Commas and line breaks are replaced by
// spaces so that a hostile value cannot add a column or forge a whole line.
func (e *Entry) Str(s string) *Entry {
	if e == nil {
		return nil
	}
	e.buf = appendField(e.buf, s)
	return e
}

// Done writes the line and recycles the Entry. Numbering and the timestamp
// happen under the Log's mutex so that N is strictly increasing in the file
// and lines from concurrent requests never interleave.
func (e *Entry) Done() {
	if e == nil {
		return
	}
	l := e.l
	e.buf = append(e.buf, '\n')

	l.mu.Lock()
	if !l.shut {
		l.n++
		t := l.now()
		if sec := t.Unix(); sec != l.tsSec {
			l.ts = t.AppendFormat(l.ts[:0], timeLayout)
			l.tsSec = sec
		}
		l.hdr = append(l.hdr[:0], l.ts...)
		l.hdr = append(l.hdr, ", "...)
		l.hdr = strconv.AppendInt(l.hdr, l.n, 10)
		l.hdr = append(l.hdr, e.buf...)
		// Flush only at line boundaries, so that each write(2) holds whole
		// lines: several processes (the business servers of `bank up`) may
		// append to one file, and O_APPEND keeps whole writes apart.
		if l.bw.Available() < len(l.hdr) && l.bw.Buffered() > 0 {
			l.setErr(l.bw.Flush())
		}
		_, err := l.bw.Write(l.hdr)
		l.setErr(err)
		if cap(l.hdr) > maxPooledEntry {
			l.hdr = make([]byte, 0, 64) // do not pin one huge line's buffer
		}
	}
	l.mu.Unlock()

	e.l = nil
	if cap(e.buf) <= maxPooledEntry {
		entryPool.Put(e)
	}
}

// unsafeChars are the bytes that would let a field break the line format.
const unsafeChars = ",\r\n"

// appendField appends ", " and s, neutralizing separators in s. The common
// clean case is a single copy.
func appendField(b []byte, s string) []byte {
	b = append(b, ", "...)
	if strings.IndexAny(s, unsafeChars) < 0 {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ',' || c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

// Buffer is an in-memory writer safe for concurrent use, for a Log whose
// lines are read back by the process itself (tests, the experiment).
type Buffer struct {
	mu sync.Mutex
	b  []byte
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b = append(b.b, p...)
	return len(p), nil
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.b)
}
