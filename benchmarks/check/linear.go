package check

import (
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// LinearOptions configures Linearizable.
type LinearOptions struct {
	// Timeout bounds porcupine's search (0: DefaultLinearTimeout); when it
	// runs out the result is inconclusive.
	Timeout time.Duration
	// Visualization, when not "", is where porcupine's HTML visualization
	// is written if the history is not linearizable.
	Visualization string
}

// DefaultLinearTimeout bounds the linearizability search by default.
const DefaultLinearTimeout = 5 * time.Minute

// linInput is a porcupine operation's input.
type linInput struct {
	Op     string // an Op* name, or TypeSnapshot
	A, B   int64
	Amount int64
	Legs   []Leg // a move's (1 to MaxLegs, distinct accounts)
	Group  int
	Lo, Hi int64 // the group's accounts, for snapshots (absolute numbers)
}

// linOutput is its output.
type linOutput struct {
	Result        string // ResultOK, ResultFail (insufficient funds only) or ResultUnknown
	Saldo, SaldoB int64
	// Saldos is a snapshot's balances of accounts Lo..Hi, or a move's new
	// balances in leg order.
	Saldos []int64
}

// state is every covered account's balance (index: account - first); Step
// never modifies one, it copies.
type state []int64

// BankModel is the sequential specification the linearizability checker
// uses: accounts first..first+len(initial)-1 holding balances; a deposit
// adds, a withdrawal or transfer subtracts only when the funds suffice
// (answering INSUFFICIENT_FUNDS otherwise), reads and snapshots observe. A
// move adds each leg's delta to its account, all legs at once, only when
// no new balance would be negative (else INSUFFICIENT_FUNDS) nor beyond
// int64, and answers the new balances in leg order. A credit whose result
// would not fit in an int64 cannot happen (the bank refuses it). An
// operation of unknown outcome applies its effect if it can (and porcupine
// may order it after every other operation, where its effect is
// invisible: so it may or may not have taken effect).
func BankModel(first int64, initial []int64, groups int) porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			byGroup := map[int][]porcupine.Operation{}
			for _, o := range history {
				in, _ := o.Input.(linInput)
				g := in.Group
				byGroup[g] = append(byGroup[g], o)
			}
			out := make([][]porcupine.Operation, 0, len(byGroup))
			for g := range max(groups, 1) {
				if ops := byGroup[g]; len(ops) > 0 {
					out = append(out, ops)
				}
			}
			return out
		},
		Init: func() any { return state(slices.Clone(initial)) },
		Step: func(st, in, out any) (bool, any) {
			s, _ := st.(state)
			i, _ := in.(linInput)
			o, _ := out.(linOutput)
			return step(s, first, i, o)
		},
		Equal: func(a, b any) bool { return slices.Equal(a.(state), b.(state)) },
		Hash: func(st any) uint64 {
			h := fnv.New64a()
			var b [8]byte
			for _, v := range st.(state) {
				for i := range 8 {
					b[i] = byte(v >> (8 * i))
				}
				_, _ = h.Write(b[:])
			}
			return h.Sum64()
		},
		DescribeOperation: func(in, out any) string {
			i, _ := in.(linInput)
			o, _ := out.(linOutput)
			var s string
			switch i.Op {
			case OpDeposito, OpSaque:
				s = fmt.Sprintf("%s(%d, %d)", i.Op, i.A, i.Amount)
			case OpTransferencia:
				s = fmt.Sprintf("transferencia(%d→%d, %d)", i.A, i.B, i.Amount)
			case OpSaldo:
				s = fmt.Sprintf("saldo(%d)", i.A)
			case OpMove:
				var b strings.Builder
				b.WriteString("move(")
				for j, l := range i.Legs {
					if j > 0 {
						b.WriteString(", ")
					}
					fmt.Fprintf(&b, "%d%+d", l.Conta, l.Delta)
				}
				s = b.String() + ")"
			default:
				s = fmt.Sprintf("snapshot(%d..%d)", i.Lo, i.Hi)
			}
			switch {
			case o.Result == ResultUnknown:
				return s + " → ?"
			case o.Result == ResultFail:
				return s + " → INSUFFICIENT_FUNDS"
			case i.Op == OpTransferencia:
				return fmt.Sprintf("%s → %d, %d", s, o.Saldo, o.SaldoB)
			case i.Op == TypeSnapshot || i.Op == OpMove:
				return fmt.Sprintf("%s → %v", s, o.Saldos)
			}
			return fmt.Sprintf("%s → %d", s, o.Saldo)
		},
		DescribeState: func(st any) string {
			parts := make([]string, 0, 8)
			s, _ := st.(state)
			for i, v := range s {
				parts = append(parts, strconv.FormatInt(first+int64(i), 10)+":"+strconv.FormatInt(v, 10))
			}
			return "{" + strings.Join(parts, " ") + "}"
		},
	}
}

