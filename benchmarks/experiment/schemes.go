package experiment

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/benchmarks/loadgen"
)

// The report's sections on the concurrency-control schemes: how they
// fare against plain waiting where waiting deadlocks (request order,
// high skew), how soon the detector breaks a cycle, and whether the
// cells agree with the qualitative findings of Yu et al., "Staring into
// the Abyss: An Evaluation of Concurrency Control with One Thousand
// Cores" (PVLDB 8(3), 2014). Every sentence is computed from the cells.

// Policies named by the schemes' sections.
var (
	policyWaitDie   = Policy(teller.ModeWaitDie)
	policyWoundWait = Policy(teller.ModeWoundWait)
	policyDetect    = Policy(teller.ModeDetect)
	policyOCC       = Policy(teller.ModeOCC)
)

// highContention reports whether a skew is where the paper's "high
// contention" is: θ ≥ 0.9, or a hot account.
func highContention(sk Skew) bool { return !sk.OnThetaAxis() || sk.Theta >= 0.9 }

// schemeConditions lists the request-order conditions of high contention
// where wait ran, in run order.
func schemeConditions(ix index, results []Result) []condition {
	var out []condition
	for _, c := range conditions(results) {
		if c.Order == OrderRequest && highContention(c.Skew) && ix.get(PolicyWait, c) != nil {
			out = append(out, c)
		}
	}
	return out
}

// best returns the policy of ps with the most committed transactions/s at
// c, and its result (nil when none ran).
func best(ix index, c condition, ps []Policy) (Policy, *Result) {
	var bp Policy
	var br *Result
	for _, p := range ps {
		if r := ix.get(p, c); r != nil && (br == nil || r.CommitsPerSec > br.CommitsPerSec) {
			bp, br = p, r
		}
	}
	return bp, br
}

// writeSchemes writes the request-order table, the detector's latency
// and the verdict on the done-when claims.
func writeSchemes(b *strings.Builder, ix index, results []Result, s Settings) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	conds := schemeConditions(ix, results)
	if len(conds) == 0 {
		return
	}
	policies := distinct(results, func(r *Result) Policy { return r.Policy })
	slices.SortStableFunc(policies, func(a, b Policy) int { return cmp.Compare(a.rank(), b.rank()) })

	p("## The schemes where waiting deadlocks: request order, θ ≥ 0.9 and the hot account\n\n")
	p("Committed transactions/s; in brackets, the ratio to plain `wait` in the same condition. Request order is where opposite transactions form cycles that plain waiting breaks only at `LockWait` (%s).\n\n", s.LockWait)
	p("| transport | legs | skew | servers | workers |")
	for _, pol := range policies {
		p(" %s |", pol)
	}
	p(" most |\n|---|--:|---|--:|--:|%s---|\n", strings.Repeat("--:|", len(policies)))
	type tally struct{ beat, of int }
	beats := map[Policy]*tally{policyWaitDie: {}, policyWoundWait: {}, policyDetect: {}}
	for _, c := range conds {
		wt := ix.get(PolicyWait, c)
		p("| %s | %d | %s | %d | %d |", c.Transport, c.Legs, c.Skew.Name(), c.Servers, c.Workers)
		for _, pol := range policies {
			r := ix.get(pol, c)
			switch {
			case r == nil:
				p(" – |")
			case pol == PolicyWait:
				p(" %s |", fmtRate(r.CommitsPerSec))
			default:
				p(" %s (%s) |", fmtRate(r.CommitsPerSec), fmtRatio(ratio(r.CommitsPerSec, wt.CommitsPerSec)))
			}
			if t, ok := beats[pol]; ok && r != nil && r.Skew.OnThetaAxis() {
				t.of++
				if r.CommitsPerSec > wt.CommitsPerSec {
					t.beat++
				}
			}
		}
		bp, _ := best(ix, c, policies)
		p(" %s |\n", bp)
	}
	p("\n")

	var bullets []string
	add := func(format string, a ...any) { bullets = append(bullets, fmt.Sprintf(format, a...)) }
	for _, pol := range []Policy{policyWaitDie, policyWoundWait, policyDetect} {
		if t := beats[pol]; t.of > 0 {
			all := ""
			if t.beat == t.of {
				all = ": every one"
			}
			add("**%s moved more committed transactions than plain wait in %d of the %d request-order cells at θ ≥ 0.9%s.**", pol, t.beat, t.of, all)
		}
	}
	// The detector: how soon a cycle is broken, against the timeout.
	var slowest time.Duration
	var n, cells int64
	var worstWait time.Duration
	for _, c := range conditions(results) {
		if c.Order != OrderRequest {
			continue
		}
		if r := ix.get(policyDetect, c); r != nil && r.Deadlocks > 0 {
			cells++
			n += r.Deadlocks
			slowest = max(slowest, r.DeadlockMax)
		}
		if r := ix.get(PolicyWait, c); r != nil {
			worstWait = max(worstWait, time.Duration(r.P99)*time.Microsecond)
		}
	}
	if cells > 0 {
		add("**Deadlock detection broke %d request-order cycles in %d cells; the slowest was broken %s after it closed**, against the %s `LockWait` that ends a cycle under plain wait (whose p99 latency reached %s in these cells). The victim, the cycle's youngest transaction, retries at once under its timestamp.",
			n, cells, loadgen.FormatDuration(slowest), s.LockWait, loadgen.FormatDuration(worstWait))
	}
	for _, x := range bullets {
		p("- %s\n", x)
	}
	p("\n")
}

