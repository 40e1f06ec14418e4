package main

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bank/gobank/benchmarks/loadgen"
)

// Meta describes the run as a whole.
type Meta struct {
	Name       string
	Command    string
	Date       time.Time
	NumCPU     int
	GOMAXPROCS int
	GoVersion  string
	OSArch     string
	Wall       time.Duration
	Cells      int // cells planned
	// LoadBefore and LoadAfter are the load averages (1, 5, 15 min) before
	// and after the grid, "" when unknown.
	LoadBefore, LoadAfter string
	Interrupted           bool
	Plots                 []Plot // written next to the markdown
}

// stdout table: one line per finished cell.

const lineFormat = "%3s  %-10s  %-9s  %-11s  %3s  %9s  %9s  %8s  %8s  %8s  %7s  %7s  %6s  %6s  %s\n"

// writeLineHeader prints the header of the per-cell lines.
func writeLineHeader(w io.Writer) {
	fmt.Fprintf(w, lineFormat, "#", "policy", "order", "skew", "srv", "ok xfer/s", "total/s",
		"p50", "p99", "p99.9", "403 %", "wait-to", "409", "other", "conservation")
}

// writeLine prints one finished cell.
func writeLine(w io.Writer, i int, r Result) {
	if r.Err != nil && r.Report == nil {
		fmt.Fprintf(w, "%3d  %-10s  %-9s  %-11s  %3d  ERROR: %v\n", i+1, r.Policy, r.Order, r.Skew.Name, r.Servers, r.Err)
		return
	}
	cons := "PASS"
	if !r.ConservationOK {
		cons = "FAIL !!! " + r.Conservation
	}
	if r.Err != nil {
		cons += "  ERROR: " + r.Err.Error()
	}
	fmt.Fprintf(w, lineFormat, strconv.Itoa(i+1), r.Policy, r.Order, r.Skew.Name, strconv.Itoa(r.Servers),
		fmtRate(r.OKTransfersPerSec), fmtRate(r.TotalPerSec), loadgen.FormatMicros(r.P50), loadgen.FormatMicros(r.P99), loadgen.FormatMicros(r.P999),
		fmtPct(r.RefusalRate), waitTimeouts(r), strconv.FormatInt(r.Insufficient, 10), strconv.FormatInt(r.Other, 10), cons)
}

