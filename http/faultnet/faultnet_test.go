package faultnet

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// upstream is a real HTTP server on loopback that counts the requests it
// handled (answered): the server side of a link.
type upstream struct {
	addr    string
	handled atomic.Int64
}

func startUpstream(t *testing.T, body string) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{addr: ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		u.handled.Add(1)
		_, _ = io.WriteString(w, body)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return u
}

func startProxy(t *testing.T, up *upstream) *Proxy {
	t.Helper()
	p, err := New("test", up.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// get does one request on a fresh connection.
func get(p *Proxy, timeout time.Duration) (string, error) {
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	resp, err := c.Get(p.URL() + "/x")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// waitHandled polls until up handled n requests or the deadline passes.
func waitHandled(t *testing.T, up *upstream, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for up.handled.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("upstream handled %d requests, want %d", up.handled.Load(), n)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}

func TestPassThroughAndHeal(t *testing.T) {
	up := startUpstream(t, "hello")
	p := startProxy(t, up)
	if got, err := get(p, 2*time.Second); err != nil || got != "hello" {
		t.Fatalf("through the proxy: %q, %v", got, err)
	}
	if err := p.Partition(); err != nil {
		t.Fatal(err)
	}
	if len(p.Faults()) != 2 {
		t.Errorf("faults after Partition: %v, want two (one per direction)", p.Faults())
	}
	if err := p.Heal(); err != nil {
		t.Fatal(err)
	}
	if f := p.Faults(); len(f) != 0 {
		t.Errorf("faults after Heal: %v", f)
	}
	if got, err := get(p, 2*time.Second); err != nil || got != "hello" {
		t.Fatalf("after Heal: %q, %v", got, err)
	}
}

func TestLatency(t *testing.T) {
	up := startUpstream(t, "ok")
	p := startProxy(t, up)
	if err := p.Latency(Up, 300*time.Millisecond, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := get(p, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("round trip %v under a 300ms±50ms latency", d)
	}
	if err := p.Latency(Up, time.Millisecond, time.Second); err == nil {
		t.Error("jitter above the latency accepted")
	}
}

func TestBandwidth(t *testing.T) {
	up := startUpstream(t, strings.Repeat("x", 32<<10))
	p := startProxy(t, up)
	if err := p.Bandwidth(Down, 32); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, err := get(p, 10*time.Second)
	if err != nil || len(got) != 32<<10 {
		t.Fatalf("%d bytes, %v", len(got), err)
	}
	if d := time.Since(start); d < 700*time.Millisecond {
		t.Errorf("32 KiB at 32 KiB/s in %v", d)
	}
}

func TestSlicerDeliversEverything(t *testing.T) {
	body := strings.Repeat("abcdefgh", 512)
	up := startUpstream(t, body)
	p := startProxy(t, up)
	if err := p.Slicer(Both, 64, 32, 100*time.Microsecond); err != nil {
		t.Fatal(err)
	}
	if got, err := get(p, 10*time.Second); err != nil || got != body {
		t.Fatalf("sliced answer: %d bytes (want %d), %v", len(got), len(body), err)
	}
}

// DropAnswers: the server handled the request, the client saw no answer.
func TestDropAnswersDeliversTheRequest(t *testing.T) {
	up := startUpstream(t, "applied")
	p := startProxy(t, up)
	if err := p.DropAnswers(); err != nil {
		t.Fatal(err)
	}
	got, err := get(p, 3*time.Second)
	if err == nil {
		t.Fatalf("an answer came through: %q", got)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the client waited for its timeout instead of seeing the connection closed: %v", err)
	}
	waitHandled(t, up, 1)
}

func TestResetPeer(t *testing.T) {
	t.Run("answers", func(t *testing.T) {
		up := startUpstream(t, "applied")
		p := startProxy(t, up)
		if err := p.ResetPeer(Down, 0); err != nil {
			t.Fatal(err)
		}
		_, err := get(p, 3*time.Second)
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("got %v, want a connection reset", err)
		}
		waitHandled(t, up, 1) // the reset came with the answer: the request was applied
	})
	t.Run("requests", func(t *testing.T) {
		up := startUpstream(t, "applied")
		p := startProxy(t, up)
		if err := p.ResetPeer(Up, 0); err != nil {
			t.Fatal(err)
		}
		_, err := get(p, 3*time.Second)
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) {
			t.Fatalf("got %v, want a connection reset", err)
		}
		if n := up.handled.Load(); n != 0 {
			t.Fatalf("a request cut before it left reached the server (%d)", n)
		}
	})
}

func TestLimitDataCutsTheAnswer(t *testing.T) {
	up := startUpstream(t, strings.Repeat("y", 4096))
	p := startProxy(t, up)
	if err := p.LimitData(Down, 200); err != nil {
		t.Fatal(err)
	}
	got, err := get(p, 3*time.Second)
	if err == nil {
		t.Fatalf("whole answer of %d bytes through a 200-byte limit", len(got))
	}
	waitHandled(t, up, 1)
}

func TestPartitionIsSilence(t *testing.T) {
	up := startUpstream(t, "ok")
	p := startProxy(t, up)
	if err := p.Partition(); err != nil {
		t.Fatal(err)
	}
	_, err := get(p, 300*time.Millisecond)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("through a partition: %v, want a timeout", err)
	}
	if n := up.handled.Load(); n != 0 {
		t.Fatalf("a request crossed the partition (%d)", n)
	}
	if err := p.Heal(); err != nil {
		t.Fatal(err)
	}
	if got, err := get(p, 2*time.Second); err != nil || got != "ok" {
		t.Fatalf("after Heal: %q, %v", got, err)
	}
}

func TestCloseAfter(t *testing.T) {
	up := startUpstream(t, "ok")
	p := startProxy(t, up)
	if err := p.CloseAfter(Up, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := get(p, 5*time.Second)
	if err == nil {
		t.Fatal("an answer through a closed link")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the link was not closed: %v after %v", err, time.Since(start))
	}
}

func TestDisconnectRefusesAndHealListensAgain(t *testing.T) {
	up := startUpstream(t, "ok")
	p := startProxy(t, up)
	addr := p.Addr()
	p.Disconnect()
	if _, err := get(p, 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("disconnected: %v, want connection refused", err)
	}
	if err := p.Heal(); err != nil {
		t.Fatal(err)
	}
	if p.Addr() != addr {
		t.Fatalf("listening on %s after Heal, was %s", p.Addr(), addr)
	}
	if got, err := get(p, 2*time.Second); err != nil || got != "ok" {
		t.Fatalf("after Heal: %q, %v", got, err)
	}
}

func TestOnlyLoopback(t *testing.T) {
	for _, tc := range []struct{ listen, upstream string }{
		{"127.0.0.1:0", "10.0.0.1:80"},
		{"127.0.0.1:0", "localhost:80"},
		{"0.0.0.0:0", "127.0.0.1:80"},
		{":0", "127.0.0.1:80"},
		{"127.0.0.1:0", "[::1]:80"},
	} {
		if p, err := Listen("x", tc.listen, tc.upstream); !errors.Is(err, ErrNotLoopback) {
			if p != nil {
				p.Close()
			}
			t.Errorf("Listen(%q, %q): %v, want ErrNotLoopback", tc.listen, tc.upstream, err)
		}
	}
}

func TestBadArguments(t *testing.T) {
	up := startUpstream(t, "ok")
	p := startProxy(t, up)
	for name, err := range map[string]error{
		"bandwidth 0":   p.Bandwidth(Up, 0),
		"limit -1":      p.LimitData(Up, -1),
		"close after 0": p.CloseAfter(Up, 0),
		"slicer":        p.Slicer(Up, 0, 0, 0),
		"direction":     p.Blackhole(Direction(7)),
	} {
		if err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}