// paperFinding is one of the paper's qualitative findings on 2PL and
// OCC under contention, and how to judge it from the cells.
type paperFinding struct {
	claim string // what the paper says, and where
	judge func(ix index, results []Result) (agree bool, evidence string, ok bool)
	why   string // why the cells may differ, when they do
}

// highConditions lists the conditions of high contention in run order.
func highConditions(results []Result, o Order) []condition {
	var out []condition
	for _, c := range conditions(results) {
		if c.Order == o && highContention(c.Skew) {
			out = append(out, c)
		}
	}
	return out
}

// winners counts, over the high-contention conditions of both orders (of
// transport t; "": every transport), which of ps committed most.
func winners(ix index, results []Result, ps []Policy, t Transport) (map[Policy]int, int) {
	won := map[Policy]int{}
	total := 0
	for _, o := range Orders {
		for _, c := range highConditions(results, o) {
			if t != "" && c.Transport != t {
				continue
			}
			if bp, r := best(ix, c, ps); r != nil {
				won[bp]++
				total++
			}
		}
	}
	return won, total
}

func wonText(won map[Policy]int, ps []Policy) string {
	var parts []string
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%s %d", p, won[p]))
	}
	return strings.Join(parts, ", ")
}

var paperFindings = []paperFinding{
	{
		claim: "NO_WAIT \"has no centralized point of contention\", is \"highly scalable\", with a \"very high abort rate\" (Table 2).",
		judge: func(ix index, results []Result) (bool, string, bool) {
			highest, of := 0, 0
			for _, o := range Orders {
				for _, c := range highConditions(results, o) {
					ff := ix.get(PolicyFailFast, c)
					if ff == nil {
						continue
					}
					of++
					top := true
					for _, p := range []Policy{PolicyWait, policyWaitDie, policyWoundWait, policyDetect} {
						if r := ix.get(p, c); r != nil && r.AbortRate > ff.AbortRate {
							top = false
						}
					}
					if top {
						highest++
					}
				}
			}
			if of == 0 {
				return false, "", false
			}
			return highest*2 > of, fmt.Sprintf("fail-fast (our NO_WAIT) had the highest abort rate of the locking schemes in %d of %d high-contention cells.", highest, of), true
		},
		why: "wait-die aborts every younger requester behind an older holder, which under our closed loop of retrying Tellers can exceed NO_WAIT's rate.",
	},
	{
		claim: "Under high contention NO_WAIT and WAIT_DIE outperform DL_DETECT, which \"scales under low-contention\" but \"suffers from lock thrashing\" (Table 2, and §5's high-contention YCSB runs).",
		judge: func(ix index, results []Result) (bool, string, bool) {
			ps := []Policy{PolicyFailFast, policyWaitDie, policyDetect}
			won, total := winners(ix, results, ps, "")
			if total == 0 {
				return false, "", false
			}
			return won[policyDetect]*2 < total, fmt.Sprintf("of fail-fast, wait-die and detect, the most commits in the %d high-contention conditions: %s.", total, wonText(won, ps)), true
		},
		why: "lock thrashing needs many threads waiting on a chain of locks: the paper ran up to 1,024 simulated cores, we run 64 workers on 2 cores, where a waiter costs nothing while it waits (an actor message, not a spinning core), and our detector breaks a cycle in microseconds because each transaction waits at one account at a time. A no-wait abort, by contrast, is a retry of every lock request: over HTTP a round trip per account.",
	},
	{
		claim: "WAIT_DIE \"suffers from lock thrashing and timestamp bottleneck\" (Table 2): its timestamps come from one shared counter.",
		judge: func(ix index, results []Result) (bool, string, bool) {
			var parts []string
			for _, o := range Orders {
				for _, c := range highConditions(results, o) {
					wd, wt := ix.get(policyWaitDie, c), ix.get(PolicyWait, c)
					if wd != nil && wt != nil && c.Skew.OnThetaAxis() && c.Skew.Theta >= 0.99 {
						parts = append(parts, fmt.Sprintf("%s/%d legs/%s order: %s attempts per commit, %s wait's commits", c.Transport, c.Legs, o, fmtFloat(wd.AttemptsPerCommit), fmtRatio(ratio(wd.CommitsPerSec, wt.CommitsPerSec))))
					}
				}
			}
			if len(parts) == 0 {
				return false, "", false
			}
			return false, "no timestamp bottleneck can show here: each Teller takes its timestamps from its own clock (`time.Now`, made strictly increasing), with no shared counter. At θ 0.99, wait-die made " + strings.Join(parts, "; ") + ".", true
		},
		why: "the timestamp bottleneck is an artefact of a shared counter on many cores; ours are per business server. What wait-die pays here is its deaths: every younger requester behind an older holder retries.",
	},
	{
		claim: "OCC has a \"high abort cost\" and copies data locally (Table 2): under contention it restarts transactions after their work is done.",
		judge: func(ix index, results []Result) (bool, string, bool) {
			worse, of := 0, 0
			var attempts []float64
			for _, o := range Orders {
				for _, c := range highConditions(results, o) {
					occ := ix.get(policyOCC, c)
					_, b := best(ix, c, []Policy{PolicyFailFast, PolicyWait, policyWaitDie, policyWoundWait, policyDetect})
					if occ == nil || b == nil {
						continue
					}
					of++
					if occ.CommitsPerSec < b.CommitsPerSec {
						worse++
					}
					attempts = append(attempts, occ.AttemptsPerCommit)
				}
			}
			if of == 0 {
				return false, "", false
			}
			return worse*2 > of, fmt.Sprintf("occ committed less than the best locking scheme in %d of %d high-contention conditions (hot account included), with %s–%s attempts per commit.",
				worse, of, fmtFloat(slices.Min(attempts)), fmtFloat(slices.Max(attempts))), true
		},
		why: "our OCC reads without locks and validates with no-wait locks on the versions read; a read is one message per account, so under a hot account its reads are cheap and its aborts are one validation each.",
	},
}

