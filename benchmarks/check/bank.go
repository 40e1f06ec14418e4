package check

import (
	"cmp"
	"fmt"
	"math"
	"math/big"
	"slices"
	"time"
)

// Bank checks that money is conserved and never negative.
//
// For every successful snapshot S, read during [S.call, S.ret], the sum of
// its balances of the accounts the history covers (Header.Span) must lie in
// [lo, hi] where, with I the sum of their initial balances,
//
//	base = I + (deposits acknowledged before S.call) - (withdrawals acknowledged before S.call)
//	lo   = base - (withdrawals that may have taken effect by S.ret)
//	hi   = base + (deposits that may have taken effect by S.ret)
//
// "acknowledged before S.call" means result ok and ret < S.call; "may have
// taken effect" means acknowledged but concurrent with S (call <= S.ret,
// ret >= S.call), or of unknown outcome and invoked by S.ret. Definite
// refusals count for nothing; transfers keep the sum. A move whose deltas
// sum to N != 0 counts as a deposit of N (N > 0) or a withdrawal of -N;
// one whose deltas sum to zero keeps the sum. No balance of a snapshot,
// and no balance a successful operation answered, may be negative.
//
// The sums are exact (math/big): no balance or amount can make them wrap.
// The checker expects a history Read has validated (call <= ret, a
// snapshot's balances of the covered accounts): it does not panic on
// another, but its verdict is then meaningless.
func Bank(h *History) Result {
	t0 := time.Now()
	r := Result{Name: "bank", OK: true}
	first, _ := h.Header.Span()
	for _, e := range h.Ops {
		r.Checked++
		if e.Result != ResultOK {
			continue
		}
		neg := e.Op != OpTransferencia && e.Saldo < 0 && e.Op != "" ||
			e.Op == OpTransferencia && (e.Saldo < 0 || e.SaldoB < 0) ||
			e.Op == OpMove && slices.ContainsFunc(e.LegSaldos, func(b int64) bool { return b < 0 })
		if neg {
			r.add(Violation{Message: "an acknowledged operation answered a negative balance", Entries: []Entry{e}})
		}
	}
	if h.Header.Initial == nil {
		r.OK, r.Inconclusive = false, true
		r.Note = "the history has no initial balances: conservation cannot be checked"
		return finish(r, t0)
	}
	initial := new(big.Int)
	var x big.Int
	for i, b := range h.Header.Initial {
		initial.Add(initial, x.SetInt64(b))
		if b < 0 {
			r.add(Violation{Message: fmt.Sprintf("account %d has a negative initial balance %d (header)", first+int64(i), b)})
		}
	}
	// Money that moved by each snapshot, from the ops sorted by time (one
	// pass, instead of every op for every snapshot): for snapshot S,
	// "acknowledged before" is ok with ret < S.call, and "may have taken
	// effect by S.ret" is ok or unknown with call <= S.ret, less those
	// acknowledged before (which call <= ret <= S.call <= S.ret includes).
	var snaps []Entry
	for _, s := range h.Snapshots {
		r.Checked++
		if s.Result == ResultOK {
			snaps = append(snaps, s)
		}
	}
	var inAcked, outAcked, inBy, outBy []flow
	var net big.Int
	for _, e := range h.Ops {
		if e.Result != ResultOK && e.Result != ResultUnknown || !netFlow(e, &net) {
			continue
		}
		acked, by := &inAcked, &inBy
		if net.Sign() < 0 {
			acked, by = &outAcked, &outBy
			net.Neg(&net)
		}
		// A move's net may exceed an int64 (16 legs of up to MaxInt64
		// each): it is then several flows at the same time.
		for net.Sign() > 0 {
			amount := int64(math.MaxInt64)
			if net.IsInt64() {
				amount = net.Int64()
			}
			net.Sub(&net, x.SetInt64(amount))
			if e.Result == ResultOK {
				*acked = append(*acked, flow{e.Ret, amount})
			}
			*by = append(*by, flow{e.Call, amount})
		}
	}
	calls, rets := make([]int64, len(snaps)), make([]int64, len(snaps))
	for i, s := range snaps {
		calls[i], rets[i] = s.Call, s.Ret
	}
	inBefore, outBefore := cumulative(inAcked, calls, true), cumulative(outAcked, calls, true)
	inUpTo, outUpTo := cumulative(inBy, rets, false), cumulative(outBy, rets, false)
	var base, maybeIn, maybeOut, lo, hi, sum, off big.Int
	for i, s := range snaps {
		sum.SetInt64(0)
		for j, b := range s.Saldos {
			sum.Add(&sum, x.SetInt64(b))
			if b < 0 {
				r.add(Violation{Message: fmt.Sprintf("account %d has a negative balance %d in a snapshot", first+int64(j), b), Entries: []Entry{s}})
			}
		}
		base.Add(initial, &inBefore[i])
		base.Sub(&base, &outBefore[i])
		maybeIn.Sub(&inUpTo[i], &inBefore[i])
		maybeOut.Sub(&outUpTo[i], &outBefore[i])
		lo.Sub(&base, &maybeOut)
		hi.Add(&base, &maybeIn)
		if sum.Cmp(&lo) >= 0 && sum.Cmp(&hi) <= 0 {
			continue
		}
		what := "money destroyed"
		off.Sub(&lo, &sum)
		if sum.Cmp(&hi) > 0 {
			what = "money created"
			off.Sub(&sum, &hi)
		}
		var net big.Int
		net.Sub(&base, initial)
		r.add(Violation{
			Message: fmt.Sprintf("%s: the snapshot sums to %d, outside [%d, %d] (initial %d, acknowledged net %+d before it, %d in / %d out concurrent or unknown): off by %d",
				what, &sum, &lo, &hi, initial, &net, &maybeIn, &maybeOut, &off),
			Entries: append([]Entry{s}, concurrent(h.Ops, s, 10)...),
		})
	}
	if len(snaps) == 0 {
		r.OK, r.Inconclusive = false, r.OK
		r.Note = "no successful snapshot in the history (bank bench --snapshot-every): only answered balances were checked"
	}
	return finish(r, t0)
}

