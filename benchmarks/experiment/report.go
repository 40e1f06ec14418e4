package experiment

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bank/gobank/benchmarks/loadgen"
)

// The line printed per finished cell.

const lineFormat = "%3s  %-20s  %4s  %-10s  %-9s  %-12s  %4s  %3s  %3s  %9s  %8s  %8s  %8s  %6s  %-22s  %8s  %8s  %6s  %5s  %s\n"

// lineHeader is the header of the per-cell lines.
func lineHeader() string {
	return fmt.Sprintf(lineFormat, "#", "transport", "legs", "policy", "order", "skew", "θ", "srv", "wrk", "commits/s",
		"p50", "p99", "p99.9", "abort%", "aborts by cause", "att/cmt", "lockwait", "409", "other", "verdict")
}

// line renders one finished cell.
func line(r Result) string {
	if !r.Ran {
		return fmt.Sprintf("%3d  %-20s  %4d  %-10s  %-9s  %-12s  %4s  %3d  %3d  FAILED: could not run: %v\n", r.Index, where(r.Transport, r.Store), r.Legs,
			r.Policy, r.Order, r.Skew.Name(), r.Skew.ThetaText(), r.Servers, r.Workers, oneLine(fmt.Sprint(r.Err)))
	}
	v := "proven"
	if r.Failed() {
		v = "FAILED !!! " + r.Verdict.Reason
		if r.Verdict.History != "" {
			v += " (history " + r.Verdict.History + ")"
		}
	}
	if r.Interrupted {
		v += " (interrupted)"
	}
	return fmt.Sprintf(lineFormat, strconv.Itoa(r.Index), where(r.Transport, r.Store), strconv.Itoa(r.Legs), r.Policy, r.Order, r.Skew.Name(), r.Skew.ThetaText(),
		strconv.Itoa(r.Servers), strconv.Itoa(r.Workers), fmtRate(r.CommitsPerSec),
		loadgen.FormatMicros(r.P50), loadgen.FormatMicros(r.P99), loadgen.FormatMicros(r.P999),
		fmtPct(r.AbortRate), causeText(r.Metrics), fmtFloat(r.AttemptsPerCommit), loadgen.FormatDuration(r.LockWait),
		strconv.FormatInt(r.Insufficient, 10), strconv.FormatInt(r.Other, 10), v)
}

// deadlockText is how soon the detector broke a cell's cycles:
// "22us / 1.30ms", "–" without a deadlock.
func deadlockText(m Metrics) string {
	if m.Deadlocks == 0 {
		return "–"
	}
	return loadgen.FormatDuration(m.DeadlockResolved) + " / " + loadgen.FormatDuration(m.DeadlockMax)
}

// causeText lists the non-zero abort counts by cause: "refused 1234".
func causeText(m Metrics) string {
	var parts []string
	for _, c := range Causes {
		if n := m.Aborts[c]; n > 0 {
			parts = append(parts, string(c)+" "+strconv.FormatInt(n, 10))
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, ", ")
}

func fmtRate(f float64) string {
	if f >= 100 {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'f', 1, 64)
}

func fmtPct(f float64) string {
	p := 100 * f
	switch {
	case p == 0:
		return "0"
	case p < 0.01:
		return "<0.01"
	case p < 10:
		return strconv.FormatFloat(p, 'f', 2, 64)
	}
	return strconv.FormatFloat(p, 'f', 1, 64)
}

// fmtFloat prints a ratio with three significant digits, "–" for NaN.
func fmtFloat(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "–"
	}
	return strconv.FormatFloat(f, 'g', 3, 64)
}

// Analysis.

// condition is a cell without its policy: what the policies are compared
// at.
type condition struct {
	Transport Transport
	Store     Store
	Order     Order
	Skew      Skew
	Servers   int
	Workers   int
	Legs      int
}

func (c Cell) condition() condition {
	return condition{c.Transport, c.Store, c.Order, c.Skew, c.Servers, c.Workers, c.Legs}
}

func (c condition) cell(p Policy) Cell {
	return Cell{Transport: c.Transport, Store: c.Store, Policy: p, Order: c.Order, Skew: c.Skew, Servers: c.Servers, Workers: c.Workers, Legs: c.Legs}
}

