package etcdtest

import (
	"context"
	"strings"
	"sync"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// Link is a TCP link that a test can cut: an embedded toxiproxy proxy on
// 127.0.0.1 in front of an upstream address. Clients dial Addr instead of
// the upstream.
//
// Cut blackholes the link both ways, as a network partition does: the
// proxy still accepts connections, but every byte, of the connections
// open and of new ones, is dropped. Heal lets bytes through again, and
// closes the connections that were open during the cut (their data is
// gone; their peers see a reset, as after a partition long enough for
// TCP to give up).
type Link struct {
	// Addr is the address to dial, 127.0.0.1:PORT.
	Addr  string
	proxy *toxiproxy.Proxy
	mu    sync.Mutex
	cut   bool
}

// server is the toxiproxy instance every Link belongs to; it serves no
// API, only its proxies.
var (
	serverOnce sync.Once
	server     *toxiproxy.ApiServer
)

// NewLink starts a link to upstream; it stops when t ends.
func NewLink(t testing.TB, name, upstream string) *Link {
	t.Helper()
	serverOnce.Do(func() {
		server = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	})
	p := toxiproxy.NewProxy(server, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("etcdtest: link %s to %s: %v", name, upstream, err)
	}
	t.Cleanup(p.Stop)
	return &Link{Addr: p.Listen, proxy: p}
}

// cutToxics blackhole both directions: toxiproxy's timeout toxic with no
// timeout drops everything and never closes the connection.
var cutToxics = []string{
	`{"name":"cut-up","type":"timeout","stream":"upstream","attributes":{"timeout":0}}`,
	`{"name":"cut-down","type":"timeout","stream":"downstream","attributes":{"timeout":0}}`,
}

// Cut blackholes the link.
func (l *Link) Cut(t testing.TB) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut {
		return
	}
	for _, toxic := range cutToxics {
		if _, err := l.proxy.Toxics.AddToxicJson(strings.NewReader(toxic)); err != nil {
			t.Fatalf("etcdtest: cutting link %s: %v", l.proxy.Name, err)
		}
	}
	l.cut = true
}

// Heal lets bytes through again.
func (l *Link) Heal(t testing.TB) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.cut {
		return
	}
	for _, name := range []string{"cut-up", "cut-down"} {
		if err := l.proxy.Toxics.RemoveToxic(context.Background(), name); err != nil {
			t.Fatalf("etcdtest: healing link %s: %v", l.proxy.Name, err)
		}
	}
	l.cut = false
}
