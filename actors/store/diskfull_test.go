//go:build linux

package store

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a log destination safe for pebble's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type countInc struct{ n atomic.Uint64 }

func (c *countInc) Inc() { c.n.Add(1) }

// cpuTime is the CPU time (user and system) the test process has used.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// waitUntil polls cond until it holds, failing the test after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// TestFullDiskBackgroundRetriesPaced fills a real (tmpfs) file system
// under an open store and makes pebble flush: the flush fails for lack of
// space and pebble retries it. Over a window of an otherwise idle process
// the retries must be paced (a few per second, not hundreds), the CPU
// spent bounded, the log a line per interval with a count; the store must
// say the disk is full and refuse writes; once space is freed the flush
// succeeds, the store says so, and writes work again. It mounts a tmpfs,
// so it needs root (or CAP_SYS_ADMIN), and fails without.
func TestFullDiskBackgroundRetriesPaced(t *testing.T) {
	disk := t.TempDir()
	if err := syscall.Mount("tmpfs", disk, "tmpfs", 0, "size=16m"); err != nil {
		t.Fatalf("mount -t tmpfs -o size=16m tmpfs %s: %v: this test needs to mount a small file system "+
			"(run it as root, or with CAP_SYS_ADMIN); it is not skipped, because then it would prove nothing", disk, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(disk, 0); err != nil {
			t.Errorf("unmount %s: %v; detaching it", disk, err)
			_ = syscall.Unmount(disk, syscall.MNT_DETACH)
		}
	})
	var logs syncBuffer
	errs := &countInc{}
	p, err := OpenPebble(filepath.Join(disk, "db"), slog.New(slog.NewTextHandler(&logs, nil)), CountBackgroundErrors(errs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	for i := range 200 {
		if err := p.Commit([]Write{{ID: int64(i), Balance: int64(i)}}, nil); err != nil {
			t.Fatal(err)
		}
	}

	filler := filepath.Join(disk, "filler")
	fillDisk(t, filler)
	if _, err := p.db.AsyncFlush(); err != nil {
		t.Fatalf("asking for a flush on the full disk: %v", err)
	}
	waitUntil(t, 10*time.Second, "the flush to fail", func() bool { return p.BackgroundErrors() >= 3 })
	if errs.n.Load() == 0 {
		t.Error("CountBackgroundErrors' counter did not count")
	}

	// An idle window: pebble retries the flush and nothing else runs.
	const window = 3 * time.Second
	errs0, lines0, cpu0, t0 := p.BackgroundErrors(), strings.Count(logs.String(), "\n"), cpuTime(t), time.Now()
	waitUntil(t, 2*window, "the measuring window to pass", func() bool { return time.Since(t0) >= window })
	elapsed := time.Since(t0)
	retries := p.BackgroundErrors() - errs0
	lines := strings.Count(logs.String(), "\n") - lines0
	cpu := cpuTime(t) - cpu0
	rate := float64(retries) / elapsed.Seconds()
	share := cpu.Seconds() / elapsed.Seconds()
	t.Logf("disk full, over %v: %d failed flushes (%.1f/s), %d log lines, CPU %v (%.0f%% of a core)",
		elapsed.Round(time.Millisecond), retries, rate, lines, cpu.Round(time.Millisecond), 100*share)
	if retries == 0 {
		t.Error("pebble stopped retrying the flush: it would never recover")
	}
	if rate > 10 {
		t.Errorf("%.1f failed flushes per second on a full disk, want at most 10 (paced)", rate)
	}
	if lines > 2 {
		t.Errorf("%d log lines in %v, want at most 2 (one per %v):\n%s", lines, elapsed, backgroundReportEvery, logs.String())
	}
	if share > 0.25 {
		t.Errorf("the idle store used %.0f%% of a core on a full disk, want at most 25%%", 100*share)
	}
	if !strings.Contains(logs.String(), "disk full") || !strings.Contains(logs.String(), "errors_since_last_line=") {
		t.Errorf("the log does not say the disk is full with a count:\n%s", logs.String())
	}
	if !p.DiskFull() {
		t.Error("DiskFull() is false on a full disk")
	}
	if err := p.Commit([]Write{{ID: 1, Balance: 7}}, nil); !errors.Is(err, ErrNoSpace) {
		t.Errorf("a commit on the full disk: %v, want ErrNoSpace", err)
	}

	// Space freed: the next retry's flush succeeds, and writes work.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the store to see the space back", func() bool { return !p.DiskFull() })
	waitUntil(t, 5*time.Second, "the recovery's log line", func() bool {
		return strings.Contains(logs.String(), "background writes succeed again")
	})
	if err := p.Commit([]Write{{ID: 1, Balance: 7}}, nil); err != nil {
		t.Errorf("a commit once space is freed: %v", err)
	}
	if got, err := p.Accounts(); err != nil || got[1] != 7 || got[199] != 199 {
		t.Errorf("accounts after recovering: 1 -> %d, 199 -> %d, %v", got[1], got[199], err)
	}

	// Full again, failing again: Close does not wait out a retry's delay.
	fillDisk(t, filler)
	failed := p.BackgroundErrors()
	if _, err := p.db.AsyncFlush(); err != nil {
		t.Fatalf("asking for a flush on the full disk: %v", err)
	}
	waitUntil(t, 10*time.Second, "the flush to fail again", func() bool { return p.BackgroundErrors() >= failed+9 })
	c0 := time.Now()
	_ = p.Close() // may report the failed flush
	if d := time.Since(c0); d > diskFullBackoffMax/2 {
		t.Errorf("Close took %v while a flush was failing, want well under the %v retry delay", d, diskFullBackoffMax)
	}
}

// fillDisk writes zeros to path until its file system is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, size := range []int{64 << 10, 4 << 10, 512, 1} {
		buf := make([]byte, size)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("filling %s: %v", path, err)
				}
				break
			}
		}
	}
}
