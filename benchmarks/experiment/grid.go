package experiment

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/benchmarks/loadgen"
	"github.com/bank/gobank/http/business"
	"github.com/bank/gobank/http/dataserver"
)

// Policy is a lock scheme: how business servers take a lock another
// transaction holds, and what the data server does with grants.
type Policy string

// The policies the HTTP transport runs today.
const (
	// PolicyFailFast is the original bank (no-wait): one getLock, 403 at
	// once when the account is locked; the data server grants no lease.
	PolicyFailFast Policy = "fail-fast"
	// PolicyWait queues on the data server (FIFO) for up to LockWait; no
	// lease.
	PolicyWait Policy = "wait"
	// PolicyWaitLease is PolicyWait with a lease of Settings.Lease on every
	// grant (a lease timer per grant on the data server).
	PolicyWaitLease Policy = "wait+lease"
)

// policyDef is everything the experiment knows of a policy. A new scheme
// is one more entry of policyDefs.
type policyDef struct {
	name  Policy
	about string // one line for --help and the report's settings
	// aborts maps the load generator's outcome labels that are aborts of
	// this scheme's concurrency control to their cause; labelLocked's
	// cause is also the in-process transport's for a lock given up.
	aborts map[string]Cause
	// mode is the Tellers' lock mode (the business servers', or the
	// in-process transport's); lease grants every lock a lease of
	// Settings.Lease, and without it no grant has one.
	mode  teller.LockMode
	lease bool
	// fromTeller: the aborts the scheme retries are counted by the
	// business servers' tellers (teller.Stats), not seen in the answers.
	fromTeller bool
}

// configure sets a cell's data server and business servers for the
// policy.
func (d policyDef) configure(s Settings, dc *dataserver.Config, bc *business.Config) {
	bc.LockMode = d.mode
	dc.LockTTL = -1 // no lease
	if d.lease {
		dc.LockTTL = 0 // the data server's default lease for grants that name none
		bc.LockTTL = s.Lease
	}
}

// lockedCause is the cause of a lock given up (a 403 LOCKED_ACCOUNT).
func (d policyDef) lockedCause() Cause { return d.aborts[labelLocked] }

// Outcome labels of loadgen.Report.Outcomes the experiment reads.
const (
	labelOK           = "ok"
	labelLocked       = "403 LOCKED_ACCOUNT"
	labelInsufficient = "409 INSUFFICIENT_FUNDS"
)

// policyDefs lists the policies in the order tables and plots show them.
var policyDefs = []policyDef{
	{
		name:   PolicyFailFast,
		about:  "`ModeFailFast` (one lock request, refused at once when the account is locked: an abort *refused*); no lease",
		aborts: map[string]Cause{labelLocked: CauseRefused},
		mode:   teller.ModeFailFast,
	},
	{
		name:   PolicyWait,
		about:  "`ModeWait` (lock requests queued FIFO at the account, given up after `LockWait`: an abort *timeout*); no lease",
		aborts: map[string]Cause{labelLocked: CauseTimeout},
		mode:   teller.ModeWait,
	},
	{
		name:   PolicyWaitLease,
		about:  "`ModeWait` with a lease of `Lease` on every grant (a lease timer per grant; given up after `LockWait`: *timeout*)",
		aborts: map[string]Cause{labelLocked: CauseTimeout},
		mode:   teller.ModeWait,
		lease:  true,
	},
}

// The concurrency-control schemes of teller.LockMode (Yu et al.,
// "Staring into the Abyss", VLDB 2014): each retries its aborts inside
// the Teller, which counts them by cause (teller.Stats); a 403 is a
// transaction given up at LockWait.
func init() {
	for _, sc := range []struct {
		mode  teller.LockMode
		about string
	}{
		{teller.ModeWaitDie, "`ModeWaitDie` (an older transaction waits, a younger one dies and retries under its timestamp: an abort *died*)"},
		{teller.ModeWoundWait, "`ModeWoundWait` (an older transaction takes the lock from a younger one, which retries: an abort *wounded*)"},
		{teller.ModeDetect, "`ModeDetect` (FIFO waits; the accounts' detector aborts the youngest of a cycle at once: an abort *deadlock*)"},
		{teller.ModeOCC, "`ModeOCC` (reads without locks, validates versions with no-wait locks: an abort *validation*)"},
	} {
		policyDefs = append(policyDefs, policyDef{
			name:       Policy(sc.mode),
			about:      sc.about + "; given up after `LockWait`: *timeout*; no lease; deadlock detection on",
			aborts:     map[string]Cause{labelLocked: CauseTimeout},
			mode:       sc.mode,
			fromTeller: true,
		})
	}
}