func (c condition) String() string {
	return fmt.Sprintf("%s/%d legs/%s/%s/%d servers/%d workers", where(c.Transport, c.Store), c.Legs, c.Order, c.Skew.Name(), c.Servers, c.Workers)
}

// index maps cells to their results (those whose load ran).
type index map[Cell]*Result

func newIndex(results []Result) index {
	ix := index{}
	for i := range results {
		if results[i].Ran {
			ix[results[i].Cell] = &results[i]
		}
	}
	return ix
}

func (ix index) get(p Policy, c condition) *Result { return ix[c.cell(p)] }

// conditions lists the conditions of results in run order.
func conditions(results []Result) []condition {
	var cs []condition
	for _, r := range results {
		if c := r.condition(); !slices.Contains(cs, c) {
			cs = append(cs, c)
		}
	}
	return cs
}

// distinct lists the values f takes over results, in first-seen order.
func distinct[T comparable](results []Result, f func(*Result) T) []T {
	var out []T
	for i := range results {
		if v := f(&results[i]); !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// ratio returns a/b, or NaN when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

func fmtRatio(f float64) string {
	switch {
	case math.IsNaN(f):
		return "n/a"
	case f != 0 && math.Abs(f) < 0.1:
		return strconv.FormatFloat(f, 'g', 2, 64) + "×"
	}
	return strconv.FormatFloat(f, 'f', 2, 64) + "×"
}

// geomean returns the geometric mean of the positive finite values, and
// how many there were.
func geomean(vs []float64) (float64, int) {
	var sum float64
	n := 0
	for _, v := range vs {
		if v > 0 && !math.IsInf(v, 0) && !math.IsNaN(v) {
			sum += math.Log(v)
			n++
		}
	}
	if n == 0 {
		return math.NaN(), 0
	}
	return math.Exp(sum / float64(n)), n
}

// Headline is the original claim measured: wait against fail-fast at
// three business servers, uniform accounts, ascending order.
type Headline struct {
	Condition      condition
	Wait, FailFast *Result
	Ratio          float64 // wait / fail-fast committed transactions per second
	Holds          bool    // no abort in wait mode, and Ratio >= 1
}

// headline finds the first condition of the run at 3 servers, uniform,
// ascending, with both wait and fail-fast.
func headline(ix index, results []Result) (Headline, bool) {
	for _, c := range conditions(results) {
		if c.Order != OrderAscending || c.Skew.Spec != "uniform" || c.Servers != 3 {
			continue
		}
		h := Headline{Condition: c, Wait: ix.get(PolicyWait, c), FailFast: ix.get(PolicyFailFast, c)}
		if h.Wait == nil || h.FailFast == nil {
			continue
		}
		h.Ratio = ratio(h.Wait.CommitsPerSec, h.FailFast.CommitsPerSec)
		h.Holds = h.Wait.AbortsTotal == 0 && h.Ratio >= 1
		return h, true
	}
	return Headline{}, false
}

// Markdown.

// WriteMarkdown writes the report.
func WriteMarkdown(w io.Writer, meta Meta, results []Result) error {
	b := &strings.Builder{}
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	ix := newIndex(results)
	s := meta.Settings
	policies := meta.Grid.Policies

	p("# Lock schemes: %s\n\n", joinNames(policies))

	var failed []Result
	for _, r := range results {
		if r.Failed() {
			failed = append(failed, r)
		}
	}
	if len(failed) > 0 {
		p("> [!CAUTION]\n> **%d CELL(S) FAILED — NOT PROVEN CORRECT. Their figures mean nothing until the bug is found: the bank (or the harness) lost or created money, answered what no order of the operations explains, or the cell could not run or be checked.**\n>\n", len(failed))
		for _, r := range failed {
			why := r.Verdict.Reason
			if r.Err != nil && !strings.Contains(why, r.Err.Error()) {
				why = joinReasons("error: "+r.Err.Error(), why)
			}
			if r.Verdict.History != "" {
				why += fmt.Sprintf(" — history kept: `%s` (`bank check %s`)", r.Verdict.History, r.Verdict.History)
			}
			p("> - #%d `%s`: %s\n", r.Index, r.Cell, oneLine(why))
		}
		p("\n")
	}
	if meta.Interrupted || len(results) < meta.Cells {
		p("> [!WARNING]\n> The run was interrupted: %d of %d cells ran.\n\n", len(results), meta.Cells)
	}

	p("- **Command:** `%s`\n", meta.Command)
	p("- **Date:** %s\n", meta.Date.Format("2006-01-02 15:04:05 MST"))
	p("- **Machine:** %d CPUs (`runtime.NumCPU`), GOMAXPROCS %d, %s, %s\n", meta.NumCPU, meta.GOMAXPROCS, meta.GoVersion, meta.OSArch)
	p("- **Wall time of the grid:** %s for %d cells\n", meta.Wall.Round(time.Second), len(results))
	if meta.LoadBefore != "" {
		p("- **Load average (1, 5, 15 min):** %s before the grid, %s after it (this process alone accounts for up to about %d; more means other work shared the machine)\n",
			meta.LoadBefore, meta.LoadAfter, meta.GOMAXPROCS)
	}
	verdict := fmt.Sprintf("**proven in every cell** (%d of %d)", len(results), len(results))
	if len(failed) > 0 {
		verdict = fmt.Sprintf("**FAILED in %d of %d cell(s)** (see above)", len(failed), len(results))
	}
	p("- **Correctness (bank checker, porcupine, conservation):** %s\n", verdict)
	p("- **Raw figures:** [`%s.csv`](%s.csv), [`%s.json`](%s.json)\n\n", meta.Name, meta.Name, meta.Name, meta.Name)

	// Headline.
	p("## Headline\n\n")
	p("> Three business servers, uniform accounts, ascending order: the wait mode aborts nothing and commits at least as many transactions per second as fail-fast.\n\n")
	if h, ok := headline(ix, results); ok {
		p("| policy (%s) | committed/s | aborts | abort rate | p99 | verdict |\n|---|--:|--:|--:|--:|---|\n", h.Condition)
		for _, r := range []*Result{h.FailFast, h.Wait} {
			p("| %s | %s | %d | %s%% | %s | %s |\n", r.Policy, fmtRate(r.CommitsPerSec), r.AbortsTotal, fmtPct(r.AbortRate),
				loadgen.FormatMicros(r.P99), r.Verdict.Text())
		}
		p("\n**wait / fail-fast committed transactions per second: %s.** ", fmtRatio(h.Ratio))
		switch {
		case h.Holds:
			p("The claim **holds** here: wait mode aborted nothing and committed %s what fail-fast did.\n\n", fmtRatio(h.Ratio))
		case h.Wait.AbortsTotal != 0 && h.Ratio >= 1:
			p("The claim **does not hold** in full: wait mode reached the throughput but still aborted %d attempts (waits that ran out).\n\n", h.Wait.AbortsTotal)
		case h.Wait.AbortsTotal == 0:
			p("The claim **does not hold** in full: wait mode aborted nothing, but committed %.0f%% less than fail-fast.\n\n", 100*(1-h.Ratio))
		default:
			p("The claim **does not hold**: wait mode aborted %d attempts and committed %.0f%% less than fail-fast.\n\n", h.Wait.AbortsTotal, 100*(1-h.Ratio))
		}
	} else {
		p("_Not measured: this grid has no ascending/uniform/3-server condition with both wait and fail-fast._\n\n")
	}

	writeSettings(b, meta)

	// Table.
	p("## All cells\n\n")
	p("*committed/s* counts write transactions per second of load: over HTTP, transfers, deposits and withdrawals answered 200; in-process, transactions of the cell's legs committed. *total/s* counts every answer. An *abort* is an attempt the concurrency control gave up: *refused* (fail-fast's immediate 403), *timeout* (a wait for a lock that ran out, 403), and for the schemes to come *died*, *wounded*, *deadlock*, *validation*. *Abort rate* is aborts / (commits + aborts); *attempts/commit* (wasted work) is (commits + aborts) / commits — the load generator does not retry, so an HTTP abort is one wasted request. *Lock wait* is the data server's mean wait from a lock request's arrival to its grant (granted locks only; a business server's local queue is not in it). 409 INSUFFICIENT_FUNDS is a correct business refusal, listed apart; *other* is every other non-ok outcome (broken down below the table). *Verdict*: proven = the cell's history passed the bank checker and porcupine, and conservation held.\n\n")
	p("| # | transport | legs | policy | order | skew | θ | servers | workers | committed/s | ok transfers/s | total/s | p50 | p99 | p99.9 | abort rate | aborts by cause | attempts/commit | lock wait | deadlock broken after (p50 / max) | 409 funds | other | verdict |\n")
	p("|--:|---|--:|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|---|\n")
	for _, r := range results {
		head := fmt.Sprintf("| %d | %s | %d | %s | %s | %s | %s | %d | %d |", r.Index, where(r.Transport, r.Store), r.Legs, r.Policy, r.Order, r.Skew.Name(), r.Skew.ThetaText(), r.Servers, r.Workers)
		if !r.Ran {
			p("%s ERROR: %s | | | | | | | | | | | | | **FAILED** |\n", head, oneLine(fmt.Sprint(r.Err)))
			continue
		}
		v := "proven"
		if r.Failed() {
			v = "**FAILED**"
		}
		if r.Interrupted {
			v += " (interrupted)"
		}
		p("%s %s | %s | %s | %s | %s | %s | %s%% | %s | %s | %s | %s | %d | %d | %s |\n", head,
			fmtRate(r.CommitsPerSec), fmtRate(r.OKTransfersPerSec), fmtRate(r.TotalPerSec),
			loadgen.FormatMicros(r.P50), loadgen.FormatMicros(r.P99), loadgen.FormatMicros(r.P999),
			fmtPct(r.AbortRate), causeText(r.Metrics), fmtFloat(r.AttemptsPerCommit), loadgen.FormatDuration(r.LockWait),
			deadlockText(r.Metrics), r.Insufficient, r.Other, v)
	}
	p("\n")
	var detail []string
	for _, r := range results {
		if len(r.OtherDetail) == 0 {
			continue
		}
		keys := slices.Sorted(maps.Keys(r.OtherDetail))
		parts := make([]string, len(keys))
		for j, k := range keys {
			parts[j] = fmt.Sprintf("%s × %d", k, r.OtherDetail[k])
		}
		detail = append(detail, fmt.Sprintf("- #%d `%s`: %s", r.Index, r.Cell, strings.Join(parts, ", ")))
	}
	if len(detail) > 0 {
		p("Other errors by cell:\n\n%s\n\n", strings.Join(detail, "\n"))
	} else {
		p("No cell had any other error (no 5xx, no client timeout, no broken connection).\n\n")
	}

	// What this shows.
	p("## What this shows\n\n")
	writeFindings(b, ix, results, s)
	writeSchemes(b, ix, results, s)
	writePaper(b, ix, results)

	// Plots.
	if len(meta.Plots) > 0 {
		p("## Plots\n\n")
		p("x: the skew, Zipf θ from uniform (θ 0) up, then the hot account; one line per policy. Rows: lock order; columns: business servers × workers. Each panel has its own y scale.\n\n")
		for _, pl := range meta.Plots {
			p("### %s\n\n![%s](%s)\n\n", pl.Title, pl.Title, pl.File)
		}
	}

	// Comparison table.
	if slices.Contains(policies, PolicyFailFast) && slices.Contains(policies, PolicyWait) {
		p("## Wait against fail-fast, condition by condition\n\n")
		p("| transport | legs | order | skew | servers | workers | fail-fast committed/s | fail-fast abort rate | wait committed/s | wait abort rate | wait / fail-fast | wait+lease committed/s | wait+lease / wait |\n")
		p("|---|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		rate := func(r *Result) string {
			if r == nil {
				return "–"
			}
			return fmtRate(r.CommitsPerSec)
		}
		abort := func(r *Result) string {
			if r == nil {
				return "–"
			}
			return fmtPct(r.AbortRate) + "%"
		}
		rt := func(a, b *Result) string {
			if a == nil || b == nil {
				return "–"
			}
			return fmtRatio(ratio(a.CommitsPerSec, b.CommitsPerSec))
		}
		for _, c := range conditions(results) {
			ff, wt, wl := ix.get(PolicyFailFast, c), ix.get(PolicyWait, c), ix.get(PolicyWaitLease, c)
			p("| %s | %d | %s | %s | %d | %d | %s | %s | %s | %s | %s | %s | %s |\n", where(c.Transport, c.Store), c.Legs, c.Order, c.Skew.Name(), c.Servers, c.Workers,
				rate(ff), abort(ff), rate(wt), abort(wt), rt(wt, ff), rate(wl), rt(wl, wt))
		}
		p("\n")
	}

	writeMethod(b, meta)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeSettings writes the settings table.
func writeSettings(b *strings.Builder, meta Meta) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	s, g := meta.Settings, meta.Grid
	skews := make([]string, len(g.Skews))
	for i, sk := range g.Skews {
		skews[i] = "`" + sk.Spec + "`"
	}
	ints := func(vs []int) string {
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = strconv.Itoa(v)
		}
		return strings.Join(out, ", ")
	}
	p("## Settings\n\n| setting | value |\n|---|---|\n")
	p("| grid | transport {%s} × legs {%s} × policy {%s} × lock order {%s} × skew {%s} × business servers {%s} × workers {%s}, HTTP at 2 legs only: %d cells |\n",
		joinNames(g.transports()), ints(g.legs()), joinNames(g.Policies), joinNames(g.Orders), strings.Join(skews, ", "), ints(g.Servers), ints(g.Workers), meta.Cells)
	p("| http cells | closed loop, %s (after the servers are up), requests spread round-robin over the business servers by the load generator; mix `%s`, amounts %d..%d uniformly |\n", s.Duration, s.Mix, s.AmountMin, s.AmountMax)
	p("| inprocess cells | closed loop, %s, workers spread over the cell's \"servers\" as Tellers over the account actors (`benchmarks/txnload`, no socket); every transaction has the cell's legs: legs 0, 2, … debited v and 1, 3, … credited v, v in %d..%d uniformly (2 legs: a transfer); latency is the committed transactions' |\n", s.InprocessDuration, s.AmountMin, s.AmountMax)
	p("| accounts | %d, each starting at %d; a fresh bank (actors, and over HTTP the data server and business servers) per cell, all in this process on 127.0.0.1 |\n", s.Accounts, s.InitialBalance)
	p("| skews | `uniform` is θ 0; `zipf:θ` picks account k of all %d with P ∝ 1/k^θ, folded into the worker's group; `hot:K:P` sends a share P of picks to accounts 1..K of each group (`hot:1:0.5`: ~3 transfers in 4 touch it) |\n", s.Accounts)
	for _, pol := range g.Policies {
		if d, ok := pol.def(); ok {
			p("| %s | %s |\n", pol, d.about)
		}
	}
	p("| lock wait, lease | `LockWait` %s; wait+lease's lease %s |\n", s.LockWait, s.Lease)
	p("| lock order | ascending = lowest account first (no deadlock); request = conta_orig then conta_dest, as the original (opposite transfers can deadlock until `LockWait` runs out) |\n")
	p("| fences | every grant carries one; business servers repeat it on setSaldo and unLock in every policy |\n")
	p("| actors | `actors.Config{Synchronous: true, DeadlockDetection: true}`; no operation logs |\n")
	p("| stores | memory: balances in memory; pebble: a fresh pebble store per cell in a temporary directory, every commit synced (one WAL fsync, shared by the commits that arrive together) before its locks go; pebble-elr: the same with `EarlyLockRelease`, the locks go once the commit is ordered in the WAL and its answer still waits for the sync |\n")
	p("| recording | every operation as invoked and returned; over HTTP a `/snapshot` of every balance every %s and before and after the load (loadgen's history, as `bank bench --history`), in-process the balances before and after; the accounts split into ⌈workers / %d⌉ groups (`bank bench --groups`), at most one per legs accounts |\n", s.SnapshotEvery, s.WorkersPerGroup)
	p("| checks | `check.Bank` and `check.Linearizable` (porcupine, one partition per group, search bounded by %s) on the history, and the load's conservation check (the balances before and after) |\n", s.LinearTimeout)
	p("| client | loadgen, request timeout %s, seed %d (same operation sequence in every cell) |\n\n", s.Timeout, s.Seed)
}

// writeMethod writes the method notes.
func writeMethod(b *strings.Builder, meta Meta) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	s := meta.Settings
	p("## Method notes\n\n")
	p("- Every cell starts a fresh bank (%d accounts of %d), so no cell inherits another's balances, locks or connections; the servers are shut down and the actors stopped before the next cell starts.\n", s.Accounts, s.InitialBalance)
	p("- **Correctness.** A cell is *proven* when its recorded history passes both checkers of `bank check` — the bank checker (every snapshot sums, exactly, to the initial total plus the acknowledged deposits less the acknowledged withdrawals, within the amounts of operations concurrent with it or of unknown outcome; no balance negative) and porcupine (one order of all operations, consistent with real time, explains every answer) — and the load generator's conservation check (the balances read before and after) passes. Anything else — a violation, a search that ran out, a history that could not be read, a cell that could not run — is a failed cell. A failed cell's history is kept next to the report for `bank check`.\n")
	p("- **Account groups.** Porcupine cannot decide one partition with dozens of concurrent clients (measured here: 64 workers over 100 accounts, ~14k operations, no verdict in 15 s; 4 workers, 50 ms), so each cell's accounts are split into ⌈workers / %d⌉ contiguous groups and each worker stays in one (loadgen's `Groups`, as `bank bench --groups` and `bank soak` do): no transfer crosses groups, and porcupine checks each group apart. The price is contention: the skew is drawn over all accounts and folded into the worker's group, so each group has its own hottest account, contended by that group's workers only. Uniform contention barely changes (each transfer meets about as many others on its accounts); skewed contention is lower than with one group (measured here, fail-fast, ascending, Zipf 0.99, 3 servers, 64 workers: abort rate 74%% in one group, 56%% in 8, and a third more commits; see `benchmarks/README.md`). `--workers-per-group 0` keeps one group, at the cost of cells porcupine cannot prove.\n", s.WorkersPerGroup)
	p("- **Cost of recording.** The history is kept in memory and read back after the load; the snapshots take every account's lock in ascending order (as a transfer touching all of them would). Measured on this machine (`benchmarks/README.md`, *Lock-scheme experiment*): a few per cent of committed/s, less than the groups change.\n")
	p("- The load generator, the data server and every business server share this machine's %d CPUs, so adding business servers adds no CPU: what changes with their number is how contention splits between the business servers' local locks (one server: requests of one server queue locally, the data server's lock is re-entrant per `id_negoc`) and the data server's locks (many servers).\n", meta.NumCPU)
	p("- Each cell is measured once, for %s. The policies of one condition run back to back; compare them with each other rather than across distant rows, since this machine's speed drifts over minutes. Differences of a few tens of percent between two cells are within what one run can show; the factor-of-two and factor-of-a-hundred differences are not noise. `--duration` runs longer cells.\n", s.Duration)
	p("- Latency is measured by the client, in a closed loop — over HTTP per request, all operations together; in-process per committed transaction — so it understates queueing under overload (coordinated omission).\n")
	p("- In-process cells run the same schemes, orders and skews as the HTTP cells, over the same actors, without the business servers, the data server and the sockets between them: the difference between an HTTP and an in-process cell of 2 legs is what HTTP costs the scheme. Their histories have no snapshot during the load, only the balances before and after, which both checkers use.\n")
}

