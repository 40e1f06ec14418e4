package freeport_test

import (
	"net"
	"strconv"
	"testing"

	"github.com/bank/gobank/http/freeport"
)

// TestPorts: n distinct ports, each free to listen on once returned.
func TestPorts(t *testing.T) {
	ports, err := freeport.Ports(8)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 8 {
		t.Fatalf("got %d ports, want 8", len(ports))
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || p > 65535 || seen[p] {
			t.Fatalf("ports %v: %d is out of range or repeated", ports, p)
		}
		seen[p] = true
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		ln.Close()
	}
	if ports, err := freeport.Ports(0); err != nil || len(ports) != 0 {
		t.Errorf("Ports(0) = %v, %v", ports, err)
	}
}

// TestAddr: a loopback address nobody listens on, which can be listened on.
func TestAddr(t *testing.T) {
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("something listens on %s", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("%s is not free: %v", addr, err)
	}
	ln.Close()
}

func TestBlock(t *testing.T) {
	offsets := []int{0, 1, 2, 10, 20, 1000, 1001}
	base, err := freeport.Block(offsets...)
	if err != nil {
		t.Fatal(err)
	}
	if base < 10000 || base+1001 >= 32768 {
		t.Fatalf("base %d: block not below the ephemeral ports", base)
	}
	for _, off := range offsets {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+off))
		if err != nil {
			t.Fatalf("port %d (base %d + %d) is not free: %v", base+off, base, off, err)
		}
		ln.Close()
	}
	if _, err := freeport.Block(-1); err == nil {
		t.Error("Block(-1): no error")
	}
}