// Policies lists every known policy, in table order.
func Policies() []Policy {
	out := make([]Policy, len(policyDefs))
	for i, d := range policyDefs {
		out[i] = d.name
	}
	return out
}

func (p Policy) def() (policyDef, bool) {
	for _, d := range policyDefs {
		if d.name == p {
			return d, true
		}
	}
	return policyDef{}, false
}

// rank orders policies as Policies does; unknown ones last.
func (p Policy) rank() int {
	for i, d := range policyDefs {
		if d.name == p {
			return i
		}
	}
	return len(policyDefs)
}

// Cause is why a transaction attempt was aborted.
type Cause string

// The causes of an abort. HTTP cells fill what the business servers'
// answers tell: fail-fast's 403 is CauseRefused, a waiting policy's 403
// (a wait that ran out) CauseTimeout.
const (
	CauseRefused    Cause = "refused"    // no-wait: the lock was held, refused at once
	CauseTimeout    Cause = "timeout"    // a wait for a lock ran out
	CauseDied       Cause = "died"       // wait-die: a younger requester died
	CauseWounded    Cause = "wounded"    // wound-wait: an older requester took the lock
	CauseDeadlock   Cause = "deadlock"   // chosen as a deadlock victim
	CauseValidation Cause = "validation" // optimistic validation failed
)

// Causes lists the causes in table order.
var Causes = []Cause{CauseRefused, CauseTimeout, CauseDied, CauseWounded, CauseDeadlock, CauseValidation}

// Order is the order in which a transaction locks its accounts.
type Order string

// The lock orders.
const (
	OrderAscending Order = "ascending"
	OrderRequest   Order = "request"
)

// Orders lists the lock orders in table order.
var Orders = []Order{OrderAscending, OrderRequest}

func (o Order) business() business.LockOrder {
	if o == OrderRequest {
		return business.OrderRequest
	}
	return business.OrderAscending
}

// Transport is how the load reaches the accounts.
type Transport string

// The transports.
const (
	// TransportHTTP drives business servers over loopback HTTP with the
	// load generator: the seed's routes, so two-account transfers (and
	// deposits and withdrawals).
	TransportHTTP Transport = "http"
	// TransportInprocess drives Tellers over the account actors in this
	// process (package txnload): no socket, transactions of 2 to 16 legs.
	TransportInprocess Transport = "inprocess"
)

// Transports lists the transports in table order.
var Transports = []Transport{TransportHTTP, TransportInprocess}

// runs reports whether the transport runs transactions of legs legs:
// HTTP runs transfers only.
func (t Transport) runs(legs int) bool { return t != TransportHTTP || legs == 2 }

// Store is where the bank keeps its balances.
type Store string

// The stores.
const (
	// StoreMemory keeps the balances in memory: no commit waits for a
	// disk, so the cell measures the lock scheme alone.
	StoreMemory Store = "memory"
	// StorePebble is a pebble store in a fresh temporary directory: every
	// commit a synced batch, the accounts' locks held until its sync.
	StorePebble Store = "pebble"
	// StorePebbleELR is StorePebble with early lock release: the locks
	// pass on once the commit is ordered in the WAL, every answer that
	// depends on it waiting for its sync (actors.Config.EarlyLockRelease,
	// the data server's --early-lock-release).
	StorePebbleELR Store = "pebble-elr"
)

// Stores lists the stores in table order.
var Stores = []Store{StoreMemory, StorePebble, StorePebbleELR}

func (s Store) durable() bool          { return s == StorePebble || s == StorePebbleELR }
func (s Store) earlyLockRelease() bool { return s == StorePebbleELR }

// where is a transport and store as tables show them: the transport
// alone in memory ("http"), else both ("http/pebble-elr").
func where(t Transport, s Store) string {
	if s == "" || s == StoreMemory {
		return string(t)
	}
	return string(t) + "/" + string(s)
}

// Skew is how the load generator picks accounts. It is comparable: cells
// are map keys.
type Skew struct {
	// Spec is its loadgen.ParseDist syntax ("uniform", "zipf:0.99",
	// "hot:1:0.5").
	Spec string
	// Theta is the Zipf exponent θ: 0 for uniform (and a hot set, which is
	// not on the θ axis: see OnThetaAxis). Never NaN: a cell is a map key.
	Theta float64
	hot   bool
}

