package etcdtest

import (
	"testing"

	"github.com/bank/gobank/http/faultnet"
)

// Link is a TCP link that a test can cut: a fault-injecting proxy
// (faultnet, embedded toxiproxy) on 127.0.0.1 in front of an upstream
// address. Clients dial Addr instead of the upstream.
//
// Cut blackholes the link both ways, as a network partition does: the
// proxy still accepts connections, but every byte, of the connections
// open and of new ones, is dropped. Heal lets bytes through again.
type Link struct {
	// Addr is the address to dial, 127.0.0.1:PORT.
	Addr  string
	proxy *faultnet.Proxy
}

// NewLink starts a link to upstream; it stops when t ends.
func NewLink(t testing.TB, name, upstream string) *Link {
	t.Helper()
	p, err := faultnet.New(name, upstream)
	if err != nil {
		t.Fatalf("etcdtest: link %s to %s: %v", name, upstream, err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return &Link{Addr: p.Addr(), proxy: p}
}

// Cut blackholes the link.
func (l *Link) Cut(t testing.TB) {
	t.Helper()
	if err := l.proxy.Partition(); err != nil {
		t.Fatalf("etcdtest: cutting link %s: %v", l.proxy.Name(), err)
	}
}

// Heal lets bytes through again.
func (l *Link) Heal(t testing.TB) {
	t.Helper()
	if err := l.proxy.Heal(); err != nil {
		t.Fatalf("etcdtest: healing link %s: %v", l.proxy.Name(), err)
	}
}
