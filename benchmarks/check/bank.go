package check

import (
	"fmt"
	"time"
)

// Bank checks that money is conserved and never negative.
//
// For every successful snapshot S, read during [S.call, S.ret], the sum of
// its balances must lie in [lo, hi] where, with I the sum of the initial
// balances,
//
//	base = I + (deposits acknowledged before S.call) - (withdrawals acknowledged before S.call)
//	lo   = base - (withdrawals that may have taken effect by S.ret)
//	hi   = base + (deposits that may have taken effect by S.ret)
//
// "acknowledged before S.call" means result ok and ret < S.call; "may have
// taken effect" means acknowledged but concurrent with S (call <= S.ret,
// ret >= S.call), or of unknown outcome and invoked by S.ret. Definite
// refusals count for nothing; transfers keep the sum. No balance of a
// snapshot, and no balance a successful operation answered, may be
// negative.
func Bank(h *History) Result {
	t0 := time.Now()
	r := Result{Name: "bank", OK: true}
	for _, e := range h.Ops {
		r.Checked++
		if e.Result != ResultOK {
			continue
		}
		neg := e.Op != OpTransferencia && e.Saldo < 0 && e.Op != "" ||
			e.Op == OpTransferencia && (e.Saldo < 0 || e.SaldoB < 0)
		if neg {
			r.add(Violation{Message: "an acknowledged operation answered a negative balance", Entries: []Entry{e}})
		}
	}
	if h.Header.Initial == nil {
		r.OK, r.Inconclusive = false, true
		r.Note = "the history has no initial balances: conservation cannot be checked"
		return finish(r, t0)
	}
	var initial int64
	for _, b := range h.Header.Initial {
		initial += b
	}
	snaps := 0
	for _, s := range h.Snapshots {
		r.Checked++
		if s.Result != ResultOK {
			continue
		}
		snaps++
		var sum int64
		for i, b := range s.Saldos {
			sum += b
			if b < 0 {
				r.add(Violation{Message: fmt.Sprintf("account %d has a negative balance %d in a snapshot", i+1, b), Entries: []Entry{s}})
			}
		}
		base, maybeIn, maybeOut := initial, int64(0), int64(0)
		var concurrent []Entry
		for _, e := range h.Ops {
			var sign int64
			switch e.Op {
			case OpDeposito:
				sign = 1
			case OpSaque:
				sign = -1
			default:
				continue
			}
			switch {
			case e.Result == ResultOK && e.Ret < s.Call:
				base += sign * e.Amount
			case e.Result == ResultOK && e.Call <= s.Ret, e.Result == ResultUnknown && e.Call <= s.Ret:
				if sign > 0 {
					maybeIn += e.Amount
				} else {
					maybeOut += e.Amount
				}
				if len(concurrent) < 10 {
					concurrent = append(concurrent, e)
				}
			}
		}
		lo, hi := base-maybeOut, base+maybeIn
		if sum < lo || sum > hi {
			what := "money destroyed"
			off := lo - sum
			if sum > hi {
				what, off = "money created", sum-hi
			}
			r.add(Violation{
				Message: fmt.Sprintf("%s: the snapshot sums to %d, outside [%d, %d] (initial %d, acknowledged net %+d before it, %d in / %d out concurrent or unknown): off by %d",
					what, sum, lo, hi, initial, base-initial, maybeIn, maybeOut, off),
				Entries: append([]Entry{s}, concurrent...),
			})
		}
	}
	if snaps == 0 {
		r.OK, r.Inconclusive = false, r.OK
		r.Note = "no successful snapshot in the history (bank bench --snapshot-every): only answered balances were checked"
	}
	return finish(r, t0)
}

func finish(r Result, t0 time.Time) Result {
	r.Duration = time.Since(t0)
	if len(r.Violations) > 0 {
		r.OK, r.Inconclusive = false, false
	}
	return r
}
