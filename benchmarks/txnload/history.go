package txnload

import (
	"slices"
	"time"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/benchmarks/check"
	"github.com/bank/gobank/benchmarks/loadgen"
)

// entryOf completes e, a transaction's outcome, with its legs and the
// balances it answered: a transfer for two legs, a move for more.
func entryOf(e check.Entry, legs []teller.Leg, saldos []int64) check.Entry {
	ok := e.Result == check.ResultOK
	if len(legs) == 2 {
		e.Op, e.A, e.B, e.Amount = check.OpTransferencia, legs[0].Conta, legs[1].Conta, legs[1].Delta
		if ok {
			e.Saldo, e.SaldoB = saldos[0], saldos[1]
		}
		return e
	}
	e.Op = check.OpMove
	e.Legs = make([]check.Leg, len(legs))
	for i, l := range legs {
		e.Legs[i] = check.Leg(l)
	}
	if ok {
		e.LegSaldos = append([]int64(nil), saldos...)
	}
	return e
}

// history is the run's, as a history file would hold it: the header (the
// run began at start), the transactions in return order, and the final
// balances as a snapshot taken between snapCall and snapRet, when nothing
// else ran.
func history(cfg Config, r *Result, ops []check.Entry, start time.Time, snapCall, snapRet time.Duration) *check.History {
	slices.SortFunc(ops, func(a, b check.Entry) int { return int(a.Ret - b.Ret) })
	for i := range ops {
		ops[i].Line = i + 2
	}
	h := &check.History{
		Header: check.Header{Type: check.TypeHeader, Version: loadgen.HistoryVersion, Target: check.TargetInprocess,
			Start: start.UTC().Format(time.RFC3339Nano), Accounts: cfg.Accounts, Groups: cfg.Groups,
			Initial: r.Initial, Covers: []int64{1, int64(cfg.Accounts)}},
		Ops: ops,
		Snapshots: []check.Entry{{Type: check.TypeSnapshot, Client: -1, Call: int64(snapCall), Ret: int64(snapRet),
			Result: check.ResultOK, Saldos: r.Final, Line: len(ops) + 2}},
	}
	return h
}