// ParseSkew parses one skew in loadgen.ParseDist syntax; "zipf:0" is
// uniform (θ 0).
func ParseSkew(s string) (Skew, error) {
	s = strings.TrimSpace(s)
	if v, ok := strings.CutPrefix(s, loadgen.DistZipf+":"); ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil && f == 0 {
			s = loadgen.DistUniform
		}
	}
	d, err := loadgen.ParseDist(s)
	if err != nil {
		return Skew{}, err
	}
	sk := Skew{Spec: d.String()}
	switch d.Kind {
	case loadgen.DistZipf:
		sk.Theta = d.S
	case loadgen.DistHot:
		sk.hot = true
	}
	return sk, nil
}

func mustSkew(s string) Skew {
	sk, err := ParseSkew(s)
	if err != nil {
		panic(err)
	}
	return sk
}

// OnThetaAxis reports whether the skew is uniform or Zipf.
func (s Skew) OnThetaAxis() bool { return !s.hot }

// ThetaValue is θ, or NaN off the θ axis.
func (s Skew) ThetaValue() float64 {
	if s.hot {
		return math.NaN()
	}
	return s.Theta
}

// Name is the skew as tables show it: "uniform", "zipf 0.99",
// "hot 1 @ 50%".
func (s Skew) Name() string {
	d, err := loadgen.ParseDist(s.Spec)
	if err != nil {
		return s.Spec
	}
	switch d.Kind {
	case loadgen.DistZipf:
		return "zipf " + fmtTheta(d.S)
	case loadgen.DistHot:
		return fmt.Sprintf("hot %d @ %s%%", d.HotK, strconv.FormatFloat(100*d.HotP, 'g', 4, 64))
	}
	return "uniform"
}

// Label is the skew on a θ axis: "θ 0.99", or its name off the axis.
func (s Skew) Label() string {
	if s.OnThetaAxis() {
		return "θ " + fmtTheta(s.Theta)
	}
	return s.Name()
}

// ThetaText is θ as a table cell: "0.99", or "–" off the axis.
func (s Skew) ThetaText() string {
	if s.OnThetaAxis() {
		return fmtTheta(s.Theta)
	}
	return "–"
}