// writePaper writes the comparison with the paper.
func writePaper(b *strings.Builder, ix index, results []Result) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	var rows []string
	for _, f := range paperFindings {
		agree, evidence, ok := f.judge(ix, results)
		if !ok {
			continue
		}
		verdict, why := "**agree**", ""
		if !agree {
			verdict, why = "**differ**", " Why: "+f.why
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s%s |", f.claim, verdict, evidence, why))
	}
	if len(rows) == 0 {
		return
	}
	p("## Against the paper\n\n")
	p("Yu, Bezerra, Pavlo, Devadas and Stonebraker, \"Staring into the Abyss: An Evaluation of Concurrency Control with One Thousand Cores\", PVLDB 8(3), 2014, ran DBx1000's schemes in shared memory on up to 1,024 simulated cores, YCSB transactions of 16 rows over Zipf θ. The quotes below are from its Table 2 (summary of bottlenecks) and §5; this machine could not reach the paper's figures, so **no number of theirs is quoted**, only their qualitative findings, and each is judged by this run's cells (\"high contention\": θ ≥ 0.9 or the hot account; %s).\n\n", joinNames(distinct(results, func(r *Result) Transport { return r.Transport })))
	p("| the paper | our cells | evidence |\n|---|---|---|\n")
	for _, r := range rows {
		p("%s\n", r)
	}
	p("\nWhat differs in kind: a lock here is a message to an account's actor (microseconds), not a compare-and-swap on a cache line (nanoseconds); over HTTP every lock request, retry and commit is a loopback round trip, so an abort costs the retry's round trips; in-process an abort costs a few actor messages; and 64 workers share 2 cores, so a waiter costs no core. ")
	policies := distinct(results, func(r *Result) Policy { return r.Policy })
	slices.SortStableFunc(policies, func(a, b Policy) int { return cmp.Compare(a.rank(), b.rank()) })
	for _, t := range Transports {
		won, total := winners(ix, results, policies, t)
		if total == 0 {
			continue
		}
		var parts []string
		for _, pol := range policies {
			if won[pol] > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", pol, won[pol]))
			}
		}
		p("Of every policy, the most commits in the %d high-contention conditions %s: %s. ", total, map[Transport]string{TransportHTTP: "over HTTP", TransportInprocess: "in-process"}[t], strings.Join(parts, ", "))
	}
	p("\n\n")
}
