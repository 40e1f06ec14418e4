package loadgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// op is one kind of operation the generator sends. Ops of both targets
// share one enumeration so that per-op counters are plain arrays.
type op uint8

const (
	opDeposito op = iota
	opSaque
	opSaldo
	opTransferencia
	opGetSaldo
	opLock
	opSetSaldo
	// opStatus is GET /status on either target: the ceiling a route of
	// the server can reach, measured over the same connections.
	opStatus
	numOps
)

var opNames = [numOps]string{"deposito", "saque", "saldo", "transferencia", "getSaldo", "lock", "setSaldo", "status"}

func (o op) String() string { return opNames[o] }

// targetOps lists the ops each target serves, in the order the help shows.
var targetOps = map[Target][]op{
	TargetBusiness: {opDeposito, opSaque, opTransferencia, opSaldo, opStatus},
	TargetData:     {opGetSaldo, opLock, opSetSaldo, opStatus},
}

const (
	// DefaultBusinessMix is mostly writes, because writes are what take
	// locks and can break conservation; transfers dominate because they
	// lock two accounts.
	DefaultBusinessMix = "deposito=20,saque=20,transferencia=50,saldo=10"
	// DefaultDataMix keeps reads dominant, as a business server's traffic
	// to the data server is.
	DefaultDataMix = "getSaldo=50,lock=30,setSaldo=20"
)

func opByName(name string) (op, bool) {
	for i, n := range opNames {
		if n == name {
			return op(i), true
		}
	}
	return 0, false
}

// ParseMix parses an operation mix such as
// "deposito=20,saque=20,transferencia=50,saldo=10" into weights by op
// name. Weights are relative (they need not sum to 100); a zero weight
// disables an op. Op names of either target are accepted here; Run checks
// that they belong to the configured target.
func ParseMix(s string) (map[string]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("mix: empty (want e.g. %s)", DefaultBusinessMix)
	}
	mix := map[string]int{}
	total := 0
	for part := range strings.SplitSeq(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("mix: %q: want OP=WEIGHT", part)
		}
		if _, known := opByName(name); !known {
			return nil, fmt.Errorf("mix: unknown op %q (business: deposito, saque, transferencia, saldo; data: getSaldo, lock, setSaldo)", name)
		}
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("mix: %s: weight %q is not a non-negative integer", name, w)
		}
		if _, dup := mix[name]; dup {
			return nil, fmt.Errorf("mix: %s given twice", name)
		}
		if n > 1_000_000 {
			return nil, fmt.Errorf("mix: %s: weight %d is too large (max 1000000)", name, n)
		}
		mix[name] = n
		total += n
	}
	if total == 0 {
		return nil, fmt.Errorf("mix: every weight is zero")
	}
	return mix, nil
}

// formatMix renders a mix in a stable order (the target's op order).
func formatMix(mix map[string]int) string {
	names := make([]string, 0, len(mix))
	for n := range mix {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		x, _ := opByName(a)
		y, _ := opByName(b)
		return int(x) - int(y)
	})
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + strconv.Itoa(mix[n])
	}
	return strings.Join(parts, ",")
}

// Distribution kinds of Dist.Kind.
const (
	// DistUniform picks every account equally often.
	DistUniform = "uniform"
	// DistZipf picks account k with probability proportional to 1/k^S.
	DistZipf = "zipf"
	// DistHot sends a fixed fraction of picks to a small hot set.
	DistHot = "hot"
)

// Dist says how accounts are picked. Skew is what makes lock contention,
// so the distribution matters as much as the rate. The zero value is
// uniform.
type Dist struct {
	// Kind is DistUniform, DistZipf or DistHot ("" means uniform).
	Kind string
	// S is the Zipf exponent (> 0): account k is picked with probability
	// proportional to 1/k^S, so account 1 is the hottest.
	S float64
	// HotK and HotP: accounts 1..HotK receive a fraction HotP of the picks,
	// uniformly among them; the other accounts share the rest uniformly.
	HotK int
	HotP float64
}

