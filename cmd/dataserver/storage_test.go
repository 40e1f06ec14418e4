package main

// Unusable storage with real processes: a --data-dir the data server
// cannot use must stop it at startup with a clear message, and a disk that
// fills up must never cost an acknowledged write or show half a transfer.
// The tests mount small tmpfs file systems, so they need root (or
// CAP_SYS_ADMIN); they fail, rather than skip, without it.

import (
	"github.com/bank/gobank/actors/store"
	"github.com/bank/gobank/cmd/internal/proctest"
	"github.com/bank/gobank/http/metrics"

	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs with options data (e.g. "size=4m") on dir,
// and unmounts it when the test ends (after the processes the test starts
// later are killed: cleanups run last-registered first).
func mountTmpfs(t *testing.T, dir string, flags uintptr, data string) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", flags, data); err != nil {
		t.Fatalf("mount -t tmpfs -o %s tmpfs %s: %v: this test needs to mount a small file system "+
			"(run it as root, or with CAP_SYS_ADMIN); it is not skipped, because then it would prove nothing", data, dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v; detaching it", dir, err)
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
}

// TestUnusableDataDir starts the data server on a --data-dir it cannot
// use: it must exit with status 1 within a few seconds, never listen, and
// name the directory in its message.
func TestUnusableDataDir(t *testing.T) {
	dataBin, _ := proctest.Binaries(t)
	root := t.TempDir()
	home := mkdir(t, root, "home")
	env := []string{"BANK_SERVER_TOKEN=" + randomHex(16), "HOME=" + home}

	file := filepath.Join(root, "a-file")
	if err := os.WriteFile(file, []byte("not a directory\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ro := mkdir(t, root, "read-only")
	mountTmpfs(t, ro, syscall.MS_RDONLY, "size=1m")
	inUse := filepath.Join(root, "in-use")
	proctest.Start(t, "dataserver (holding the directory)", mkdir(t, root, "holder-wd"), dataBin, env,
		"--host", "127.0.0.1", "--port", "0", "--data-dir", inUse, "--log", "-")

	for _, tc := range []struct {
		name, dir string
		want      []string // in the message besides the directory
	}{
		{"a regular file", file, []string{"not a directory"}},
		{"a read-only file system", ro, []string{"not writable", "read-only file system"}},
		{"a directory to create on a read-only file system", filepath.Join(ro, "db"), []string{"read-only file system"}},
		{"a directory another data server holds", inUse, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wd := t.TempDir()
			p := proctest.Launch(t, "dataserver", wd, dataBin, env,
				"--host", "127.0.0.1", "--port", "0", "--data-dir", tc.dir, "--log", filepath.Join(wd, "data_server.log"))
			status, ok := p.Wait(10 * time.Second)
			if !ok {
				t.Fatalf("still running 10s after starting on --data-dir %s:\n%s", tc.dir, p.Output())
			}
			out := p.Output()
			msg := lastLine(out)
			t.Logf("exit status %d: %s", status, msg)
			if status != 1 {
				t.Errorf("exit status %d, want 1", status)
			}
			if strings.Contains(out, "listening on") {
				t.Errorf("it listened before failing:\n%s", out)
			}
			if !strings.Contains(msg, tc.dir) {
				t.Errorf("the message does not name the directory %s: %q", tc.dir, msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("the message does not say %q: %q", w, msg)
				}
			}
		})
	}
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// fill writes zeros to path until the file system is full (ENOSPC) and
// returns how many bytes it wrote. The file stays.
func fill(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n int64
	for _, size := range []int{64 << 10, 4 << 10, 512, 1} {
		buf := make([]byte, size)
		for {
			k, err := f.Write(buf)
			n += int64(k)
			if err == nil {
				continue
			}
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", path, err)
			}
			break
		}
	}
	return n
}

// TestFullDisk runs the data server on a 4 MiB tmpfs, acknowledges a few
// transfers, fills the file system to the last byte (the database stays
// open), and sends transfers until one is not acknowledged. The
// requirement: writes are refused with 503 (error_code -9) and the process
// stays up, or it stops — but never an acknowledged write lost, never
// half a transfer. The test then frees the space, restarts the data
// server, and checks every balance: within the bounds of the unknown
// outcomes, then exactly once they are resolved with their keys, with the
// total of 10 × 1000 throughout.
func TestFullDisk(t *testing.T) {
	root := t.TempDir()
	disk := mkdir(t, root, "disk")
	mountTmpfs(t, disk, 0, "size=4m")
	c := newCluster(t, filepath.Join(disk, "db"))
	c.startData()
	biz := c.startBusiness("biz", nil)

	var ops []*op
	prefix := randomHex(4)
	transfer := func(i int) *op {
		o := &op{kind: opTransfer, a: int64(i%numAccounts) + 1, b: int64((i+3)%numAccounts) + 1, v: int64(10 + i%7),
			key: fmt.Sprintf("full-%s-%d", prefix, i)}
		send(c.client, biz.URL, o)
		ops = append(ops, o)
		return o
	}
	const before = 20
	for i := range before {
		if o := transfer(i); o.out != outOK {
			t.Fatalf("before filling the disk: %v", o)
		}
	}
	filled := fill(t, filepath.Join(disk, "filler"))

	// Transfers until one is not acknowledged (bounded: each one's commit
	// needs room in the write-ahead log, which has at most a page left).
	var failed *op
	for i := before; i < before+5000 && failed == nil; i++ {
		if o := transfer(i); o.out != outOK {
			failed = o
		}
	}
	onFull := len(ops) - before - 1
	if failed == nil {
		t.Fatalf("5000 transfers acknowledged on a full disk (%d bytes of filler)", filled)
	}
	t.Logf("disk full (%d bytes of filler): %d transfers acknowledged, then %v", filled, onFull, failed)

	status, exited := c.data.Wait(5 * time.Second)
	if exited {
		// What pebble does: a write-ahead log write that fails is fatal
		// to its commit pipeline (db.go: "pebble: fatal commit error"),
		// and our store's Fatalf stops the process.
		msg := ""
		for _, l := range strings.Split(c.data.Output(), "\n") {
			if strings.Contains(l, "no space left on device") {
				msg = l
				break
			}
		}
		t.Logf("the data server stopped with exit status %d: %s", status, msg)
		if status == 0 {
			t.Error("the data server exited 0 on a full disk")
		}
		if msg == "" {
			t.Error("the data server did not say the disk is full (no space left on device)")
		}
		if failed.status != 0 && failed.status != 503 {
			t.Errorf("the transfer on the full disk was answered %d, want 503 or no answer", failed.status)
		}
	} else {
		// The data server refused the write and stays up: a write answers
		// 503 UNAVAILABLE, and reads still show whole transfers.
		if failed.status != 503 {
			t.Errorf("the transfer on the full disk: %v, want 503", failed)
		}
		r, err := c.dataGet("/setSaldo", "conta=1&valor=1")
		if err != nil || r.Status != 503 || r.ErrorCode == nil || *r.ErrorCode != -9 {
			t.Errorf("setSaldo on the full disk: %d %v error_code %d %q, want 503 and -9", r.Status, err, show(r.ErrorCode), r.Error)
		}
		checkBounds(t, c.balances(), ops)
		select {
		case <-c.data.Done:
			t.Errorf("the data server stopped after refusing writes: %v", c.data.Cmd.ProcessState)
		default:
		}
		t.Log("the data server refused writes with 503 and stayed up")
		c.data.Kill()
	}

	// Space freed: everything acknowledged is there, and writes work.
	if err := os.Remove(filepath.Join(disk, "filler")); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	c.startData()
	t.Logf("space freed: serving %v after the restart", time.Since(t0).Round(time.Millisecond))
	checkBounds(t, c.balances(), ops)
	resolve(t, c.client, biz.URL, ops)
	checkExact(t, c.balances(), ops)
	if o := transfer(len(ops)); o.out != outOK {
		t.Errorf("a transfer after freeing the space: %v", o)
	}
	checkExact(t, c.balances(), ops)
	c.waitUnlocked(5 * time.Second)
}

// TestRestartOnFullDisk restarts the data server, killed with data in its
// write-ahead log, on a file system that is full: it must either serve
// (reads, with writes refused) or exit non-zero with a message naming its
// --data-dir, within a few seconds — an operator or a supervisor restarts
// a server after a crash, and the disk is often still full then.
func TestRestartOnFullDisk(t *testing.T) {
	root := t.TempDir()
	disk := mkdir(t, root, "disk")
	mountTmpfs(t, disk, 0, "size=4m")
	c := newCluster(t, filepath.Join(disk, "db"))
	c.startData()
	for i := range 20 {
		r, err := c.dataGet("/setSaldo", fmt.Sprintf("conta=%d&valor=%d", i%numAccounts+1, 2000+i))
		if err != nil || r.Status != 200 || r.ErrorCode != nil {
			t.Fatalf("setSaldo: %d %v %d %q", r.Status, err, show(r.ErrorCode), r.Error)
		}
	}
	want := c.balances()
	c.data.Kill() // the writes are in the write-ahead log only
	fill(t, filepath.Join(disk, "filler"))

	const bound = 3 * time.Second
	full := proctest.Launch(t, "dataserver (disk full)", c.dataWD, c.dataBin, c.env, c.dataCmd()...)
	t0 := time.Now()
	timer := time.NewTimer(bound)
	defer timer.Stop()
	select {
	case <-full.Announced():
		t.Logf("restarted on the full disk, it serves after %v", time.Since(t0).Round(time.Millisecond))
		if got := c.balances(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("balances %v, want %v", got, want)
		}
		r, err := c.dataGet("/setSaldo", "conta=1&valor=1")
		if err != nil || r.Status != 503 || r.ErrorCode == nil || *r.ErrorCode != -9 {
			t.Errorf("setSaldo on the full disk: %d %v error_code %d %q, want 503 and -9", r.Status, err, show(r.ErrorCode), r.Error)
		}
	case <-full.Done:
		msg := lastLine(full.Output())
		t.Logf("restarted on the full disk, it exited with status %d after %v: %s",
			full.Cmd.ProcessState.ExitCode(), time.Since(t0).Round(time.Millisecond), msg)
		if full.Cmd.ProcessState.ExitCode() == 0 || !strings.Contains(msg, c.dataDir) {
			t.Errorf("want a non-zero exit status and a message naming %s", c.dataDir)
		}
	case <-timer.C:
		out := full.Output()
		// SIGTERM, as a supervisor would send, before SIGKILL.
		_ = full.Cmd.Process.Signal(syscall.SIGTERM)
		_, stopped := full.Wait(time.Second)
		t.Errorf("restarted on the full disk, the data server neither served nor exited within %v; "+
			"SIGTERM stopped it: %v; last line: %s",
			bound, stopped, lastLine(out))
		full.Kill()
	}

	// Space freed, it starts and has every write.
	if err := os.Remove(filepath.Join(disk, "filler")); err != nil {
		t.Fatal(err)
	}
	c.startData()
	if got := c.balances(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after freeing the space: balances %v, want %v", got, want)
	}
}

// TestFullDiskIdleRetriesPaced brings the data server to the state the
// store's reserve cannot prevent: a flush of its memtables that does not
// fit on the disk (which the disk's reserve is too small for on a 26 MiB
// file system). It writes idempotency records until pebble's first flush
// (which fits) has left write-ahead logs to reuse, fills the file system
// to just above the reserve, and writes on until the memtable rotates: the
// flush then fails with ENOSPC, and pebble retries it while the server is
// idle. Over a window the process must stay quiet (at most a couple of
// error lines, a fraction of a core), /metrics must show the condition,
// writes must be refused with 503; once space is freed, writes succeed
// again without a restart.
//
// No write-ahead log write may need free space once the disk is filled:
// pebble treats a failed one as fatal (the process exits 70), and the
// commit that rotates the memtable writes its record into the new log
// after the flush has started. A new log file's first write allocates
// fresh pages, which the flush may have taken already (seen in CI); a
// reused log already holds its pages (pebble preallocates each log, and
// reuses a flushed one in place). So the test lets a first flush finish
// with room to spare, and checks that the rotation onto the full disk
// reused a log.
func TestFullDiskIdleRetriesPaced(t *testing.T) {
	root := t.TempDir()
	disk := mkdir(t, root, "disk")
	mountTmpfs(t, disk, 0, "size=26m")
	c := newCluster(t, filepath.Join(disk, "db"))
	c.startData()

	var posted int
	post := func() (status int, body string) {
		posted++
		buf := make([]byte, 2000)
		_, _ = rand.Read(buf)
		req, err := http.NewRequest(http.MethodPost,
			fmt.Sprintf("%s/idem?id_negoc=probe&key=fill-%d&fingerprint=f&status=200", c.dataURL(), posted),
			strings.NewReader(hex.EncodeToString(buf)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("token", c.token)
		resp, err := c.client.Do(req)
		if err != nil {
			t.Fatalf("POST /idem: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	mustPost := func(when string) {
		t.Helper()
		if status, body := post(); status != 200 {
			t.Fatalf("record %d %s: %d %s", posted, when, status, body)
		}
	}
	files := func(pattern string) []string { // sorted: pebble's file numbers have a fixed width
		m, _ := filepath.Glob(filepath.Join(c.dataDir, pattern))
		return m
	}
	newestLog := func() string {
		logs := files("*.log")
		if len(logs) == 0 {
			return ""
		}
		return logs[len(logs)-1]
	}

	// Pebble's memtables grow from 256 KiB to 4 MiB, each with a log of
	// its own, and it flushes once the full ones reach 2 MiB: the fourth
	// rotation (onto the fifth log) flushes the first four memtables. That
	// flush fits; it leaves their logs for reuse (pebble keeps three) or
	// removes them. Stop at that rotation, so that the flush has the room
	// it needs: the new log holds one record and has not preallocated its
	// room yet.
	seen := map[string]bool{}
	for len(seen) < 5 && posted < 5000 {
		mustPost("before the first flush")
		for _, l := range files("*.log") {
			seen[l] = true
		}
	}
	proctest.WaitFor(t, 10*time.Second, "pebble's first flush to finish and release its logs", func() bool {
		return len(files("*.sst")) > 0 && len(files("*.log")) < len(seen)
	})
	for range 3 { // the live log takes its room (pebble preallocates a log at its second write)
		mustPost("after the first flush")
	}

	// Leave 200 KiB above the store's reserve: less than the next flush
	// (a full 4 MiB memtable) needs.
	const above = 200 << 10
	var st syscall.Statfs_t
	if err := syscall.Statfs(disk, &st); err != nil {
		t.Fatal(err)
	}
	free, total := int64(st.Bavail)*st.Bsize, int64(st.Blocks)*st.Bsize
	reserve := min(int64(store.MaxReserve), total/8)
	if free < reserve+above {
		t.Fatalf("%d KiB free after the first flush, want at least the %d KiB reserve and %d KiB", free>>10, reserve>>10, above>>10)
	}
	filler := filepath.Join(disk, "filler")
	if err := os.WriteFile(filler, make([]byte, free-reserve-above), 0o600); err != nil {
		t.Fatal(err)
	}
	live, logs := newestLog(), len(files("*.log"))
	for newestLog() == live && posted < 10000 {
		if status, body := post(); status != 200 {
			t.Fatalf("record %d, the disk filled to %d KiB above the reserve: %d %s (the memtable did not rotate first)",
				posted, above>>10, status, body)
		}
	}
	if n := len(files("*.log")); n != logs {
		t.Fatalf("the memtable rotated onto a new log file (%d logs, %d before), not a reused one: "+
			"its first write races the flush for the last free pages", n, logs)
	}
	proctest.WaitFor(t, 10*time.Second, "the flush to fail for lack of space", func() bool {
		return strings.Contains(c.data.Output(), "no space left on device")
	})

	// The idle window: nothing but pebble's retries runs.
	const window = 5 * time.Second
	errLines := func() int { return strings.Count(c.data.Output(), "level=ERROR") }
	lines0, cpu0, t0 := errLines(), procCPU(t, c.data), time.Now()
	proctest.WaitFor(t, 2*window, "the measuring window to pass", func() bool { return time.Since(t0) >= window })
	elapsed := time.Since(t0)
	lines, cpu := errLines()-lines0, procCPU(t, c.data)-cpu0
	share := cpu.Seconds() / elapsed.Seconds()
	t.Logf("disk full and idle for %v: %d error lines, CPU %v (%.0f%% of a core)",
		elapsed.Round(time.Millisecond), lines, cpu, 100*share)
	if lines > 2 {
		t.Errorf("%d error lines in %v on a full disk, want at most 2 (one per 10s with a count); the last: %s",
			lines, elapsed.Round(time.Millisecond), lastLine(c.data.Output()))
	}
	if share > 0.3 {
		t.Errorf("the idle data server used %.0f%% of a core on a full disk, want at most 30%%", 100*share)
	}

	m := c.metrics()
	if m["gobank_data_store_disk_full"] != 1 {
		t.Errorf("gobank_data_store_disk_full %v, want 1", m["gobank_data_store_disk_full"])
	}
	if n := m["gobank_data_store_background_errors_total"]; n < 2 || n > 10*(elapsed.Seconds()+10) {
		t.Errorf("gobank_data_store_background_errors_total %v: want a few per second", n)
	}
	for _, q := range []string{"conta=1&valor=1"} {
		r, err := c.dataGet("/setSaldo", q)
		if err != nil || r.Status != 503 || r.ErrorCode == nil || *r.ErrorCode != -9 {
			t.Errorf("setSaldo on the full disk: %d %v error_code %d %q, want 503 and -9", r.Status, err, show(r.ErrorCode), r.Error)
		}
	}
	if status, body := post(); status != 503 {
		t.Errorf("a record on the full disk: %d %s, want 503", status, body)
	}

	// Space freed: the next retry succeeds, the gauge falls, writes work.
	// Removing the filler alone gives back too little on this small disk,
	// 13 MiB of which the three reused logs hold: the retried flush (4 MiB)
	// and the compaction of level 0 after it (8 MiB) need more above the
	// reserve. So the file system grows too, as a volume would.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", disk, "tmpfs", syscall.MS_REMOUNT, "size=64m"); err != nil {
		t.Fatalf("growing the file system: %v", err)
	}
	proctest.WaitFor(t, 15*time.Second, "gobank_data_store_disk_full to be 0", func() bool {
		return c.metrics()["gobank_data_store_disk_full"] == 0
	})
	r, err := c.dataGet("/setSaldo", "conta=1&valor=4242")
	if err != nil || r.Status != 200 || r.ErrorCode != nil {
		t.Errorf("setSaldo once space is freed: %d %v error_code %d %q", r.Status, err, show(r.ErrorCode), r.Error)
	}
	if got := c.balances(); got[0] != 4242 {
		t.Errorf("account 1 after the write: %d, want 4242", got[0])
	}
	if !strings.Contains(c.data.Output(), "background writes succeed again") {
		t.Error("the data server did not say its background writes succeed again")
	}
	select {
	case <-c.data.Done:
		t.Fatalf("the data server stopped: %v", c.data.Cmd.ProcessState)
	default:
	}
}

// procCPU is the CPU time (user and system) process p has used, from
// /proc/PID/stat in clock ticks (USER_HZ, 100 on Linux).
func procCPU(t *testing.T, p *proctest.Proc) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: %q", p.Cmd.Process.Pid, b)
	}
	return time.Duration(utime+stime) * (time.Second / 100)
}

// metrics scrapes the data server's /metrics into name -> value, for the
// series without labels.
func (c *cluster) metrics() map[string]float64 {
	c.t.Helper()
	resp, err := c.client.Get(c.dataURL() + "/metrics")
	if err != nil {
		c.t.Fatalf("/metrics: %v", err)
	}
	defer resp.Body.Close()
	fams, err := metrics.Parse(resp.Body, resp.Header.Get("Content-Type"))
	if err != nil {
		c.t.Fatalf("/metrics does not parse: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) > 0 {
				continue
			}
			switch {
			case m.Gauge != nil:
				out[name] = m.GetGauge().GetValue()
			case m.Counter != nil:
				out[name] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}
