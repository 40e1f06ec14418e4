package txnload_test

import (
	"bytes"
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/benchmarks/check"
	"github.com/bank/gobank/benchmarks/loadgen"
	"github.com/bank/gobank/benchmarks/txnload"
)

func config(mode teller.LockMode, legs int) txnload.Config {
	dist, _ := loadgen.ParseDist("zipf:0.9")
	return txnload.Config{
		Accounts: 40, InitialBalance: 1000, Tellers: 3, Workers: 16, Legs: legs, Dist: dist, Groups: 4,
		Mode: mode, Order: teller.OrderRequest, LockWait: 200 * time.Millisecond,
		AmountMin: 1, AmountMax: 20, Duration: 300 * time.Millisecond, Seed: 7,
	}
}

// TestProvenCorrect: a recorded run of transfers in request order under
// each lock mode passes both checkers and conservation.
func TestProvenCorrect(t *testing.T) {
	for _, mode := range teller.Modes() {
		t.Run(string(mode), func(t *testing.T) {
			cfg := config(mode, 2)
			cfg.Record = true
			if mode == teller.ModeDetect {
				cfg.Dir = t.TempDir() // and once durable
			}
			r, err := txnload.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if r.Committed == 0 || r.Errors != 0 {
				t.Fatalf("%d committed, %d errors (%s)", r.Committed, r.Errors, r.FirstError)
			}
			if !r.Conserved {
				t.Fatalf("not conserved: %s", r.ConservationNote)
			}
			if n := int64(len(r.History.Ops)); n != r.Committed+r.Refused+r.Timeouts {
				t.Fatalf("%d ops recorded, %d ended", n, r.Committed+r.Refused+r.Timeouts)
			}
			v, err := r.Verify(time.Minute)
			if err != nil || !v.Proven() {
				t.Fatalf("%v %v: bank %v; linearizability %v %s", v, err, v.Bank.Violations, v.Linearizable.Violations, v.Linearizable.Note)
			}
			t.Logf("%s: %.0f/s committed, %d refused, %d timeouts, %+v; checked in %v + %v",
				mode, r.CommittedPerSec(), r.Refused, r.Timeouts, r.Stats, v.Bank.Duration, v.Linearizable.Duration)
		})
	}
}

// TestWideTransactions: 16-leg transactions in request order, under the
// schemes that cannot deadlock, all end and conserve money.
func TestWideTransactions(t *testing.T) {
	for _, mode := range []teller.LockMode{teller.ModeWaitDie, teller.ModeWoundWait, teller.ModeDetect, teller.ModeOCC} {
		cfg := config(mode, 16)
		cfg.Groups = 2
		cfg.Record = true
		r, err := txnload.Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if r.Committed == 0 || r.Errors != 0 || !r.Conserved {
			t.Fatalf("%s: %d committed, %d errors (%s), conserved %v (%s)", mode, r.Committed, r.Errors, r.FirstError, r.Conserved, r.ConservationNote)
		}
		if r.Stats.Attempts != r.Stats.Done+r.Stats.Aborts() {
			t.Errorf("%s: stats %+v", mode, r.Stats)
		}
		if v, err := r.Verify(time.Minute); err != nil || !v.Proven() {
			t.Fatalf("%s: %v %v: bank %v; linearizability %v", mode, v, err, v.Bank.Violations, v.Linearizable.Violations)
		}
		t.Logf("%s, 16 legs: %.0f/s committed, %d timeouts, %d aborts", mode, r.CommittedPerSec(), r.Timeouts, r.Stats.Aborts())
	}
}

// TestVerifyCanFail: a history with one answer changed is not proven.
func TestVerifyCanFail(t *testing.T) {
	cfg := config(teller.ModeWaitDie, 2)
	cfg.Record = true
	r, err := txnload.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range r.History.Ops {
		if e := &r.History.Ops[i]; e.Result == check.ResultOK {
			e.Saldo++
			break
		}
	}
	v, err := r.Verify(time.Minute)
	if err != nil || v.Proven() || v.Linearizable.OK {
		t.Fatalf("a changed answer: %v, %v; want linearizability to fail", v, err)
	}
	r.History = nil
	if _, err := r.Verify(time.Minute); err == nil {
		t.Error("Verify without a history: no error")
	}
}

// TestHistoryRoundTrip: a recorded run of odd and even widths, written
// by check.Write, reads back as the same history; its transactions
// conserve money, each account moving by the amount or twice it; each
// worker stays in its group.
func TestHistoryRoundTrip(t *testing.T) {
	for _, legs := range []int{2, 3, 16} {
		cfg := config(teller.ModeDetect, legs)
		cfg.Groups = 2
		cfg.Record = true
		r, err := txnload.Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		group := map[int]int64{}
		for _, e := range r.History.Ops {
			first := e.A
			if e.Op == check.OpMove {
				var sum, most int64
				for _, l := range e.Legs {
					sum += l.Delta
					most = max(most, l.Delta, -l.Delta)
				}
				if len(e.Legs) != legs || sum != 0 || most > 2*cfg.AmountMax {
					t.Fatalf("%d legs: a move %v", legs, e)
				}
				first = e.Legs[0].Conta
			}
			g := (first - 1) / int64(cfg.Accounts/cfg.Groups)
			if was, ok := group[e.Client]; ok && was != g {
				t.Fatalf("worker %d moved from group %d to %d: %v", e.Client, was, g, e)
			}
			group[e.Client] = g
		}
		var buf bytes.Buffer
		if err := check.Write(&buf, r.History); err != nil {
			t.Fatal(err)
		}
		back, err := check.Read(&buf)
		if err != nil {
			t.Fatalf("%d legs: reading the written history: %v", legs, err)
		}
		want := *r.History
		for _, es := range [][]check.Entry{want.Ops, want.Snapshots, back.Ops, back.Snapshots} {
			for i := range es {
				es[i].Line = 0
			}
		}
		if !reflect.DeepEqual(back.Header, want.Header) || !reflect.DeepEqual(back.Ops, want.Ops) || !reflect.DeepEqual(back.Snapshots, want.Snapshots) {
			t.Fatalf("%d legs: the history read back differs from the one written (%d ops, %d read)", legs, len(want.Ops), len(back.Ops))
		}
	}
}

func TestConfigRefused(t *testing.T) {
	for name, mod := range map[string]func(*txnload.Config){
		"one leg":           func(c *txnload.Config) { c.Legs = 1 },
		"17 legs":           func(c *txnload.Config) { c.Legs = 17 },
		"groups too small":  func(c *txnload.Config) { c.Groups = 10; c.Legs = 5 },
		"no worker":         func(c *txnload.Config) { c.Workers = 0 },
		"amounts backwards": func(c *txnload.Config) { c.AmountMin, c.AmountMax = 5, 4 },
		"no duration":       func(c *txnload.Config) { c.Duration = 0 },
	} {
		cfg := config(teller.ModeWait, 2)
		mod(&cfg)
		if _, err := txnload.Run(context.Background(), cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