// writeFindings writes the "what this shows" paragraphs, computed from the
// results.
func writeFindings(b *strings.Builder, ix index, results []Result, s Settings) {
	var bullets []string
	add := func(format string, a ...any) { bullets = append(bullets, fmt.Sprintf(format, a...)) }

	if h, ok := headline(ix, results); ok {
		add("At %s, wait committed %s transactions/s against fail-fast's %s (%s), with an abort rate of %s%% against %s%%.",
			h.Condition, fmtRate(h.Wait.CommitsPerSec), fmtRate(h.FailFast.CommitsPerSec), fmtRatio(h.Ratio),
			fmtPct(h.Wait.AbortRate), fmtPct(h.FailFast.AbortRate))
	}
	orders := distinct(results, func(r *Result) Order { return r.Order })
	skews := distinct(results, func(r *Result) Skew { return r.Skew })
	policies := distinct(results, func(r *Result) Policy { return r.Policy })
	slices.SortStableFunc(policies, func(a, b Policy) int { return cmp.Compare(a.rank(), b.rank()) })

	// Wait against fail-fast, per lock order.
	for _, o := range orders {
		var ratios, ffAb, wtAb []float64
		var worse []string
		for _, c := range conditions(results) {
			ff, wt := ix.get(PolicyFailFast, c), ix.get(PolicyWait, c)
			if c.Order != o || ff == nil || wt == nil {
				continue
			}
			r := ratio(wt.CommitsPerSec, ff.CommitsPerSec)
			ratios = append(ratios, r)
			ffAb = append(ffAb, ff.AbortRate)
			wtAb = append(wtAb, wt.AbortRate)
			if !(r >= 1) {
				worse = append(worse, fmt.Sprintf("%s/%d legs/%s/%d/%d (%s)", where(c.Transport, c.Store), c.Legs, c.Skew.Name(), c.Servers, c.Workers, fmtRatio(r)))
			}
		}
		if len(ratios) == 0 {
			continue
		}
		g, _ := geomean(ratios)
		l := fmt.Sprintf("%s order, all %d conditions: wait commits %s what fail-fast does (geometric mean; range %s–%s). Fail-fast aborted %s of its attempts, wait %s.",
			capitalize(string(o)), len(ratios), fmtRatio(g), fmtRatio(slices.Min(ratios)), fmtRatio(slices.Max(ratios)),
			pctRange(ffAb), pctRange(wtAb))
		switch {
		case len(worse) == 0:
			l += " Wait committed at least as much as fail-fast in every one of them."
		case len(worse) == len(ratios):
			l += " Wait committed less than fail-fast in every one of them."
		default:
			l += " Wait committed less than fail-fast in: " + strings.Join(worse, ", ") + "."
		}
		add("%s", l)
	}

	// Throughput along θ, per policy (ascending order).
	var axis []Skew
	for _, sk := range skews {
		if sk.OnThetaAxis() {
			axis = append(axis, sk)
		}
	}
	slices.SortFunc(axis, func(a, b Skew) int { return cmp.Compare(a.Theta, b.Theta) })
	if len(axis) >= 2 {
		lo, hi := axis[0], axis[len(axis)-1]
		var parts []string
		for _, pol := range policies {
			var rs []float64
			for _, c := range conditions(results) {
				if c.Order != OrderAscending || c.Skew != lo {
					continue
				}
				c2 := c
				c2.Skew = hi
				a, z := ix.get(pol, c), ix.get(pol, c2)
				if a != nil && z != nil {
					rs = append(rs, ratio(z.CommitsPerSec, a.CommitsPerSec))
				}
			}
			if g, n := geomean(rs); n > 0 {
				parts = append(parts, fmt.Sprintf("%s %s", pol, fmtRatio(g)))
			}
		}
		if len(parts) > 0 {
			add("From %s to %s (ascending order), committed transactions/s change by (geometric mean over the server × worker conditions): %s.",
				lo.Label(), hi.Label(), strings.Join(parts, "; "))
		}
	}

	// Abort rate by skew, ascending order.
	for _, sk := range skews {
		var parts []string
		for _, c := range conditions(results) {
			if c.Order != OrderAscending || c.Skew != sk {
				continue
			}
			var ps []string
			for _, pol := range policies {
				if r := ix.get(pol, c); r != nil {
					ps = append(ps, fmt.Sprintf("%s %s%%", pol, fmtPct(r.AbortRate)))
				}
			}
			parts = append(parts, fmt.Sprintf("%s/%d legs/%d/%d: %s", where(c.Transport, c.Store), c.Legs, c.Servers, c.Workers, strings.Join(ps, ", ")))
		}
		if len(parts) > 0 && len(policies) > 1 {
			add("Abort rate, %s, ascending order, by transport/legs/servers/workers — %s.", sk.Name(), strings.Join(parts, "; "))
		}
	}

	// Wait timeouts by order, and what request order costs waiting.
	timeouts := map[Order]int64{}
	seen := map[Order]bool{}
	var orderRatios []float64
	for _, r := range results {
		if !r.Ran || r.Policy == PolicyFailFast {
			continue
		}
		timeouts[r.Order] += r.Aborts[CauseTimeout]
		seen[r.Order] = true
		if r.Policy == PolicyWait && r.Order == OrderRequest {
			c := r.condition()
			c.Order = OrderAscending
			if a := ix.get(PolicyWait, c); a != nil {
				orderRatios = append(orderRatios, ratio(r.CommitsPerSec, a.CommitsPerSec))
			}
		}
	}
	if len(seen) > 0 {
		var parts []string
		for _, o := range Orders {
			if seen[o] {
				parts = append(parts, fmt.Sprintf("%s order %d", o, timeouts[o]))
			}
		}
		l := fmt.Sprintf("Waits that ran out (403 after %s) in the waiting policies, summed over their cells: %s.", s.LockWait, strings.Join(parts, ", "))
		if g, n := geomean(orderRatios); n > 0 {
			l += fmt.Sprintf(" With request order, wait commits %s what it does in ascending order (geometric mean over %d conditions):", fmtRatio(g), n)
			if timeouts[OrderRequest] > timeouts[OrderAscending] {
				l += " transfers that lock in request order form cycles (A→B holds A and waits for B while B→A holds B and waits for A), which only a wait timeout breaks, and every request queued behind those accounts waits too. Ascending order is what makes waiting safe; fail-fast never waits, so it never deadlocks, whatever the order."
			} else {
				l += " no extra timeouts showed up at this load."
			}
		}
		add("%s", l)
	}

	// Lease cost, per lock order.
	for _, o := range orders {
		var lease []float64
		for _, c := range conditions(results) {
			wt, wl := ix.get(PolicyWait, c), ix.get(PolicyWaitLease, c)
			if c.Order == o && wt != nil && wl != nil {
				lease = append(lease, ratio(wl.CommitsPerSec, wt.CommitsPerSec))
			}
		}
		if g, n := geomean(lease); n > 0 {
			add("Leases, %s order (a %s lease timer armed and cancelled per grant): wait+lease committed %s what wait did (geometric mean over %d conditions; range %s–%s, a range that includes run-to-run noise).",
				o, s.Lease, fmtRatio(g), n, fmtRatio(slices.Min(lease)), fmtRatio(slices.Max(lease)))
		}
	}

	// Server count (wait, ascending, uniform).
	var srv []string
	for _, r := range results {
		if r.Ran && r.Policy == PolicyWait && r.Order == OrderAscending && r.Skew.Spec == "uniform" {
			srv = append(srv, fmt.Sprintf("%s/%d legs/%d servers/%d workers: %s", where(r.Transport, r.Store), r.Legs, r.Servers, r.Workers, fmtRate(r.CommitsPerSec)))
		}
	}
	if len(srv) > 1 {
		add("Wait, ascending, uniform, committed/s — %s. Every server shares the same CPUs, so more servers add no capacity: they move contention from the business servers' local locks to the data server's.", strings.Join(srv, ", "))
	}

	// Biggest other-error cells.
	var others []*Result
	for i := range results {
		if results[i].Other > 0 {
			others = append(others, &results[i])
		}
	}
	if len(others) > 0 {
		slices.SortFunc(others, func(a, b *Result) int { return cmp.Compare(b.Other, a.Other) })
		var parts []string
		for _, r := range others[:min(3, len(others))] {
			parts = append(parts, fmt.Sprintf("`%s` %d", r.Cell, r.Other))
		}
		add("%d cell(s) had errors other than aborts and 409; the most: %s (see the breakdown above).", len(others), strings.Join(parts, ", "))
	}

	for _, x := range bullets {
		fmt.Fprintf(b, "- %s\n", x)
	}
	b.WriteString("\n")
}

// pctRange prints the range of fractions vs as percentages.
func pctRange(vs []float64) string {
	lo, hi := slices.Min(vs), slices.Max(vs)
	if fmtPct(lo) == fmtPct(hi) {
		return fmtPct(lo) + "%"
	}
	return fmtPct(lo) + "%–" + fmtPct(hi) + "%"
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", "\\|")
}