// ParseDist parses "uniform", "zipf:S" (S > 0, e.g. zipf:0.99) or
// "hot:K:P" (K hot accounts receive fraction P of picks, e.g. hot:2:0.9).
func ParseDist(s string) (Dist, error) {
	s = strings.TrimSpace(s)
	parts := strings.Split(s, ":")
	switch parts[0] {
	case "", DistUniform:
		if len(parts) > 1 {
			return Dist{}, fmt.Errorf("dist: %q: uniform takes no parameter", s)
		}
		return Dist{Kind: DistUniform}, nil
	case DistZipf:
		if len(parts) != 2 {
			return Dist{}, fmt.Errorf("dist: %q: want zipf:S, e.g. zipf:0.99", s)
		}
		v, err := strconv.ParseFloat(parts[1], 64)
		if err != nil || !(v > 0) || math.IsInf(v, 0) || v > 100 {
			return Dist{}, fmt.Errorf("dist: %q: the exponent must be a number in (0, 100]", s)
		}
		return Dist{Kind: DistZipf, S: v}, nil
	case DistHot:
		if len(parts) != 3 {
			return Dist{}, fmt.Errorf("dist: %q: want hot:K:P, e.g. hot:2:0.9", s)
		}
		k, err := strconv.Atoi(parts[1])
		if err != nil || k < 1 {
			return Dist{}, fmt.Errorf("dist: %q: K must be a positive integer", s)
		}
		p, err := strconv.ParseFloat(parts[2], 64)
		if err != nil || !(p >= 0 && p <= 1) {
			return Dist{}, fmt.Errorf("dist: %q: P must be a fraction in [0, 1]", s)
		}
		return Dist{Kind: DistHot, HotK: k, HotP: p}, nil
	}
	return Dist{}, fmt.Errorf("dist: %q: want uniform, zipf:S or hot:K:P", s)
}

// String renders d in the syntax ParseDist reads.
func (d Dist) String() string {
	switch d.Kind {
	case DistZipf:
		return "zipf:" + strconv.FormatFloat(d.S, 'g', -1, 64)
	case DistHot:
		return "hot:" + strconv.Itoa(d.HotK) + ":" + strconv.FormatFloat(d.HotP, 'g', -1, 64)
	}
	return DistUniform
}

// Picker returns a function drawing account numbers in 1..n as d says,
// for drivers other than the load generator (the in-process transaction
// load of the lock-scheme experiment).
func (d Dist) Picker(n int) (func(*rand.Rand) int64, error) {
	p, err := newPicker(d, n)
	if err != nil {
		return nil, err
	}
	return p.pick, nil
}

// picker draws an account number in 1..n.
type picker interface {
	pick(r *rand.Rand) int64
}

func newPicker(d Dist, n int) (picker, error) {
	if n < 1 {
		return nil, fmt.Errorf("accounts: %d; want at least 1", n)
	}
	switch d.Kind {
	case "", DistUniform:
		return uniformPicker{n: int64(n)}, nil
	case DistZipf:
		if !(d.S > 0) {
			return nil, fmt.Errorf("dist zipf: exponent %v; want > 0", d.S)
		}
		return newZipf(int64(n), d.S), nil
	case DistHot:
		if d.HotK < 1 || d.HotK >= n {
			return nil, fmt.Errorf("dist %s: K must be in 1..%d (fewer than the %d accounts)", d, n-1, n)
		}
		if !(d.HotP >= 0 && d.HotP <= 1) {
			return nil, fmt.Errorf("dist %s: P must be in [0, 1]", d)
		}
		return hotPicker{k: int64(d.HotK), n: int64(n), p: d.HotP}, nil
	}
	return nil, fmt.Errorf("dist: unknown kind %q", d.Kind)
}

type uniformPicker struct{ n int64 }

func (u uniformPicker) pick(r *rand.Rand) int64 { return 1 + r.Int64N(u.n) }

