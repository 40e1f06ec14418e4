// Package faultnet puts a fault-injecting TCP proxy on a link between two
// processes on loopback: Shopify's toxiproxy, embedded as a library (no
// toxiproxy server, no HTTP API), with one method per fault the tests
// inject.
//
// A test starts a Proxy in front of an upstream address and gives the
// proxy's address to the client side of the link instead; faults are
// added to the requests (Up), the answers (Down) or both, apply at once to
// the connections already open as well as to new ones, and Heal removes
// them all. Only 127.0.0.1 addresses are accepted, on both sides.
//
//	p, err := faultnet.New("biz1->data", "127.0.0.1:5000")
//	...
//	businessserver p.URL() ...      // the business server talks to the proxy
//	p.Latency(faultnet.Up, 300*time.Millisecond, 100*time.Millisecond)
//	p.DropAnswers()                 // the request is delivered and applied; its answer is lost
//	p.Partition()                   // nothing passes either way
//	p.Heal()
//
// What each fault does on the wire:
//
//   - Latency: every chunk is held latency ± jitter (uniform) before it is
//     passed on; data in flight when it is removed is delivered at once.
//   - Bandwidth: at most the given KiB/s.
//   - Slicer: chunks cut into small pieces sent apart (TCP segmentation).
//   - ResetPeer: the connection is reset (RST, no FIN) once data arrives,
//     after the delay; with Up the request never reaches the server, with
//     Down the server has answered (so applied the request) when the client
//     sees the reset.
//   - LimitData: the connection is closed once n bytes passed that way: a
//     request or an answer cut in the middle.
//   - DropAnswers: the request is delivered whole and answered by the
//     server, but the answer is discarded and the client's connection closed
//     without a byte of it (limit_data of 0 bytes on the answers) — the
//     lost acknowledgement of an applied write.
//   - Blackhole / Partition: data is read and discarded, the connections stay
//     open and new ones are still accepted (toxiproxy's timeout toxic with no
//     timeout): a peer sees silence, never an error, until its own timeout.
//   - Disconnect: the proxy stops listening and closes every connection: a
//     peer sees "connection refused" until Heal.
package faultnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	zlog "github.com/rs/zerolog/log"
)

// Direction selects the half of a link a fault applies to.
type Direction int

const (
	// Up is the client-to-server half: requests.
	Up Direction = iota
	// Down is the server-to-client half: answers.
	Down
	// Both is both halves.
	Both
)

func (d Direction) String() string {
	switch d {
	case Up:
		return "up"
	case Down:
		return "down"
	case Both:
		return "both"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// streams maps a Direction to toxiproxy's stream names.
func (d Direction) streams() ([]string, error) {
	switch d {
	case Up:
		return []string{"upstream"}, nil
	case Down:
		return []string{"downstream"}, nil
	case Both:
		return []string{"upstream", "downstream"}, nil
	}
	return nil, fmt.Errorf("faultnet: unknown direction %d", int(d))
}

var silenceGlobal sync.Once

// ErrNotLoopback is returned for an address that is not 127.0.0.1:PORT.
var ErrNotLoopback = errors.New("faultnet: only 127.0.0.1 addresses are allowed")

// Proxy is one link's fault-injecting proxy. Its methods are safe for
// concurrent use.
type Proxy struct {
	name  string
	proxy *toxiproxy.Proxy

	mu     sync.Mutex
	seq    int
	toxics []string // names of the toxics in force, in the order added
	down   bool     // Disconnect in force
	closed bool
}

// New starts a proxy for upstream (127.0.0.1:PORT) listening on a free
// port of 127.0.0.1; name labels it in errors and String.
func New(name, upstream string) (*Proxy, error) {
	return Listen(name, "127.0.0.1:0", upstream)
}

// Listen is New on a given listening address (127.0.0.1:PORT), for a link
// whose address must stay the same across restarts of the proxy's user.
func Listen(name, listen, upstream string) (*Proxy, error) {
	for _, a := range []string{listen, upstream} {
		if err := checkLoopback(a); err != nil {
			return nil, fmt.Errorf("proxy %s: %q: %w", name, a, err)
		}
	}
	// The library logs every accepted connection at Info: silenced, and
	// its metrics go to a private registry nobody scrapes. Its bandwidth
	// toxic logs at Trace through zerolog's global logger, which nothing
	// else in this module uses: silenced once.
	silenceGlobal.Do(func() { zlog.Logger = zerolog.Nop() })
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(server, name, listen, upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("proxy %s: listening on %s: %w", name, listen, err)
	}
	return &Proxy{name: name, proxy: p}, nil
}

func checkLoopback(hostport string) error {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		return fmt.Errorf("%w (%v)", ErrNotLoopback, err)
	}
	if ap.Addr() != netip.AddrFrom4([4]byte{127, 0, 0, 1}) {
		return ErrNotLoopback
	}
	return nil
}

// Name is the name given to New.
func (p *Proxy) Name() string { return p.name }

// Addr is the proxy's listening address, 127.0.0.1:PORT: what the client
// side of the link dials instead of the upstream.
func (p *Proxy) Addr() string {
	p.proxy.Lock()
	defer p.proxy.Unlock()
	return p.proxy.Listen
}

// URL is "http://" + Addr().
func (p *Proxy) URL() string { return "http://" + p.Addr() }

// Upstream is the address the proxy forwards to.
func (p *Proxy) Upstream() string { return p.proxy.Upstream }

// String names the proxy, its addresses and the faults in force.
func (p *Proxy) String() string {
	faults := strings.Join(p.Faults(), ",")
	if faults == "" {
		faults = "none"
	}
	return fmt.Sprintf("%s %s->%s faults: %s", p.name, p.Addr(), p.Upstream(), faults)
}

// Faults lists the faults in force, e.g. "latency_upstream_1".
func (p *Proxy) Faults() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := append([]string(nil), p.toxics...)
	if p.down {
		out = append(out, "disconnected")
	}
	sort.Strings(out)
	return out
}

