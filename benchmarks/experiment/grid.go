package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/bank/gobank/benchmarks/loadgen"
	"github.com/bank/gobank/http/business"
)

// Policy is how business servers take a lock another one holds, and
// whether the data server puts a lease on grants.
type Policy string

// The policies of the grid.
const (
	// PolicyFailFast is the original bank: one getLock, 403 at once when
	// the account is locked; the data server grants no lease.
	PolicyFailFast Policy = "fail-fast"
	// PolicyWait queues on the data server (FIFO) for up to LockWait; no
	// lease.
	PolicyWait Policy = "wait"
	// PolicyWaitLease is PolicyWait with a lease of Settings.Lease on every
	// grant (a lease timer per grant on the data server).
	PolicyWaitLease Policy = "wait+lease"
)

// Policies lists the policies in the order tables and plots show them.
var Policies = []Policy{PolicyFailFast, PolicyWait, PolicyWaitLease}

// waits reports whether p waits for a lock: its 403s are waits that ran
// out, not immediate refusals.
func (p Policy) waits() bool { return p != PolicyFailFast }

// Order is the order in which an operation locks its accounts.
type Order string

// The lock orders of the grid.
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

// Skew is how the load generator picks accounts.
type Skew struct {
	Name string // as tables show it
	Spec string // loadgen.ParseDist syntax
}

// The skews of the grid. Zipf 0.99 is YCSB's default skew: with 100
// accounts the hottest takes ~19% of picks. "hot" sends half of all picks
// to account 1, so about three transfers in four touch it.
var (
	SkewUniform = Skew{Name: "uniform", Spec: "uniform"}
	SkewZipf    = Skew{Name: "zipf 0.99", Spec: "zipf:0.99"}
	SkewHot     = Skew{Name: "hot 1 @ 50%", Spec: "hot:1:0.5"}
)

// Skews lists the skews in table order.
var Skews = []Skew{SkewUniform, SkewZipf, SkewHot}

// ServerCounts lists the numbers of business servers of the grid.
var ServerCounts = []int{1, 3, 8}

// Cell is one point of the grid.
type Cell struct {
	Policy  Policy
	Order   Order
	Skew    Skew
	Servers int
}

func (c Cell) String() string {
	return fmt.Sprintf("%s/%s/%s/%d servers", c.Policy, c.Order, c.Skew.Name, c.Servers)
}

// FullGrid returns the 54 cells. The three policies of one condition
// (order, skew, servers) run back to back, so that the comparison that
// matters most is made over the shortest time: this machine's speed
// drifts over minutes.
func FullGrid() []Cell {
	var cells []Cell
	for _, o := range Orders {
		for _, sk := range Skews {
			for _, n := range ServerCounts {
				for _, p := range Policies {
					cells = append(cells, Cell{Policy: p, Order: o, Skew: sk, Servers: n})
				}
			}
		}
	}
	return cells
}

// Settings are the parameters shared by every cell.
type Settings struct {
	Duration       time.Duration // load per cell
	Workers        int           // closed-loop clients
	Accounts       int
	InitialBalance int64
	Mix            string // loadgen.ParseMix syntax
	AmountMin      int64
	AmountMax      int64
	LockWait       time.Duration // business LockWait (wait policies)
	Lease          time.Duration // business LockTTL of wait+lease
	Timeout        time.Duration // loadgen per-request timeout
	Seed           uint64
}

// DefaultSettings are the default grid's: 54 cells of 6 s of load each
// (up to LockWait more while the last requests finish), with setup, the
// conservation reads and teardown, take about 6–7 minutes.
func DefaultSettings() Settings {
	return Settings{
		Duration:       6 * time.Second,
		Workers:        64,
		Accounts:       100,
		InitialBalance: 1000,
		Mix:            "transferencia=80,deposito=10,saque=10",
		AmountMin:      1,
		AmountMax:      100,
		LockWait:       business.DefaultLockWait,
		// Above LockWait plus a few data calls, as business.Config advises:
		// a transfer's first lease runs while it waits for its second lock,
		// and a lease that runs out mid-operation would be a 503, not a
		// cost of leases.
		Lease:   5 * time.Second,
		Timeout: loadgen.DefaultTimeout,
		Seed:    1,
	}
}

// LongDuration is a cell's load with --long.
const LongDuration = 30 * time.Second

