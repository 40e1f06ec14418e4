// Package freeport finds loopback TCP ports for servers whose addresses
// must be known before they start (cluster peers, a restart on the same
// port). It is the one home of that helper for tests, benchmarks and
// commands alike; a server that can be handed its listener should listen
// on 127.0.0.1:0 instead, which never races.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
)

// Ports returns n distinct loopback TCP ports that were free a moment ago:
// all n are held open together while they are picked, so that none is
// returned twice, then released for the caller's servers to take.
func Ports(n int) ([]int, error) {
	ports := make([]int, 0, n)
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Addr returns a loopback address ("127.0.0.1:port") that nobody listened
// on a moment ago: a server that is down, for tests of refused
// connections, or an address to hand a server that must know its own.
func Addr() (string, error) {
	ports, err := Ports(1)
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(ports[0]), nil
}

// Block returns a base port such that base+off is a free loopback TCP
// port for every offset in offsets, for programs that number their ports
// from one base (bank up's cluster members: data ports 10 apart, cluster
// ports next to each other, health ports 1000 above them).
//
// The block lies below the kernel's range of ephemeral ports (Linux's
// default starts at 32768): a port picked by Ports is free only until
// the next outgoing connection, a PostgreSQL or etcd client's, takes it
// or its neighbour as its own source port, which a port below that range
// never is. The base is drawn at random so that test processes running
// side by side pick different blocks.
func Block(offsets ...int) (int, error) {
	const lo, hi = 10000, 32768 // below the ephemeral ports
	span := 0
	for _, off := range offsets {
		if off < 0 || off >= hi-lo {
			return 0, fmt.Errorf("freeport: offset %d out of range", off)
		}
		span = max(span, off+1)
	}
	for range 100 {
		base := lo + rand.IntN(hi-lo-span)
		if blockFree(base, offsets) {
			return base, nil
		}
	}
	return 0, errors.New("freeport: no free block of ports below 32768 after 100 tries")
}

// blockFree reports whether every base+off can be listened on, holding
// them all open together until it knows.
func blockFree(base int, offsets []int) bool {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for _, off := range offsets {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+off))
		if err != nil {
			return false
		}
		lns = append(lns, ln)
	}
	return true
}