func fmtTheta(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// Cell is one point of the grid.
type Cell struct {
	Transport Transport
	Store     Store // "" is StoreMemory
	Policy    Policy
	Order     Order
	Skew      Skew
	Servers   int // business servers (in-process: Tellers)
	Workers   int // closed-loop clients
	Legs      int // accounts per transaction: 2 is a transfer
}

func (c Cell) String() string {
	s := fmt.Sprintf("%s/%s/%s/%d servers/%d workers", c.Policy, c.Order, c.Skew.Name(), c.Servers, c.Workers)
	switch {
	case c.Transport == TransportInprocess:
		s = fmt.Sprintf("%s/%d legs/%s", where(c.Transport, c.Store), c.Legs, s)
	case c.Store != "" && c.Store != StoreMemory:
		s = fmt.Sprintf("%s/%s", where(c.Transport, c.Store), s)
	}
	return s
}

// Grid is the dimensions of a run: every combination is a cell, but for
// the widths a transport does not run (HTTP runs two legs only).
type Grid struct {
	Transports []Transport // nil: http
	Stores     []Store     // nil: memory
	Policies   []Policy
	Orders     []Order
	Skews      []Skew
	Servers    []int
	Workers    []int
	Legs       []int // nil: 2
}

func (g Grid) transports() []Transport {
	if len(g.Transports) == 0 {
		return []Transport{TransportHTTP}
	}
	return g.Transports
}

func (g Grid) stores() []Store {
	if len(g.Stores) == 0 {
		return []Store{StoreMemory}
	}
	return g.Stores
}

func (g Grid) legs() []int {
	if len(g.Legs) == 0 {
		return []int{2}
	}
	return g.Legs
}

// Cells lists the grid's cells. The policies of one condition (every other
// dimension) run back to back, so that the comparison that matters most
// is made over the shortest time: this machine's speed drifts over
// minutes.
func (g Grid) Cells() []Cell {
	var cells []Cell
	for _, t := range g.transports() {
		for _, l := range g.legs() {
			if !t.runs(l) {
				continue
			}
			for _, st := range g.stores() {
				for _, o := range g.Orders {
					for _, n := range g.Servers {
						for _, w := range g.Workers {
							for _, sk := range g.Skews {
								for _, p := range g.Policies {
									cells = append(cells, Cell{Transport: t, Store: st, Policy: p, Order: o, Skew: sk, Servers: n, Workers: w, Legs: l})
								}
							}
						}
					}
				}
			}
		}
	}
	return cells
}

// Thetas is the Zipf sweep of the full grid; uniform is θ 0.
var Thetas = []float64{0, 0.5, 0.7, 0.8, 0.9, 0.99}

// SkewHot sends half of all picks to account 1, so about three transfers
// in four touch it.
var SkewHot = mustSkew("hot:1:0.5")

// FullGrid is the default grid: every policy × both orders × the θ sweep
// and the hot account × 3 business servers × 64 workers, over HTTP (two
// legs: 98 cells) and in-process (2 and 16 legs: 196 cells); the
// concurrency is swept with --servers and --workers.
func FullGrid() Grid {
	var skews []Skew
	for _, th := range Thetas {
		skews = append(skews, mustSkew("zipf:"+fmtTheta(th)))
	}
	return Grid{
		Transports: slices.Clone(Transports),
		Stores:     []Store{StoreMemory},
		Policies:   Policies(),
		Orders:     slices.Clone(Orders),
		Skews:      append(skews, SkewHot),
		Servers:    []int{3},
		Workers:    []int{64},
		Legs:       []int{2, 16},
	}
}

// QuickGrid is the --quick grid: every policy × both orders × uniform and
// Zipf 0.99 × 3 business servers × 32 workers, over HTTP (28 cells of
// QuickDuration) and in-process with 2 and 16 legs (56 cells of
// QuickInprocessDuration): about two minutes and a half.
func QuickGrid() Grid {
	return Grid{
		Transports: slices.Clone(Transports),
		Stores:     []Store{StoreMemory},
		Policies:   Policies(),
		Orders:     slices.Clone(Orders),
		Skews:      []Skew{mustSkew("uniform"), mustSkew("zipf:0.99")},
		Servers:    []int{3},
		Workers:    []int{32},
		Legs:       []int{2, 16},
	}
}

// The --quick cells' loads.
const (
	QuickDuration          = 2 * time.Second
	QuickInprocessDuration = 500 * time.Millisecond
)

// ParseTransports parses a comma-separated list of transports.
func ParseTransports(s string) ([]Transport, error) {
	return parseList(s, "transport", func(v string) (Transport, error) {
		t := Transport(v)
		if !slices.Contains(Transports, t) {
			return "", fmt.Errorf("unknown transport %q (want %s)", v, joinNames(Transports))
		}
		return t, nil
	})
}

// ParseStores parses a comma-separated list of stores.
func ParseStores(s string) ([]Store, error) {
	return parseList(s, "store", func(v string) (Store, error) {
		st := Store(v)
		if !slices.Contains(Stores, st) {
			return "", fmt.Errorf("unknown store %q (want %s)", v, joinNames(Stores))
		}
		return st, nil
	})
}

// ParsePolicies parses a comma-separated list of policy names.
func ParsePolicies(s string) ([]Policy, error) {
	return parseList(s, "policy", func(v string) (Policy, error) {
		p := Policy(v)
		if _, ok := p.def(); !ok {
			return "", fmt.Errorf("unknown policy %q (want %s)", v, joinNames(Policies()))
		}
		return p, nil
	})
}

// ParseOrders parses a comma-separated list of lock orders.
func ParseOrders(s string) ([]Order, error) {
	return parseList(s, "order", func(v string) (Order, error) {
		o := Order(v)
		if !slices.Contains(Orders, o) {
			return "", fmt.Errorf("unknown lock order %q (want %s)", v, joinNames(Orders))
		}
		return o, nil
	})
}

// ParseSkews parses a comma-separated list of skews (ParseSkew).
func ParseSkews(s string) ([]Skew, error) { return parseList(s, "skew", ParseSkew) }

// ParseCounts parses a comma-separated list of positive integers at most
// limit.
func ParseCounts(s, what string, limit int) ([]int, error) {
	return parseList(s, what, func(v string) (int, error) {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > limit {
			return 0, fmt.Errorf("%s %q: want a whole number from 1 to %d", what, v, limit)
		}
		return n, nil
	})
}

// parseList splits s at commas and parses every item; empty lists, empty
// items and repeated values are refused.
func parseList[T comparable](s, what string, parse func(string) (T, error)) ([]T, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("empty list: want at least one %s", what)
	}
	var out []T
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("%q: empty %s in the list", s, what)
		}
		v, err := parse(item)
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, v) {
			return nil, fmt.Errorf("%q: %s %q given twice", s, what, item)
		}
		out = append(out, v)
	}
	return out, nil
}