type hotPicker struct {
	k, n int64
	p    float64
}

func (h hotPicker) pick(r *rand.Rand) int64 {
	if r.Float64() < h.p {
		return 1 + r.Int64N(h.k)
	}
	return h.k + 1 + r.Int64N(h.n-h.k)
}

// zipfPicker samples P(k) ∝ 1/k^s over 1..n for any s > 0 by
// rejection-inversion (W. Hörmann and G. Derflinger, "Rejection-inversion
// to generate variates from monotone discrete distributions", 1996), as in
// Apache Commons' ZipfRejectionInversionSampler. math/rand's Zipf needs
// s > 1, but the skews people quote for key-value workloads (YCSB's 0.99)
// are below 1; a precomputed CDF would cost memory linear in n.
type zipfPicker struct {
	n, s           float64
	hX1, hN, sTerm float64
}

func newZipf(n int64, s float64) *zipfPicker {
	z := &zipfPicker{n: float64(n), s: s}
	z.hX1 = z.hIntegral(1.5) - 1
	z.hN = z.hIntegral(float64(n) + 0.5)
	z.sTerm = 2 - z.hIntegralInverse(z.hIntegral(2.5)-z.h(2))
	return z
}

func (z *zipfPicker) pick(r *rand.Rand) int64 {
	for {
		// u is uniform in (hX1, hN]: the inverse maps it onto the area
		// under a continuous hat that dominates the discrete weights.
		u := z.hN + r.Float64()*(z.hX1-z.hN)
		x := z.hIntegralInverse(u)
		k := math.Floor(x + 0.5)
		if k < 1 {
			k = 1
		} else if k > z.n {
			k = z.n
		}
		// The first test accepts most draws without evaluating h; the
		// second is the exact acceptance condition.
		if k-x <= z.sTerm || u >= z.hIntegral(k+0.5)-z.h(k) {
			return int64(k)
		}
	}
}

// hIntegral is H(x) = ∫₁ˣ t^-s dt, written so that s = 1 needs no special
// case (helper2 tends to 1 there).
func (z *zipfPicker) hIntegral(x float64) float64 {
	logX := math.Log(x)
	return helper2((1-z.s)*logX) * logX
}

func (z *zipfPicker) h(x float64) float64 { return math.Exp(-z.s * math.Log(x)) }

func (z *zipfPicker) hIntegralInverse(x float64) float64 {
	t := x * (1 - z.s)
	if t < -1 {
		t = -1 // rounding can push t just past the pole of log1p
	}
	return math.Exp(helper1(t) * x)
}

// helper1 is log1p(x)/x, continuous at 0.
func helper1(x float64) float64 {
	if math.Abs(x) > 1e-8 {
		return math.Log1p(x) / x
	}
	return 1 - x*(0.5-x*(1.0/3-0.25*x))
}

// helper2 is expm1(x)/x, continuous at 0.
func helper2(x float64) float64 {
	if math.Abs(x) > 1e-8 {
		return math.Expm1(x) / x
	}
	return 1 + x*0.5*(1+x*(1.0/3)*(1+0.25*x))
}

// planned is one operation to send.
type planned struct {
	op       op
	a, b     int64 // accounts (b: transfer destination)
	amount   int64
	server   int   // index into the targets
	intended int64 // open loop: intended send time, ns since the run's start
	// batch, when the run batches transfers (Config.Batch > 1), holds a
	// transferencia's transfers, the first of them a, b and amount: the
	// operation is one POST /transferencias of them all.
	batch []xfer
}

// xfer is one transfer of a batch: amount from account a to account b.
type xfer struct{ a, b, amount int64 }

// planner draws operations from a mix, an account picker and an amount
// range. It holds no mutable state, so workers share one and each brings
// its own *rand.Rand: the sequence is then a function of the seed alone.
type planner struct {
	ops        []op
	cum        []uint64
	total      uint64
	pick       picker
	accounts   int64
	amin, amax int64
	// batch is how many transfers a transferencia sends in one POST
	// /transferencias (Config.Batch); 1 or less: one /transferencia.
	batch int
}