// at returns account a's index in s (first's is 0), or -1 when s has no
// such account.
func at(s state, first, a int64) int {
	if a < first || a-first >= int64(len(s)) {
		return -1
	}
	return int(a - first)
}

func step(s state, first int64, in linInput, out linOutput) (bool, any) {
	ia, ib := at(s, first, in.A), at(s, first, in.B)
	switch in.Op {
	case TypeSnapshot:
		lo, hi := at(s, first, in.Lo), at(s, first, in.Hi)
		if lo < 0 || hi < lo {
			return false, s
		}
		return slices.Equal(s[lo:hi+1], out.Saldos), s
	case OpSaldo:
		return ia >= 0 && s[ia] == out.Saldo, s
	case OpMove:
		return move(s, first, in, out)
	}
	if ia < 0 || in.Op == OpTransferencia && ib < 0 {
		return false, s
	}
	a := s[ia]
	var na, nb int64
	funds, fits := true, true
	switch in.Op {
	case OpDeposito:
		na, fits = credit(a, in.Amount)
	case OpSaque:
		na, funds = a-in.Amount, in.Amount >= 0 && a >= in.Amount
	case OpTransferencia:
		na, funds = a-in.Amount, in.Amount >= 0 && a >= in.Amount
		nb, fits = credit(s[ib], in.Amount)
	default:
		return false, s
	}
	switch out.Result {
	case ResultFail: // insufficient funds: an observation of the balance
		return !funds, s
	case ResultOK:
		if !funds || !fits || na != out.Saldo || in.Op == OpTransferencia && nb != out.SaldoB {
			return false, s
		}
	case ResultUnknown:
		if !funds || !fits { // the bank refused it, whatever the client saw
			return true, s
		}
	}
	n := slices.Clone(s)
	n[ia] = na
	if in.Op == OpTransferencia {
		n[ib] = nb
	}
	return true, n
}

// move is step for a move: its new balances are computed on the stack,
// and s is copied once whatever the legs (as for a transfer).
func move(s state, first int64, in linInput, out linOutput) (bool, any) {
	if len(in.Legs) == 0 || len(in.Legs) > MaxLegs {
		return false, s
	}
	var idx [MaxLegs]int
	var nb [MaxLegs]int64
	funds, fits := true, true
	for i, l := range in.Legs {
		j := at(s, first, l.Conta)
		if j < 0 {
			return false, s
		}
		var f, ok bool
		idx[i] = j
		nb[i], f, ok = leg(s[j], l.Delta)
		funds, fits = funds && f, fits && ok
	}
	switch out.Result {
	case ResultFail: // insufficient funds: an observation of the balances
		return !funds, s
	case ResultOK:
		if !funds || !fits || len(out.Saldos) != len(in.Legs) || !slices.Equal(nb[:len(in.Legs)], out.Saldos) {
			return false, s
		}
	case ResultUnknown:
		if !funds || !fits { // the bank refused it, whatever the client saw
			return true, s
		}
	}
	n := slices.Clone(s)
	for i := range in.Legs {
		n[idx[i]] = nb[i]
	}
	return true, n
}

// leg returns b+delta, whether the funds suffice (the exact sum is not
// negative) and whether it fits in an int64, as the bank's Move judges a
// leg (teller's add).
func leg(b, delta int64) (n int64, funds, fits bool) {
	switch {
	case delta > 0 && b > math.MaxInt64-delta:
		return b, true, false
	case delta < 0 && b < math.MinInt64-delta:
		return b, false, true
	}
	n = b + delta
	return n, n >= 0, true
}

// credit returns b+amount, and whether it is a balance: amount is not
// negative and the sum fits in an int64.
func credit(b, amount int64) (int64, bool) {
	if amount < 0 || b > math.MaxInt64-amount {
		return b, false
	}
	return b + amount, true
}

