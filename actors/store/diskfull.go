package store

import (
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Pebble retries a failed background job (a flush, a compaction) at once
// and for ever (compaction.go: "TODO(peter): count consecutive flush errors
// and backoff"): on a full disk that is a flush per few milliseconds, an
// error line each and a core spent, while nothing changes until space is
// freed. The store therefore makes every write that fails for lack of
// space wait before it returns its error, longer after each failure up to
// a second, which paces pebble's retries without changing them; it counts
// pebble's background errors and logs them once per interval with their
// count, and says when background writes succeed again.
const (
	diskFullBackoffMin = 10 * time.Millisecond
	diskFullBackoffMax = time.Second
	// backgroundReportEvery bounds the background error lines: one per
	// interval, with the number of errors since the last line.
	backgroundReportEvery = 10 * time.Second
)

// isDiskFull reports whether err says the file system has no room left.
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// backoff paces writes that fail for lack of space. The delay doubles
// with each failure that follows another within twice the longest delay,
// and starts again from the shortest after a quiet spell; Close ends
// every wait at once.
type backoff struct {
	mu    sync.Mutex
	last  time.Time
	delay time.Duration
	stop  chan struct{}
	once  sync.Once
}

func newBackoff() *backoff { return &backoff{stop: make(chan struct{})} }

// failed waits before a write returns err, when err is a full disk's.
func (b *backoff) failed(err error) {
	if err == nil || !isDiskFull(err) {
		return
	}
	now := time.Now()
	b.mu.Lock()
	switch {
	case b.last.IsZero() || now.Sub(b.last) > 2*diskFullBackoffMax:
		b.delay = diskFullBackoffMin
	default:
		b.delay = min(2*b.delay, diskFullBackoffMax)
	}
	b.last = now
	d := b.delay
	b.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-b.stop:
	}
}

// close ends the waits in progress and makes later ones return at once,
// so that closing the database does not wait out a retry's delay.
func (b *backoff) close() { b.once.Do(func() { close(b.stop) }) }

// backoffFS is a file system whose write operations wait (see backoff)
// before they report a full disk. Reads and removals, which free space,
// pass through untouched.
type backoffFS struct {
	vfs.FS
	b *backoff
}

func (fs backoffFS) wrap(f vfs.File, err error) (vfs.File, error) {
	fs.b.failed(err)
	if err != nil {
		return nil, err
	}
	return backoffFile{File: f, b: fs.b}, nil
}

// Create implements vfs.FS.
func (fs backoffFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.Create(name, category))
}

// OpenReadWrite implements vfs.FS.
func (fs backoffFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenReadWrite(name, category, opts...))
}

// ReuseForWrite implements vfs.FS.
func (fs backoffFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.ReuseForWrite(oldname, newname, category))
}

// Link implements vfs.FS.
func (fs backoffFS) Link(oldname, newname string) error {
	err := fs.FS.Link(oldname, newname)
	fs.b.failed(err)
	return err
}

// Rename implements vfs.FS.
func (fs backoffFS) Rename(oldname, newname string) error {
	err := fs.FS.Rename(oldname, newname)
	fs.b.failed(err)
	return err
}

// MkdirAll implements vfs.FS.
func (fs backoffFS) MkdirAll(dir string, perm os.FileMode) error {
	err := fs.FS.MkdirAll(dir, perm)
	fs.b.failed(err)
	return err
}

// backoffFile is a file whose writes and syncs wait before they report a
// full disk. Preallocate is left alone: pebble ignores its errors.
type backoffFile struct {
	vfs.File
	b *backoff
}

// Write implements vfs.File.
func (f backoffFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	f.b.failed(err)
	return n, err
}

// WriteAt implements vfs.File.
func (f backoffFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	f.b.failed(err)
	return n, err
}

// Sync implements vfs.File.
func (f backoffFile) Sync() error {
	err := f.File.Sync()
	f.b.failed(err)
	return err
}

// SyncData implements vfs.File.
func (f backoffFile) SyncData() error {
	err := f.File.SyncData()
	f.b.failed(err)
	return err
}

// SyncTo implements vfs.File.
func (f backoffFile) SyncTo(length int64) (bool, error) {
	full, err := f.File.SyncTo(length)
	f.b.failed(err)
	return full, err
}

// backgroundErrors counts pebble's background errors and reports them:
// the first at once, then at most one line per backgroundReportEvery with
// the number since the last line; and one line when a flush or compaction
// succeeds again after failures.
type backgroundErrors struct {
	logger *slog.Logger
	total  atomic.Uint64
	// fullAt is when the last background error, a full disk's, happened
	// (Unix nanoseconds); 0 once a later error was another's or a job
	// succeeded.
	fullAt  atomic.Int64
	counter Incrementer // may be nil

	mu         sync.Mutex
	lastReport time.Time
	unreported uint64
	failing    uint64 // errors since the last success
}

// Incrementer is what CountBackgroundErrors counts with: a Prometheus
// counter, say.
type Incrementer interface{ Inc() }

func (e *backgroundErrors) failed(err error) {
	e.total.Add(1)
	if e.counter != nil {
		e.counter.Inc()
	}
	full := isDiskFull(err)
	now := time.Now()
	if full {
		e.fullAt.Store(now.UnixNano())
	} else {
		e.fullAt.Store(0)
	}
	e.mu.Lock()
	e.unreported++
	e.failing++
	if !e.lastReport.IsZero() && now.Sub(e.lastReport) < backgroundReportEvery {
		e.mu.Unlock()
		return
	}
	n := e.unreported
	e.lastReport, e.unreported = now, 0
	e.mu.Unlock()
	msg := "storage: a background write failed; retrying with backoff"
	if full {
		msg = "storage: disk full: a background write failed; retrying with backoff until space is freed (writes are refused meanwhile)"
	}
	// err.Error(): slog formats an error value with %+v, which for
	// pebble's errors is a page of stack trace per line.
	e.logger.Error(msg, "component", "pebble", "err", err.Error(), "errors_since_last_line", n)
}

// diskFull reports whether a background job failed for lack of space
// recently (paced retries fail at least once a second while the disk
// stays full) and none has succeeded since. Recently, so that writes are
// not refused for ever should pebble stop retrying a job.
func (e *backgroundErrors) diskFull() bool {
	at := e.fullAt.Load()
	return at != 0 && time.Since(time.Unix(0, at)) < 3*diskFullBackoffMax
}

func (e *backgroundErrors) succeeded(what string) {
	e.fullAt.Store(0)
	e.mu.Lock()
	n := e.failing
	e.failing, e.unreported, e.lastReport = 0, 0, time.Time{}
	e.mu.Unlock()
	if n > 0 {
		e.logger.Info("storage: background writes succeed again", "component", "pebble", "job", what, "errors_before", n)
	}
}

// listener returns the pebble events the store watches.
func (e *backgroundErrors) listener() *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: e.failed,
		FlushEnd: func(info pebble.FlushInfo) {
			if info.Err == nil {
				e.succeeded("flush")
			}
		},
		CompactionEnd: func(info pebble.CompactionInfo) {
			if info.Err == nil {
				e.succeeded("compaction")
			}
		},
	}
}