// flow is money that moved (a deposit's or a withdrawal's amount) at a
// time.
type flow struct{ at, amount int64 }

// netFlow sets net to the money e brings into the bank (negative: takes
// out of it) and reports whether it is not zero: a deposit's amount, a
// withdrawal's negated, the sum of a move's deltas (exact); nothing for
// the other operations.
func netFlow(e Entry, net *big.Int) bool {
	switch e.Op {
	case OpDeposito:
		net.SetInt64(e.Amount)
	case OpSaque:
		net.Neg(net.SetInt64(e.Amount))
	case OpMove:
		var d big.Int
		net.SetInt64(0)
		for _, l := range e.Legs {
			net.Add(net, d.SetInt64(l.Delta))
		}
	default:
		return false
	}
	return net.Sign() != 0
}

// cumulative returns, for each query time qs[i], the sum of the amounts of
// the flows at < qs[i] (strict) or at <= qs[i]. It sorts flows.
func cumulative(flows []flow, qs []int64, strict bool) []big.Int {
	slices.SortFunc(flows, func(a, b flow) int { return cmp.Compare(a.at, b.at) })
	order := make([]int, len(qs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(qs[a], qs[b]) })
	out := make([]big.Int, len(qs))
	var acc, x big.Int
	j := 0
	for _, i := range order {
		for j < len(flows) && (flows[j].at < qs[i] || !strict && flows[j].at == qs[i]) {
			acc.Add(&acc, x.SetInt64(flows[j].amount))
			j++
		}
		out[i].Set(&acc)
	}
	return out
}

// concurrent returns up to n deposits, withdrawals and moves of non-zero
// net that may have taken effect during snapshot s without being
// acknowledged before it: the entries that explain its bounds.
func concurrent(ops []Entry, s Entry, n int) []Entry {
	var out []Entry
	var net big.Int
	for _, e := range ops {
		if len(out) == n {
			break
		}
		if e.Call <= s.Ret && netFlow(e, &net) &&
			(e.Result == ResultOK && e.Ret >= s.Call || e.Result == ResultUnknown) {
			out = append(out, e)
		}
	}
	return out
}

func finish(r Result, t0 time.Time) Result {
	r.Duration = time.Since(t0)
	if len(r.Violations) > 0 {
		r.OK, r.Inconclusive = false, false
	}
	return r
}
