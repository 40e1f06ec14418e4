package check_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bank/gobank/benchmarks/check"
)

// benchHistory is a version 1 history (which every version of Read
// reads) of ops operations over 10 accounts, and a snapshot every
// ops/snaps of them.
func benchHistory(ops, snaps int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"type":"header","version":1,"start":"x","target":"business","accounts":10,"groups":0,"initial":[1000,1000,1000,1000,1000,1000,1000,1000,1000,1000]}` + "\n")
	for i := range ops {
		t := int64(i) * 100
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, `{"type":"op","client":%d,"op":"deposito","a":%d,"amount":10,"call":%d,"ret":%d,"result":"ok","saldo":1010}`+"\n", i%8, 1+i%10, t, t+50)
		case 1:
			fmt.Fprintf(&b, `{"type":"op","client":%d,"op":"transferencia","a":%d,"b":%d,"amount":10,"call":%d,"ret":%d,"result":"ok","saldo":990,"saldo_b":1010}`+"\n", i%8, 1+i%10, 1+(i+1)%10, t, t+50)
		case 2:
			fmt.Fprintf(&b, `{"type":"op","client":%d,"op":"saque","a":%d,"amount":10,"call":%d,"ret":%d,"result":"unknown","status":0,"error":"timeout"}`+"\n", i%8, 1+i%10, t, t+50)
		default:
			fmt.Fprintf(&b, `{"type":"op","client":%d,"op":"saldo","a":%d,"call":%d,"ret":%d,"result":"ok","saldo":1000}`+"\n", i%8, 1+i%10, t, t+50)
		}
		if i%(ops/snaps) == 0 {
			fmt.Fprintf(&b, `{"type":"snapshot","client":-1,"call":%d,"ret":%d,"result":"ok","saldos":[1000,1000,1000,1000,1000,1000,1000,1000,1000,1000]}`+"\n", t, t+60)
		}
	}
	return b.Bytes()
}

func BenchmarkRead(b *testing.B) {
	data := benchHistory(100_000, 100)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := check.Read(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBank(b *testing.B) {
	h, err := check.Read(bytes.NewReader(benchHistory(100_000, 100)))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		check.Bank(h)
	}
}

// linearHistory is a linearizable history built in memory, as a program
// driving the bank would: n operations of 8 clients over 32 accounts,
// each overlapping the two before and the two after it, answered as if
// applied in order; a snapshot every 100 and an operation of unknown
// outcome (applied) every 500. legs 2 makes every operation a
// transfer, legs > 2 a move of legs legs (one account debited
// (legs-1)·v, legs-1 credited v each).
func linearHistory(n, legs int) *check.History {
	const accounts, clients = 32, 8
	h := &check.History{Header: check.Header{Type: check.TypeHeader, Version: 3, Target: "business",
		Accounts: accounts, Initial: make([]int64, accounts), Covers: []int64{1, accounts}}}
	for i := range h.Header.Initial {
		h.Header.Initial[i] = 1_000_000
	}
	bal := slices.Clone(h.Header.Initial)
	for k := range n {
		e := check.Entry{Type: check.TypeOp, Client: k % clients, Call: int64(k) * 100, Ret: int64(k)*100 + 250, Result: check.ResultOK, Line: k + 2}
		if k%100 == 99 {
			e.Type, e.Client, e.Saldos = check.TypeSnapshot, -1, slices.Clone(bal)
			h.Snapshots = append(h.Snapshots, e)
			continue
		}
		d, v := k%accounts, int64(1+k%7)
		if legs == 2 {
			e.Op, e.A, e.B, e.Amount = check.OpTransferencia, int64(d+1), int64((d+1)%accounts+1), v
			bal[d] -= v
			bal[(d+1)%accounts] += v
			e.Saldo, e.SaldoB = bal[d], bal[(d+1)%accounts]
		} else {
			e.Op = check.OpMove
			for j := range legs {
				a, delta := (d+j)%accounts, v
				if j == 0 {
					delta = -int64(legs-1) * v
				}
				bal[a] += delta
				e.Legs = append(e.Legs, check.Leg{Conta: int64(a + 1), Delta: delta})
				e.LegSaldos = append(e.LegSaldos, bal[a])
			}
		}
		if k%500 == 499 {
			e.Result, e.Status, e.Error = check.ResultUnknown, 0, "timeout"
			e.Saldo, e.SaldoB, e.LegSaldos = 0, 0, nil
		}
		h.Ops = append(h.Ops, e)
	}
	return h
}

// BenchmarkLinearizable: the check of 4000 transfers, and of as many
// 16-leg moves (the lock-scheme experiment's), over the same accounts.
func BenchmarkLinearizable(b *testing.B) {
	for _, c := range []struct {
		name string
		legs int
	}{{"transfers", 2}, {"moves16", check.MaxLegs}} {
		b.Run(c.name, func(b *testing.B) {
			h := linearHistory(4000, c.legs)
			for b.Loop() {
				if r := check.Linearizable(h, check.LinearOptions{Timeout: time.Minute}); !r.OK {
					b.Fatalf("%s %+v", r.Verdict(), r)
				}
			}
		})
	}
}