// add adds toxic typ with attrs to the streams of dir, on every
// connection.
func (p *Proxy) add(typ string, dir Direction, attrs any) error {
	return p.addSome(typ, dir, 1, attrs)
}

// addSome adds toxic typ with attrs to the streams of dir, on each
// connection with probability toxicity (drawn by toxiproxy when the
// connection opens, and again whenever another toxic is added).
func (p *Proxy) addSome(typ string, dir Direction, toxicity float32, attrs any) error {
	if !(toxicity > 0 && toxicity <= 1) {
		return fmt.Errorf("proxy %s: toxicity %v: want a fraction in (0, 1]", p.name, toxicity)
	}
	streams, err := dir.streams()
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("proxy %s: closed", p.name)
	}
	for _, stream := range streams {
		p.seq++
		name := fmt.Sprintf("%s_%s_%d", typ, stream, p.seq)
		body, err := json.Marshal(map[string]any{
			"name": name, "type": typ, "stream": stream, "toxicity": toxicity, "attributes": attrs,
		})
		if err != nil {
			return err
		}
		if _, err := p.proxy.Toxics.AddToxicJson(strings.NewReader(string(body))); err != nil {
			return fmt.Errorf("proxy %s: adding %s: %w", p.name, name, err)
		}
		p.toxics = append(p.toxics, name)
	}
	return nil
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// Latency delays every chunk of dir by latency ± jitter.
func (p *Proxy) Latency(dir Direction, latency, jitter time.Duration) error {
	if latency < 0 || jitter < 0 || jitter > latency {
		return fmt.Errorf("proxy %s: latency %v jitter %v: want 0 <= jitter <= latency", p.name, latency, jitter)
	}
	return p.add("latency", dir, map[string]int64{"latency": ms(latency), "jitter": ms(jitter)})
}

// Bandwidth limits dir to kibPerSecond KiB/s.
func (p *Proxy) Bandwidth(dir Direction, kibPerSecond int64) error {
	if kibPerSecond <= 0 {
		return fmt.Errorf("proxy %s: bandwidth %d KiB/s: want > 0", p.name, kibPerSecond)
	}
	return p.add("bandwidth", dir, map[string]int64{"rate": kibPerSecond})
}

// Slicer cuts dir's chunks into pieces of about size ± variation bytes
// sent delay apart.
func (p *Proxy) Slicer(dir Direction, size, variation int, delay time.Duration) error {
	if size <= 0 || variation < 0 || variation >= size || delay < 0 {
		return fmt.Errorf("proxy %s: slicer %d±%d every %v: want 0 <= variation < size", p.name, size, variation, delay)
	}
	return p.add("slicer", dir, map[string]int64{"average_size": int64(size), "size_variation": int64(variation), "delay": delay.Microseconds()})
}

// ResetPeer resets each connection (TCP RST) once data flows dir, after
// the delay.
func (p *Proxy) ResetPeer(dir Direction, after time.Duration) error {
	return p.add("reset_peer", dir, map[string]int64{"timeout": ms(after)})
}

// LimitData closes each connection once n bytes passed dir (n > 0: a cut
// in the middle of a request or an answer; 0: at the first byte).
func (p *Proxy) LimitData(dir Direction, n int64) error {
	if n < 0 {
		return fmt.Errorf("proxy %s: limit_data %d: negative", p.name, n)
	}
	return p.add("limit_data", dir, map[string]int64{"bytes": n})
}

// CloseAfter stops dir's data and closes each connection after d of
// silence (toxiproxy's timeout toxic).
func (p *Proxy) CloseAfter(dir Direction, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("proxy %s: close after %v: want > 0 (Blackhole never closes)", p.name, d)
	}
	return p.add("timeout", dir, map[string]int64{"timeout": ms(d)})
}

// DropAnswers lets requests through and discards their answers, closing
// the client's connection once the server answered: the server applied
// the request, the client never learns it.
func (p *Proxy) DropAnswers() error { return p.LimitData(Down, 0) }

// Blackhole discards dir's data and keeps the connections open.
func (p *Proxy) Blackhole(dir Direction) error {
	return p.add("timeout", dir, map[string]int64{"timeout": 0})
}

// Partition blackholes both directions: a network partition, in which the
// peers see silence rather than errors.
func (p *Proxy) Partition() error { return p.Blackhole(Both) }

// Disconnect stops listening and closes every connection: a peer's dials
// are refused until Heal.
func (p *Proxy) Disconnect() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.down {
		return
	}
	p.down = true
	p.proxy.Stop()
}

// Heal removes every fault: the toxics (data held by a latency is
// delivered at once) and a Disconnect (listening again on the same
// address).
func (p *Proxy) Heal() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("proxy %s: closed", p.name)
	}
	p.proxy.Toxics.ResetToxics(context.Background())
	p.toxics = nil
	if p.down {
		if err := p.proxy.Start(); err != nil {
			return fmt.Errorf("proxy %s: listening again on %s: %w", p.name, p.Addr(), err)
		}
		p.down = false
	}
	return nil
}

// Close stops the proxy and closes every connection through it.
func (p *Proxy) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.proxy.Toxics.ResetToxics(context.Background())
	p.proxy.Stop()
	return nil
}