// Linearizable checks the history with porcupine against BankModel,
// partitioned by the header's account groups. Refusals other than
// INSUFFICIENT_FUNDS say nothing about balances and are left out;
// operations of unknown outcome get a return time after every other
// event. On failure the visualization is written to opt.Visualization.
func Linearizable(h *History, opt LinearOptions) Result {
	t0 := time.Now()
	r := Result{Name: "linearizability", OK: true}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultLinearTimeout
	}
	if h.Header.Initial == nil || len(h.Header.Initial) != h.Header.Accounts {
		r.OK, r.Inconclusive = false, true
		r.Note = "the history has no initial balances"
		return finish(r, t0)
	}
	n, groups := h.Header.Accounts, max(h.Header.Groups, 1)
	first, _ := h.Header.Span()
	group := func(a int64) int { return groupOf(a-first+1, n, groups) }
	var end int64
	for _, e := range h.Ops {
		end = max(end, e.Ret, e.Call)
	}
	for _, e := range h.Snapshots {
		end = max(end, e.Ret, e.Call)
	}
	never := end + 1
	var ops []porcupine.Operation
	lines := map[int]Entry{}
	add := func(e Entry, in linInput, out linOutput) {
		lines[e.Line] = e
		ret := e.Ret
		if out.Result == ResultUnknown {
			ret = never
		}
		ops = append(ops, porcupine.Operation{ClientId: max(e.Client+1, 0), Input: in, Call: e.Call, Output: out, Return: ret, Metadata: e.Line})
	}
	skipped := 0
	for _, e := range h.Ops {
		res := e.Result
		if res == ResultFail && e.Error != "INSUFFICIENT_FUNDS" || e.Op == OpSaldo && res != ResultOK {
			skipped++ // applied nothing, observed nothing
			continue
		}
		if e.Op == OpMove {
			g, err := checkLegs(first, n, groups, e.Legs)
			switch {
			case err != nil:
				r.add(Violation{Message: "a move the checker cannot judge (Read would refuse it): legs" + err.Error(), Entries: []Entry{e}})
			case res == ResultOK && len(e.LegSaldos) != len(e.Legs):
				r.add(Violation{Message: fmt.Sprintf("a move of %d legs answered %d balances", len(e.Legs), len(e.LegSaldos)), Entries: []Entry{e}})
			default:
				add(e, linInput{Op: e.Op, Legs: e.Legs, Group: g}, linOutput{Result: res, Saldos: e.LegSaldos})
			}
			continue
		}
		g := group(e.A)
		if g < 0 || e.Op == OpTransferencia && group(e.B) != g {
			r.add(Violation{Message: "an operation names an account outside the history's groups, or a transfer crosses groups", Entries: []Entry{e}})
			continue
		}
		add(e, linInput{Op: e.Op, A: e.A, B: e.B, Amount: e.Amount, Group: g},
			linOutput{Result: res, Saldo: e.Saldo, SaldoB: e.SaldoB})
	}
	for _, e := range h.Snapshots {
		if e.Result != ResultOK {
			skipped++
			continue
		}
		if len(e.Saldos) != n {
			r.add(Violation{Message: fmt.Sprintf("a snapshot has %d balances, the history %d accounts", len(e.Saldos), n), Entries: []Entry{e}})
			continue
		}
		for g := range groups {
			lo, hi := bounds(g, n, groups)
			add(e, linInput{Op: TypeSnapshot, Group: g, Lo: first - 1 + lo, Hi: first - 1 + hi},
				linOutput{Result: ResultOK, Saldos: e.Saldos[lo-1 : hi]})
		}
	}
	r.Checked = len(h.Ops) + len(h.Snapshots)
	if len(r.Violations) > 0 {
		return finish(r, t0)
	}
	model := BankModel(first, h.Header.Initial, groups)
	// The search that keeps the partial linearizations (Verbose) copies
	// the whole stack at every new depth it backtracks from: quadratic in
	// a partition's length (a 12k-operation partition took 9 GB and ran
	// out of a minute). So the verdict comes from the plain search, and
	// only a refuted history is searched again for its explanation.
	res := porcupine.CheckOperationsTimeout(model, ops, opt.Timeout)
	var info porcupine.LinearizationInfo
	if res == porcupine.Illegal {
		res, info = porcupine.CheckOperationsVerbose(model, ops, opt.Timeout)
	}
	switch res {
	case porcupine.Ok:
	case porcupine.Unknown:
		r.OK, r.Inconclusive = false, true
		r.Note = fmt.Sprintf("porcupine's search ran out of time (%v): neither proven nor refuted", opt.Timeout)
	case porcupine.Illegal:
		v := Violation{Message: "the history is not linearizable: no order of the operations consistent with real time explains every answer"}
		longest := 0
		for _, part := range info.PartialLinearizationsOperations() {
			for _, lin := range part {
				if len(lin) > longest {
					longest = len(lin)
					v.Entries = v.Entries[:0]
					for _, o := range lin[max(len(lin)-5, 0):] {
						v.Entries = append(v.Entries, lines[o.Metadata.(int)])
					}
				}
			}
		}
		if longest > 0 {
			v.Message += fmt.Sprintf("; the longest partial linearization orders %d operations, ending with", longest)
		}
		r.add(v)
		if opt.Visualization != "" {
			if err := porcupine.VisualizePath(model, info, opt.Visualization); err != nil {
				r.Note = "writing the visualization: " + err.Error()
			} else {
				r.Visualization = opt.Visualization
			}
		}
	}
	if skipped > 0 && r.Note == "" {
		r.Note = fmt.Sprintf("%d refusals and failed reads left out (they change and observe nothing)", skipped)
	}
	return finish(r, t0)
}

// bounds returns group g's accounts lo..hi, as loadgen.GroupOf splits them.
func bounds(g, accounts, groups int) (lo, hi int64) {
	if groups <= 1 {
		return 1, int64(accounts)
	}
	return int64(g*accounts/groups) + 1, int64((g + 1) * accounts / groups)
}