func waitTimeouts(r Result) string {
	if !r.Policy.waits() {
		return "–"
	}
	return strconv.FormatInt(r.WaitTimeouts, 10)
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

// Analysis.

// condition is a cell without its policy: what the policies are compared
// at.
type condition struct {
	Order   Order
	Skew    Skew
	Servers int
}

func (c Cell) condition() condition { return condition{c.Order, c.Skew, c.Servers} }

// index maps cells to their results (those that produced a report).
type index map[Cell]*Result

func newIndex(results []Result) index {
	ix := index{}
	for i := range results {
		if results[i].Report != nil {
			ix[results[i].Cell] = &results[i]
		}
	}
	return ix
}

func (ix index) get(p Policy, c condition) *Result {
	return ix[Cell{Policy: p, Order: c.Order, Skew: c.Skew, Servers: c.Servers}]
}

// conditions lists the conditions of results in grid order.
func conditions(results []Result) []condition {
	var cs []condition
	for _, r := range results {
		if c := r.condition(); !slices.Contains(cs, c) {
			cs = append(cs, c)
		}
	}
	return cs
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

// headlineCondition is the measurement: three business servers,
// uniform accounts, ascending lock order.
var headlineCondition = condition{Order: OrderAscending, Skew: SkewUniform, Servers: 3}

// Headline is the claim measured: wait against fail-fast.
type Headline struct {
	Wait, FailFast *Result
	Ratio          float64 // wait / fail-fast successful transfers per second
	Holds          bool    // no 403 in wait mode, and Ratio >= 1
}

func headline(ix index, c condition) (Headline, bool) {
	h := Headline{Wait: ix.get(PolicyWait, c), FailFast: ix.get(PolicyFailFast, c)}
	if h.Wait == nil || h.FailFast == nil {
		return h, false
	}
	h.Ratio = ratio(h.Wait.OKTransfersPerSec, h.FailFast.OKTransfersPerSec)
	h.Holds = h.Wait.Refusals == 0 && h.Ratio >= 1
	return h, true
}

// Markdown.

// WriteMarkdown writes the report.
func WriteMarkdown(w io.Writer, meta Meta, s Settings, results []Result) error {
	b := &strings.Builder{}
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	ix := newIndex(results)

	p("# Lock semantics: fail-fast, wait and wait+lease\n\n")

	var failed []Result
	for _, r := range results {
		if r.Failed() {
			failed = append(failed, r)
		}
	}
	if len(failed) > 0 {
		p("> [!CAUTION]\n> **%d CELL(S) FAILED — CONSERVATION CHECK OR RUN ERROR. THIS IS A BUG IN THE BANK (or the harness): money was created or destroyed, a balance went negative, or the cell could not run.**\n>\n", len(failed))
		for _, r := range failed {
			why := "conservation FAIL: " + r.Conservation
			if r.Err != nil {
				why = "error: " + r.Err.Error()
				if r.Report != nil && !r.ConservationOK {
					why += "; conservation FAIL: " + r.Conservation
				}
			}
			p("> - `%s`: %s\n", r.Cell, oneLine(why))
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
	cons := "PASS in every cell"
	if len(failed) > 0 {
		cons = fmt.Sprintf("**FAIL in %d cell(s)** (see above)", len(failed))
	}
	p("- **Conservation check:** %s\n\n", cons)

	// Headline.
	p("## Headline\n\n")
	p("> Three business servers, %d clients, uniform accounts: the wait mode gives no refusals from contention and at least the fail-fast mode's successful-transfer throughput.\n\n", s.Workers)
	if h, ok := headline(ix, headlineCondition); ok {
		p("| policy (ascending order, 3 servers, uniform) | ok transfers/s | 403 LOCKED_ACCOUNT | refusal rate | p99 |\n|---|--:|--:|--:|--:|\n")
		for _, r := range []*Result{h.FailFast, h.Wait} {
			p("| %s | %s | %d | %s%% | %s |\n", r.Policy, fmtRate(r.OKTransfersPerSec), r.Refusals, fmtPct(r.RefusalRate), loadgen.FormatMicros(r.P99))
		}
		p("\n**wait / fail-fast successful-transfer throughput: %s.** ", fmtRatio(h.Ratio))
		switch {
		case h.Holds:
			p("The claim **holds** here: wait mode refused nothing and moved %s the transfers fail-fast did.\n\n", fmtRatio(h.Ratio))
		case h.Wait.Refusals != 0 && h.Ratio >= 1:
			p("The claim **does not hold** in full: wait mode reached the throughput but still answered %d × 403 (waits that ran out).\n\n", h.Wait.Refusals)
		case h.Wait.Refusals == 0:
			p("The claim **does not hold** in full: wait mode refused nothing, but its successful-transfer throughput is %.0f%% below fail-fast's.\n\n", 100*(1-h.Ratio))
		default:
			p("The claim **does not hold**: wait mode answered %d × 403 and its successful-transfer throughput is %.0f%% below fail-fast's.\n\n", h.Wait.Refusals, 100*(1-h.Ratio))
		}
	} else {
		p("_Not measured: this grid has no ascending/uniform/3-server cell for both wait and fail-fast._\n\n")
	}

	// Settings.
	p("## Settings\n\n")
	p("| setting | value |\n|---|---|\n")
	p("| grid | policy {fail-fast, wait, wait+lease} × lock order {ascending, request} × skew {uniform, zipf 0.99, hot} × business servers {1, 3, 8}: %d cells |\n", meta.Cells)
	p("| load per cell | closed loop, %d workers, %s (after the servers are up), requests spread round-robin over the business servers |\n", s.Workers, s.Duration)
	p("| mix | `%s`, amounts %d..%d uniformly |\n", s.Mix, s.AmountMin, s.AmountMax)
	p("| accounts | %d, each starting at %d; a fresh bank (actors, data server, business servers) per cell, all in this process on 127.0.0.1 |\n", s.Accounts, s.InitialBalance)
	p("| skews | uniform; `zipf:0.99` (P(k) ∝ 1/k^0.99: account 1 takes ~19%% of picks); `hot:1:0.5` (account 1 takes half of all picks, so ~3 transfers in 4 touch it) |\n")
	p("| fail-fast | business `ModeFailFast` (one getLock, 403 at once); data server leases off (`LockTTL < 0`) |\n")
	p("| wait | business `ModeWait` (getLock queued FIFO on the data server), `LockWait` %s; data server leases off; business `LockTTL` 0 |\n", s.LockWait)
	p("| wait+lease | business `ModeWait`, `LockWait` %s, `LockTTL` %s (a lease timer per grant); data server default lease |\n", s.LockWait, s.Lease)
	p("| lock order | ascending = lowest account first (no deadlock); request = conta_orig then conta_dest, as the original (opposite transfers can deadlock until LockWait runs out) |\n")
	p("| fences | every grant carries one; business servers repeat it on setSaldo and unLock in every policy |\n")
	p("| actors | `actors.Config{Synchronous: true}`; no operation logs |\n")
	p("| client | loadgen, request timeout %s, seed %d (same operation sequence in every cell) |\n\n", s.Timeout, s.Seed)

	// Table.
	p("## All cells\n\n")
	p("ok transfers/s counts transfers answered 200; total req/s counts every answer. Refusal rate is the share of all requests answered 403 LOCKED_ACCOUNT: immediate refusals in fail-fast, waits that ran out in the wait policies (counted again as *wait timeouts*). 409 INSUFFICIENT_FUNDS is a correct business refusal, listed apart. *Other* is every other non-ok outcome (broken down below the table).\n\n")
	p("| # | policy | order | skew | servers | ok transfers/s | total req/s | p50 | p99 | p99.9 | refusal rate | wait timeouts | 409 funds | other errors | conservation |\n")
	p("|--:|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for i, r := range results {
		if r.Report == nil {
			p("| %d | %s | %s | %s | %d | ERROR: %s | | | | | | | | | **FAIL** |\n", i+1, r.Policy, r.Order, r.Skew.Name, r.Servers, oneLine(fmt.Sprint(r.Err)))
			continue
		}
		c := "PASS"
		if !r.ConservationOK {
			c = "**FAIL** " + oneLine(r.Conservation)
		}
		if r.Err != nil {
			c += " **ERROR** " + oneLine(r.Err.Error())
		}
		if r.Report.Interrupted {
			c += " (interrupted)"
		}
		p("| %d | %s | %s | %s | %d | %s | %s | %s | %s | %s | %s%% | %s | %d | %d | %s |\n", i+1, r.Policy, r.Order, r.Skew.Name, r.Servers,
			fmtRate(r.OKTransfersPerSec), fmtRate(r.TotalPerSec), loadgen.FormatMicros(r.P50), loadgen.FormatMicros(r.P99), loadgen.FormatMicros(r.P999),
			fmtPct(r.RefusalRate), waitTimeouts(r), r.Insufficient, r.Other, c)
	}
	p("\n")
	var detail []string
	for i, r := range results {
		if len(r.OtherDetail) == 0 {
			continue
		}
		keys := make([]string, 0, len(r.OtherDetail))
		for k := range r.OtherDetail {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for j, k := range keys {
			parts[j] = fmt.Sprintf("%s × %d", k, r.OtherDetail[k])
		}
		detail = append(detail, fmt.Sprintf("- #%d `%s`: %s", i+1, r.Cell, strings.Join(parts, ", ")))
	}
	if len(detail) > 0 {
		p("Other errors by cell:\n\n%s\n\n", strings.Join(detail, "\n"))
	} else {
		p("No cell had any other error (no 5xx, no client timeout, no broken connection).\n\n")
	}

	// What this shows.
	p("## What this shows\n\n")
	writeFindings(b, ix, results, s)

	// Plots.
	if len(meta.Plots) > 0 {
		p("## Plots\n\n")
		p("Rows: lock order; columns: skew; x: business servers; one bar per policy. Each panel has its own y scale.\n\n")
		for _, pl := range meta.Plots {
			p("### %s\n\n![%s](%s)\n\n", pl.Title, pl.Title, pl.File)
		}
	}

	// Comparison table.
	p("## Wait against fail-fast, condition by condition\n\n")
	p("| order | skew | servers | fail-fast ok xfer/s | fail-fast refusals | wait ok xfer/s | wait refusals | wait / fail-fast | wait+lease ok xfer/s | wait+lease / wait |\n")
	p("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, c := range conditions(results) {
		ff, wt, wl := ix.get(PolicyFailFast, c), ix.get(PolicyWait, c), ix.get(PolicyWaitLease, c)
		cellRate := func(r *Result) string {
			if r == nil {
				return "–"
			}
			return fmtRate(r.OKTransfersPerSec)
		}
		cellRef := func(r *Result) string {
			if r == nil {
				return "–"
			}
			return fmtPct(r.RefusalRate) + "%"
		}
		rt := func(a, b *Result) string {
			if a == nil || b == nil {
				return "–"
			}
			return fmtRatio(ratio(a.OKTransfersPerSec, b.OKTransfersPerSec))
		}
		p("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", c.Order, c.Skew.Name, c.Servers,
			cellRate(ff), cellRef(ff), cellRate(wt), cellRef(wt), rt(wt, ff), cellRate(wl), rt(wl, wt))
	}
	p("\n")

	p("## Method notes\n\n")
	p("- Every cell starts a fresh bank (%d accounts of %d), so no cell inherits another's balances, locks or connections; the servers are shut down and the actors stopped before the next cell starts.\n", s.Accounts, s.InitialBalance)
	p("- The load generator, the data server and every business server share this machine's %d CPUs, so adding business servers adds no CPU: what changes with their number is how contention splits between the business servers' local locks (one server: requests of one server queue locally, the data server's lock is re-entrant per `id_negoc`) and the data server's locks (many servers).\n", meta.NumCPU)
	p("- Each cell is measured once, for %s. The three policies of one condition run back to back; compare them with each other rather than across distant rows, since this machine's speed drifts over minutes. Differences of a few tens of percent between two cells are within what one run can show (wait and wait+lease differ by little more than a timer, yet their ratio spreads widely); the factor-of-two and factor-of-a-hundred differences are not noise. `--long` runs %s cells.\n", s.Duration, LongDuration)
	p("- Latency is measured by the client per request, all operations together, in a closed loop: it understates queueing under overload (coordinated omission).\n")
	p("- The conservation check reads every balance before and after a cell and requires after = before + acknowledged deposits − acknowledged withdrawals (widened only by requests whose outcome the client could not know), and no negative balance.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeFindings writes the "what this shows" paragraphs, computed from the
// results.
func writeFindings(b *strings.Builder, ix index, results []Result, s Settings) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	var bullets []string
	add := func(format string, a ...any) { bullets = append(bullets, fmt.Sprintf(format, a...)) }

	if h, ok := headline(ix, headlineCondition); ok {
		add("At 3 business servers, uniform accounts, ascending order, wait moved %s ok transfers/s against fail-fast's %s (%s), with a refusal rate of %s%% against %s%%.",
			fmtRate(h.Wait.OKTransfersPerSec), fmtRate(h.FailFast.OKTransfersPerSec), fmtRatio(h.Ratio),
			fmtPct(h.Wait.RefusalRate), fmtPct(h.FailFast.RefusalRate))
	}

	// Wait against fail-fast, per lock order.
	for _, o := range Orders {
		var ratios, ffRef, wtRef []float64
		var worse []string
		for _, c := range conditions(results) {
			ff, wt := ix.get(PolicyFailFast, c), ix.get(PolicyWait, c)
			if c.Order != o || ff == nil || wt == nil {
				continue
			}
			r := ratio(wt.OKTransfersPerSec, ff.OKTransfersPerSec)
			ratios = append(ratios, r)
			ffRef = append(ffRef, ff.RefusalRate)
			wtRef = append(wtRef, wt.RefusalRate)
			if !(r >= 1) {
				worse = append(worse, fmt.Sprintf("%s/%d (%s)", c.Skew.Name, c.Servers, fmtRatio(r)))
			}
		}
		if len(ratios) == 0 {
			continue
		}
		g, _ := geomean(ratios)
		line := fmt.Sprintf("%s order, all %d skew × server conditions: wait's successful-transfer throughput is %s fail-fast's (geometric mean; range %s–%s). Fail-fast refused %s of all requests, wait %s.",
			capitalize(string(o)), len(ratios), fmtRatio(g), fmtRatio(slices.Min(ratios)), fmtRatio(slices.Max(ratios)),
			pctRange(ffRef), pctRange(wtRef))
		switch {
		case len(worse) == 0:
			line += " Wait moved at least as many transfers as fail-fast in every one of them."
		case len(worse) == len(ratios):
			line += " Wait moved fewer transfers than fail-fast in every one of them."
		default:
			line += " Wait moved fewer transfers than fail-fast in: " + strings.Join(worse, ", ") + "."
		}
		add("%s", line)
	}

	// Fail-fast refusals by skew (ascending, all server counts).
	for _, sk := range Skews {
		var parts []string
		for _, n := range ServerCounts {
			c := condition{OrderAscending, sk, n}
			ff, wt := ix.get(PolicyFailFast, c), ix.get(PolicyWait, c)
			if ff == nil || wt == nil {
				continue
			}
			parts = append(parts, fmt.Sprintf("%d server(s): fail-fast %s%% vs wait %s%%", n, fmtPct(ff.RefusalRate), fmtPct(wt.RefusalRate)))
		}
		if len(parts) > 0 {
			add("Refusal rate, %s, ascending order — %s.", sk.Name, strings.Join(parts, "; "))
		}
	}

	// Wait timeouts by order.
	timeouts := map[Order]int64{}
	seenOrder := map[Order]bool{}
	var orderRatios []float64
	for _, r := range results {
		if r.Report != nil && r.Policy.waits() {
			timeouts[r.Order] += r.WaitTimeouts
			seenOrder[r.Order] = true
		}
		if r.Report != nil && r.Policy == PolicyWait && r.Order == OrderRequest {
			c := r.condition()
			c.Order = OrderAscending
			if a := ix.get(PolicyWait, c); a != nil {
				orderRatios = append(orderRatios, ratio(r.OKTransfersPerSec, a.OKTransfersPerSec))
			}
		}
	}
	if seenOrder[OrderAscending] || seenOrder[OrderRequest] {
		var parts []string
		for _, o := range Orders {
			if seenOrder[o] {
				parts = append(parts, fmt.Sprintf("%s order %d", o, timeouts[o]))
			}
		}
		s := fmt.Sprintf("Waits that ran out (403 after %s) in the two waiting policies, summed over their cells: %s.", s.LockWait, strings.Join(parts, ", "))
		if g, n := geomean(orderRatios); n > 0 {
			s += fmt.Sprintf(" With request order, wait's successful-transfer throughput is %s that of ascending order (geometric mean over %d conditions):", fmtRatio(g), n)
			if timeouts[OrderRequest] > timeouts[OrderAscending] {
				s += " transfers that lock in request order form cycles (A→B holds A and waits for B while B→A holds B and waits for A), which only a wait timeout breaks, and every request queued behind those accounts waits too. Ascending order is what makes waiting safe; fail-fast never waits, so it never deadlocks, whatever the order."
			} else {
				s += " no extra timeouts showed up at this load."
			}
		}
		add("%s", s)
	}

	// Lease cost, per lock order.
	for _, o := range Orders {
		var lease []float64
		for _, c := range conditions(results) {
			wt, wl := ix.get(PolicyWait, c), ix.get(PolicyWaitLease, c)
			if c.Order == o && wt != nil && wl != nil {
				lease = append(lease, ratio(wl.OKTransfersPerSec, wt.OKTransfersPerSec))
			}
		}
		if g, n := geomean(lease); n > 0 {
			add("Leases, %s order (a %s lease timer armed and cancelled per grant): wait+lease moved %s the successful transfers of wait (geometric mean over %d conditions; range %s–%s, a range that includes run-to-run noise).",
				o, s.Lease, fmtRatio(g), n, fmtRatio(slices.Min(lease)), fmtRatio(slices.Max(lease)))
		}
	}

	// Server count (wait, ascending, uniform).
	var srv []string
	for _, n := range ServerCounts {
		if r := ix.get(PolicyWait, condition{OrderAscending, SkewUniform, n}); r != nil {
			srv = append(srv, fmt.Sprintf("%d: %s", n, fmtRate(r.OKTransfersPerSec)))
		}
	}
	if len(srv) > 1 {
		add("Wait, ascending, uniform, ok transfers/s by number of business servers — %s. Every server shares the same CPUs, so more servers add no capacity: they move contention from the business servers' local locks to the data server's.", strings.Join(srv, ", "))
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
		add("%d cell(s) had errors other than 403/409; the most: %s (see the breakdown above).", len(others), strings.Join(parts, ", "))
	}

	for _, x := range bullets {
		p("- %s\n", x)
	}
	p("\n")
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
