// Package freeport finds loopback TCP ports for servers whose addresses
// must be known before they start (cluster peers, a restart on the same
// port). It is the one home of that helper for tests, benchmarks and
// commands alike; a server that can be handed its listener should listen
// on 127.0.0.1:0 instead, which never races.
package freeport

import (
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