// Result is one finished cell.
type Result struct {
	Cell
	Report *loadgen.Report // nil when Err is set
	Err    error           // the cell could not be run
	Setup  time.Duration   // starting the servers
	Wall   time.Duration   // the whole cell, setup and teardown included

	OKTransfersPerSec float64
	TotalPerSec       float64
	P50, P99, P999    int64 // µs
	Requests          int64
	Refusals          int64 // 403 LOCKED_ACCOUNT
	RefusalRate       float64
	WaitTimeouts      int64 // 403s of a waiting policy: waits that ran out
	Insufficient      int64 // 409 INSUFFICIENT_FUNDS: a business refusal, not an error
	Other             int64 // every other non-ok outcome
	OtherDetail       map[string]int64
	ConservationOK    bool
	Conservation      string // the check's reason
}

// Outcome labels of loadgen.Report.Outcomes.
const (
	labelOK           = "ok"
	labelLocked       = "403 LOCKED_ACCOUNT"
	labelInsufficient = "409 INSUFFICIENT_FUNDS"
)

// derive fills the figures from r.Report.
func (r *Result) derive() {
	rep := r.Report
	if rep == nil {
		return
	}
	if rep.DurationSeconds > 0 {
		r.OKTransfersPerSec = float64(rep.Ops["transferencia"].OK) / rep.DurationSeconds
	}
	r.TotalPerSec = rep.ThroughputTotal
	r.P50, r.P99, r.P999 = rep.Latency.P50, rep.Latency.P99, rep.Latency.P999
	r.Requests = rep.Requests
	r.Refusals = rep.Outcomes[labelLocked]
	if rep.Requests > 0 {
		r.RefusalRate = float64(r.Refusals) / float64(rep.Requests)
	}
	if r.Policy.waits() {
		r.WaitTimeouts = r.Refusals
	}
	r.Insufficient = rep.Outcomes[labelInsufficient]
	r.OtherDetail = map[string]int64{}
	for k, v := range rep.Outcomes {
		if k != labelOK && k != labelLocked && k != labelInsufficient && v > 0 {
			r.Other += v
			r.OtherDetail[k] = v
		}
	}
	if c := rep.Conservation; c != nil {
		r.ConservationOK, r.Conservation = c.OK, c.Reason
	} else {
		r.Conservation = "not checked"
	}
}

// Failed reports whether the cell is a bug: it could not run, or the
// conservation check failed.
func (r *Result) Failed() bool { return r.Err != nil || !r.ConservationOK }

// RunCell starts a fresh bank for c, loads it, checks conservation and
// stops everything. progress, when not nil, receives loadgen's progress
// line.
func RunCell(ctx context.Context, s Settings, c Cell, progress io.Writer) Result {
	start := time.Now()
	res := Result{Cell: c}
	defer func() { res.Wall = time.Since(start) }()
	dist, err := loadgen.ParseDist(c.Skew.Spec)
	if err != nil {
		res.Err = err
		return res
	}
	mix, err := loadgen.ParseMix(s.Mix)
	if err != nil {
		res.Err = err
		return res
	}
	cl, err := startCluster(s, c)
	if err != nil {
		res.Err = fmt.Errorf("starting the servers: %w", err)
		return res
	}
	res.Setup = time.Since(start)
	rep, err := loadgen.Run(ctx, loadgen.Config{
		Servers:   cl.urls,
		Token:     loadgen.DefaultToken,
		Workers:   s.Workers,
		Duration:  s.Duration,
		Mix:       mix,
		AmountMin: s.AmountMin,
		AmountMax: s.AmountMax,
		Accounts:  s.Accounts,
		Dist:      dist,
		Seed:      s.Seed,
		Timeout:   s.Timeout,
	}, progress)
	stopErr := cl.stop()
	switch {
	case err != nil:
		res.Err = err
	case stopErr != nil:
		res.Err = fmt.Errorf("stopping the servers: %w", stopErr)
	}
	res.Report = rep
	res.derive()
	return res
}

// RunGrid runs cells one after another. Each finished cell is passed to
// done (which prints it); before each cell, status receives a progress
// line. A cancelled ctx stops the grid after the running cell, whose
// (interrupted) result is kept.
func RunGrid(ctx context.Context, s Settings, cells []Cell, progress io.Writer,
	status func(i int, c Cell, elapsed time.Duration), done func(i int, r Result)) []Result {
	start := time.Now()
	var results []Result
	for i, c := range cells {
		if ctx.Err() != nil {
			break
		}
		if status != nil {
			status(i, c, time.Since(start))
		}
		r := RunCell(ctx, s, c, progress)
		results = append(results, r)
		if done != nil {
			done(i, r)
		}
	}
	return results
}