func newPlanner(target Target, mix map[string]int, d Dist, accounts int, amin, amax int64) (*planner, error) {
	pl := &planner{accounts: int64(accounts), amin: amin, amax: amax}
	allowed := targetOps[target]
	for name := range mix {
		o, ok := opByName(name)
		if !ok || !slices.Contains(allowed, o) {
			var names []string
			for _, a := range allowed {
				names = append(names, a.String())
			}
			return nil, fmt.Errorf("mix: op %q is not served by the %s target (want %s)", name, target, strings.Join(names, ", "))
		}
	}
	for o := range numOps {
		w := mix[o.String()]
		if w <= 0 {
			continue
		}
		pl.total += uint64(w)
		pl.ops = append(pl.ops, o)
		pl.cum = append(pl.cum, pl.total)
	}
	if pl.total == 0 {
		return nil, fmt.Errorf("mix: every weight is zero")
	}
	if mix[opTransferencia.String()] > 0 && accounts < 2 {
		return nil, fmt.Errorf("accounts: a transfer needs two distinct accounts; want --accounts >= 2")
	}
	if amin < 1 || amax < amin {
		return nil, fmt.Errorf("amount: %d..%d; want 1 <= MIN <= MAX", amin, amax)
	}
	p, err := newPicker(d, accounts)
	if err != nil {
		return nil, err
	}
	pl.pick = p
	return pl, nil
}

func (pl *planner) next(r *rand.Rand) planned { return pl.nextInto(r, nil) }

// nextInto is next, drawing a batch's transfers, when the planner batches
// them, into buf's array when it is large enough. The batch's transfers
// are drawn as single ones are: distinct accounts, amounts in range.
func (pl *planner) nextInto(r *rand.Rand, buf []xfer) planned {
	x := r.Uint64N(pl.total)
	i := 0
	for x >= pl.cum[i] {
		i++
	}
	p := planned{op: pl.ops[i], a: pl.pick.pick(r)}
	p.amount = pl.amin + r.Int64N(pl.amax-pl.amin+1)
	if p.op == opTransferencia {
		p.b = pl.other(r, p.a)
		if pl.batch > 1 {
			p.batch = append(buf[:0], xfer{p.a, p.b, p.amount})
			for len(p.batch) < pl.batch {
				a := pl.pick.pick(r)
				amount := pl.amin + r.Int64N(pl.amax-pl.amin+1)
				p.batch = append(p.batch, xfer{a, pl.other(r, a), amount})
			}
		}
	}
	return p
}

// other picks a destination distinct from a, from the same distribution
// while that is cheap; a distribution concentrated on a single account
// (hot:1:1) falls back to a uniform choice among the others.
func (pl *planner) other(r *rand.Rand, a int64) int64 {
	for range 64 {
		if b := pl.pick.pick(r); b != a {
			return b
		}
	}
	b := 1 + r.Int64N(pl.accounts-1)
	if b >= a {
		b++
	}
	return b
}

// parseAmount parses "MIN..MAX" or a single "N".
func parseAmount(s string) (lo, hi int64, err error) {
	s = strings.TrimSpace(s)
	a, b, isRange := strings.Cut(s, "..")
	if !isRange {
		b = a
	}
	lo, err1 := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	hi, err2 := strconv.ParseInt(strings.TrimSpace(b), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("amount: %q: want MIN..MAX or N, e.g. 1..100", s)
	}
	if lo < 1 || hi < lo {
		return 0, 0, fmt.Errorf("amount: %q: want 1 <= MIN <= MAX", s)
	}
	// Keep the range well inside int64 so sums of millions of amounts
	// cannot overflow the conservation arithmetic.
	if hi > 1<<40 {
		return 0, 0, fmt.Errorf("amount: %q: MAX must be at most %d", s, int64(1)<<40)
	}
	return lo, hi, nil
}
