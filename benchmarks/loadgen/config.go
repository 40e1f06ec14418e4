package loadgen

import (
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/bank/gobank/actors/teller"
)

// Target names what the generator talks to.
type Target string

// Targets.
const (
	// TargetBusiness drives business servers through the public routes.
	TargetBusiness Target = "business"
	// TargetData drives a data server's routes with the server credential.
	TargetData Target = "data"
)

// Defaults applied by Run to zero fields of Config, and by Command to its
// flags.
const (
	// DefaultWorkers is enough concurrency to saturate a few business
	// servers on a small machine without drowning them in lock waits.
	DefaultWorkers = 64
	// DefaultDuration is long enough for stable percentiles, short enough
	// to iterate.
	DefaultDuration = 10 * time.Second
	// DefaultMaxInflight bounds the open loop's outstanding requests (and
	// its connections per server).
	DefaultMaxInflight = 1024
	// DefaultAccounts matches the original bank's ten demo accounts.
	DefaultAccounts = 10
	// DefaultAmountMin and DefaultAmountMax keep amounts small beside the
	// demo balances of 1000, so that most withdrawals succeed.
	DefaultAmountMin = 1
	DefaultAmountMax = 100
	// DefaultTimeout is below the business servers' own request budget
	// (lock retry + data calls), so a timeout here means a stuck server.
	DefaultTimeout = 5 * time.Second
	// DefaultSettle covers a business server finishing, after we gave up,
	// a request that waited for locks and data calls.
	DefaultSettle = 10 * time.Second
	// DefaultToken is the original client's default token.
	DefaultToken = "ba0f"
)

// Latency bounds of the histograms, in microseconds: a latency beyond
// them is clamped (and still counted), never lost.
const (
	minLatencyUS = 1
	maxLatencyUS = 60_000_000
)

// Config describes one run. Zero fields take the defaults above; Mix
// defaults to DefaultBusinessMix or DefaultDataMix by target.
type Config struct {
	// Target is TargetBusiness (default) or TargetData.
	Target Target
	// Servers are base URLs ("http://localhost:5001"); requests are spread
	// over them round-robin. The conservation check reads through the first.
	Servers []string
	// Token goes in the "token" header: a client token for the business
	// target (default "ba0f"), the server credential for the data target.
	Token string
	// Workers is the closed loop's concurrency.
	Workers int
	// Duration bounds the run; Requests bounds the number of operations
	// (open loop: operations scheduled, dropped ones included). With both,
	// whichever comes first ends it; with neither, Duration is 10s.
	Duration time.Duration
	Requests int64
	// Rate > 0 selects the open loop: operations per second at a fixed
	// schedule. MaxInflight bounds the operations outstanding at once.
	Rate        float64
	MaxInflight int
	// Mix weights operations by name (see ParseMix).
	Mix map[string]int
	// AmountMin..AmountMax bounds the uniformly drawn amounts.
	AmountMin, AmountMax int64
	// Accounts: operations use accounts 1..Accounts, picked by Dist.
	Accounts int
	Dist     Dist
	// Seed makes the operation sequence (ops, accounts, amounts, servers)
	// reproducible: per worker in the closed loop, in full in the open loop.
	Seed uint64
	// Timeout bounds each HTTP request.
	Timeout time.Duration
	// NoCheck skips the conservation check (it is always skipped for the
	// data target, whose writes are balance-neutral by construction).
	NoCheck bool
	// Unknown5xx counts every 5xx as an unknown outcome, even one with the
	// bank's error body (which promises "not applied or rolled back").
	Unknown5xx bool
	// Settle bounds how long, when some writes have unknown outcomes, the
	// final balances are re-read until they stop changing: the servers may
	// still be working on requests the client gave up on.
	Settle time.Duration
	// ProgressInterval is how often the progress line is redrawn; zero
	// means 250ms on a terminal and 1s otherwise.
	ProgressInterval time.Duration

	// History, when set, receives every operation as invoked and returned,
	// one JSON line each (see HistoryVersion for the format); business
	// target only. The initial balances are read for it even with NoCheck.
	History io.Writer
	// SnapshotEvery > 0 records a /snapshot of the data server DataServer
	// (with the server credential ServerToken) in the history that often,
	// plus one before and one after the load.
	SnapshotEvery time.Duration
	DataServer    string
	ServerToken   string
	// Groups > 1 splits the accounts into that many contiguous blocks
	// (GroupOf); worker w (open loop: operation i) stays within group
	// w mod Groups, so no transfer crosses groups.
	Groups int

	// Batch > 1 sends every transferencia of the mix as one POST
	// /transferencias of Batch transfers (1 to MaxBatch), each drawn as a
	// single transfer is: one operation, timed as a whole (Report.Batches
	// counts its transfers). Business target only, and not with History:
	// a history has no way to record a batch. Zero means 1: one
	// /transferencia per transfer.
	Batch int
}