func joinNames[T ~string](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// Settings are the parameters shared by every cell.
type Settings struct {
	// Duration is an HTTP cell's load, InprocessDuration an in-process
	// one's: in-process cells run ten to a hundred times more
	// transactions a second, and checking their histories costs in
	// proportion.
	Duration          time.Duration
	InprocessDuration time.Duration
	Accounts          int
	InitialBalance    int64
	Mix               string // loadgen.ParseMix syntax
	AmountMin         int64
	AmountMax         int64
	LockWait          time.Duration // business LockWait (waiting policies)
	Lease             time.Duration // business LockTTL of wait+lease
	Timeout           time.Duration // loadgen per-request timeout
	Seed              uint64
	// WorkersPerGroup splits a cell's accounts into ⌈workers /
	// WorkersPerGroup⌉ disjoint blocks, each worker staying in one
	// (loadgen's Groups), so that porcupine checks each block apart: one
	// partition of more than about 16 concurrent clients is beyond its
	// search. 0 keeps one block.
	WorkersPerGroup int
	// SnapshotEvery is how often the history records a consistent read of
	// every balance (plus one before and one after the load).
	SnapshotEvery time.Duration
	// LinearTimeout bounds porcupine's search per cell; a search that
	// runs out leaves the cell unproven, hence failed.
	LinearTimeout time.Duration
}

// DefaultSettings are the full grid's: 98 HTTP cells of 4 s and 196
// in-process cells of 1 s, with setup, checking and teardown, take about
// 25 minutes.
func DefaultSettings() Settings {
	return Settings{
		Duration:          4 * time.Second,
		InprocessDuration: time.Second,
		// A thousand accounts, so that 16-leg transactions in the groups
		// porcupine needs (8 of 125 accounts at 64 workers) still choose
		// among many accounts: in groups of 16, every transaction would
		// lock its whole group, whatever the skew.
		Accounts:       1000,
		InitialBalance: 1000,
		Mix:            "transferencia=80,deposito=10,saque=10",
		AmountMin:      1,
		AmountMax:      100,
		LockWait:       business.DefaultLockWait,
		// Above LockWait plus a few data calls, as business.Config advises:
		// a transfer's first lease runs while it waits for its second lock,
		// and a lease that runs out mid-operation would be a 503, not a
		// cost of leases.
		Lease:           5 * time.Second,
		Timeout:         loadgen.DefaultTimeout,
		Seed:            1,
		WorkersPerGroup: 8,
		SnapshotEvery:   time.Second,
		LinearTimeout:   time.Minute,
	}
}

// Groups returns the account groups of a cell with workers clients and
// transactions of legs accounts: at most one per legs accounts.
func (s Settings) Groups(workers, legs int) int {
	if s.WorkersPerGroup <= 0 {
		return 1
	}
	g := (workers + s.WorkersPerGroup - 1) / s.WorkersPerGroup
	return max(1, min(g, s.Accounts/max(legs, 2)))
}

// duration is cell c's load.
func (s Settings) duration(c Cell) time.Duration {
	if c.Transport == TransportInprocess {
		return s.InprocessDuration
	}
	return s.Duration
}

// validate rejects settings no cell can run with.
func (s Settings) validate() error {
	switch {
	case s.Duration <= 0 || s.InprocessDuration <= 0:
		return fmt.Errorf("durations %v and %v: must be positive", s.Duration, s.InprocessDuration)
	case s.Accounts < 2:
		return fmt.Errorf("accounts %d: at least 2", s.Accounts)
	case s.WorkersPerGroup < 0:
		return fmt.Errorf("workers per group %d: must not be negative", s.WorkersPerGroup)
	case s.SnapshotEvery <= 0:
		return fmt.Errorf("snapshot interval %v: must be positive (the bank checker needs snapshots)", s.SnapshotEvery)
	}
	if _, err := loadgen.ParseMix(s.Mix); err != nil {
		return err
	}
	return nil
}
