package check

import (
	"bufio"
	"cmp"
	"encoding/json"
	"io"
	"slices"
)

// The targets a history's header may name.
const (
	// TargetBusiness: the operations went through business servers over
	// HTTP (bank bench --history).
	TargetBusiness = "business"
	// TargetInprocess: they were made in-process, by Tellers over the
	// account actors (package txnload).
	TargetInprocess = "inprocess"
)

// Write writes h as a history file, which Read reads back: the header,
// then the operations and snapshots merged in return order, each with
// exactly the keys its kind has. It is for histories built in memory
// (package txnload's), so that one can be kept and judged again by
// "bank check FILE". The Line fields are not written: Read numbers the
// lines it reads.
func Write(w io.Writer, h *History) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(h.Header); err != nil {
		return err
	}
	all := slices.Concat(h.Ops, h.Snapshots)
	slices.SortStableFunc(all, func(a, b Entry) int { return cmp.Compare(a.Ret, b.Ret) })
	for _, e := range all {
		if err := enc.Encode(line(e)); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// line is e's line: the keys Read requires of its type, operation and
// result, and no other.
func line(e Entry) map[string]any {
	m := map[string]any{"type": e.Type, "client": e.Client, "call": e.Call, "ret": e.Ret, "result": e.Result}
	ok := e.Result == ResultOK
	if !ok {
		m["status"], m["error"] = e.Status, e.Error
	}
	switch {
	case e.Type == TypeSnapshot:
		if ok {
			m["saldos"] = e.Saldos
		}
	case e.Op == OpMove:
		m["op"], m["legs"] = e.Op, e.Legs
		if ok {
			m["leg_saldos"] = e.LegSaldos
		}
	default:
		m["op"], m["a"] = e.Op, e.A
		if e.Op != OpSaldo {
			m["amount"] = e.Amount
		}
		if e.Op == OpTransferencia {
			m["b"] = e.B
		}
		if ok {
			m["saldo"] = e.Saldo
			if e.Op == OpTransferencia {
				m["saldo_b"] = e.SaldoB
			}
		}
	}
	return m
}