// MaxBatch bounds Config.Batch: the business server's batch size.
const MaxBatch = teller.MaxBatch

// normalize applies the defaults and rejects impossible values.
func (c Config) normalize() (Config, error) {
	if c.Target == "" {
		c.Target = TargetBusiness
	}
	if _, ok := targetOps[c.Target]; !ok {
		return c, fmt.Errorf("target %q: want business or data", c.Target)
	}
	if len(c.Servers) == 0 {
		return c, errors.New("no servers given")
	}
	if c.Token == "" {
		if c.Target == TargetData {
			return c, errors.New("the data target needs the server credential (--token or $BANK_SERVER_TOKEN)")
		}
		c.Token = DefaultToken
	}
	switch {
	case c.Workers < 0, c.Duration < 0, c.Requests < 0, c.MaxInflight < 0, c.Accounts < 0,
		c.Timeout < 0, c.Settle < 0, c.ProgressInterval < 0:
		return c, errors.New("negative worker count, duration, request count, bound, account count or timeout")
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return c, fmt.Errorf("rate %v: want a finite number >= 0", c.Rate)
	case c.Rate > 10_000_000:
		return c, fmt.Errorf("rate %v: at most 10000000/s", c.Rate)
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.Duration == 0 && c.Requests == 0 {
		c.Duration = DefaultDuration
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.Accounts == 0 {
		c.Accounts = DefaultAccounts
	}
	if c.AmountMin == 0 && c.AmountMax == 0 {
		c.AmountMin, c.AmountMax = DefaultAmountMin, DefaultAmountMax
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Settle == 0 {
		c.Settle = DefaultSettle
	}
	if c.Mix == nil {
		spec := DefaultBusinessMix
		if c.Target == TargetData {
			spec = DefaultDataMix
		}
		m, err := ParseMix(spec)
		if err != nil {
			panic(err) // the defaults are constants
		}
		c.Mix = m
	}
	if c.Target == TargetData {
		c.NoCheck = true
		if c.History != nil {
			return c, errors.New("history: business target only")
		}
	}
	if c.Batch == 0 {
		c.Batch = 1
	}
	switch {
	case c.Batch < 1 || c.Batch > MaxBatch:
		return c, fmt.Errorf("batch %d: want 1 to %d transfers", c.Batch, MaxBatch)
	case c.Batch == 1:
	case c.Target != TargetBusiness:
		return c, fmt.Errorf("batch %d: batches are the business target's (POST /transferencias)", c.Batch)
	case c.History != nil:
		return c, fmt.Errorf("batch %d: a history cannot record batches for bank check: record without batches", c.Batch)
	case c.Mix["transferencia"] <= 0:
		return c, fmt.Errorf("batch %d: the mix has no transferencia to batch", c.Batch)
	}
	switch {
	case c.Groups < 0 || c.SnapshotEvery < 0:
		return c, errors.New("negative group count or snapshot interval")
	case c.Groups > 1 && c.Accounts < c.Groups:
		return c, fmt.Errorf("groups %d: more groups than accounts (%d)", c.Groups, c.Accounts)
	case c.Groups > 1 && c.Mix["transferencia"] > 0 && c.Accounts < 2*c.Groups:
		return c, fmt.Errorf("groups %d: transfers need at least two accounts per group (have %d accounts)", c.Groups, c.Accounts)
	case c.SnapshotEvery > 0 && c.History == nil:
		return c, errors.New("snapshots are recorded in the history: give one")
	case c.SnapshotEvery > 0 && (c.DataServer == "" || c.ServerToken == ""):
		return c, errors.New("snapshots need the data server's URL and the server credential")
	}
	return c, nil
}

// ErrUsage marks an error in the command line or the Config; a CLI exits 2
// for it.
var ErrUsage = errors.New("usage")

// ErrConservation is returned by Command when the conservation check
// fails.
var ErrConservation = errors.New("conservation check failed")

// usageError marks err as a usage error for errors.Is(err, ErrUsage).
type usageError struct{ err error }

func (u usageError) Error() string        { return u.err.Error() }
func (u usageError) Unwrap() error        { return u.err }
func (u usageError) Is(target error) bool { return target == ErrUsage }

func usagef(f string, a ...any) error { return usageError{fmt.Errorf(f, a...)} }
func asUsage(err error) error         { return usageError{err} }
