package loadgen

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/bank/gobank/actors/teller"
)

// Report is the result of a run. WriteJSON encodes it with the field names
// in the tags, which are stable:
//
//	target, mode ("closed" or "open"), servers, workers, rate, max_inflight,
//	accounts, dist, mix, amount_min, amount_max, seed, timeout_ms  the run's settings
//	interrupted        the run was cut short by cancellation (Ctrl-C)
//	duration_s         wall time of the load phase, draining included
//	requests           operations completed, whatever their outcome
//	ok                 operations answered with success
//	errors             requests - ok: refusals and failures alike
//	unknown            operations whose effect the client cannot know
//	dropped            open loop: operations not sent because max_inflight were outstanding
//	throughput_ok      ok / duration_s
//	throughput_total   requests / duration_s
//	latency_us         {min, mean, p50, p90, p99, p99_9, max} in microseconds
//	outcomes           count by outcome label: "ok", "403 LOCKED_ACCOUNT",
//	                   "409 INSUFFICIENT_FUNDS", "timeout", "conn_error", ...
//	ops                by op name: {requests, ok, dropped}
//	conservation       see Conservation; null when the check was skipped
//	batch              transfers per transferencia (Config.Batch; 1: none batched)
//	batches            see BatchStats; absent unless batch > 1
//
// A data-target "lock" or "setSaldo" operation is several HTTP requests
// (getLock ... unLock); it counts once, timed as a whole. So does a batch
// of transfers (one POST /transferencias, a "transferencia" of ops):
// batches counts its transfers.
type Report struct {
	Target      Target         `json:"target"`
	Mode        string         `json:"mode"`
	Servers     []string       `json:"servers"`
	Workers     int            `json:"workers"`
	Rate        float64        `json:"rate"`
	MaxInflight int            `json:"max_inflight"`
	Accounts    int            `json:"accounts"`
	Dist        string         `json:"dist"`
	Mix         map[string]int `json:"mix"`
	AmountMin   int64          `json:"amount_min"`
	AmountMax   int64          `json:"amount_max"`
	Seed        uint64         `json:"seed"`
	// HistoryLines counts the lines written to Config.History (0: none).
	HistoryLines int64 `json:"history_lines,omitempty"`
	TimeoutMS    int64 `json:"timeout_ms"`
	Interrupted  bool  `json:"interrupted"`

	DurationSeconds float64 `json:"duration_s"`
	Requests        int64   `json:"requests"`
	OK              int64   `json:"ok"`
	Errors          int64   `json:"errors"`
	Unknown         int64   `json:"unknown"`
	Dropped         int64   `json:"dropped"`
	ThroughputOK    float64 `json:"throughput_ok"`
	ThroughputTotal float64 `json:"throughput_total"`

	Latency  Latency            `json:"latency_us"`
	Outcomes map[string]int64   `json:"outcomes"`
	Ops      map[string]OpStats `json:"ops"`

	Conservation *Conservation `json:"conservation"`

	Batch   int         `json:"batch"`
	Batches *BatchStats `json:"batches,omitempty"`

	// Histogram holds every latency (µs), for percentiles beyond Latency's.
	Histogram *hdr.Histogram `json:"-"`
}

// BatchStats reports the batches of a run with Config.Batch > 1: each
// transferencia of the mix was one POST /transferencias of Size
// transfers. JSON field names are in the tags.
type BatchStats struct {
	Size     int   `json:"size"`     // transfers per batch
	Requests int64 `json:"requests"` // batches sent, whatever their outcome
	OK       int64 `json:"ok"`       // batches answered with a result per transfer (200)
	// Transfers is every batch's transfers (Requests × Size); Applied
	// those the answers say were applied; Refused those refused in their
	// results, by error_code name (INSUFFICIENT_FUNDS, ...). A batch not
	// answered with results (an error, a timeout) counts in neither.
	Transfers int64            `json:"transfers"`
	Applied   int64            `json:"applied"`
	Refused   map[string]int64 `json:"refused"`
	// ThroughputApplied and ThroughputTransfers are Applied and Transfers
	// per second of the run.
	ThroughputApplied   float64 `json:"throughput_applied"`
	ThroughputTransfers float64 `json:"throughput_transfers"`
	// Latency is per batch, from the request to its whole answer.
	Latency Latency `json:"latency_us"`
}

// Latency summarizes the histogram, in microseconds. In the open loop each
// latency runs from the operation's intended send time.
type Latency struct {
	Min  int64   `json:"min"`
	Mean float64 `json:"mean"`
	P50  int64   `json:"p50"`
	P90  int64   `json:"p90"`
	P99  int64   `json:"p99"`
	P999 int64   `json:"p99_9"`
	Max  int64   `json:"max"`
}

// OpStats counts one operation kind.
type OpStats struct {
	Requests int64 `json:"requests"`
	OK       int64 `json:"ok"`
	Dropped  int64 `json:"dropped"`
}

func newReport(cfg Config) *Report {
	r := &Report{
		Target:      cfg.Target,
		Mode:        "closed",
		Servers:     slices.Clone(cfg.Servers),
		Workers:     cfg.Workers,
		Rate:        cfg.Rate,
		MaxInflight: cfg.MaxInflight,
		Accounts:    cfg.Accounts,
		Dist:        cfg.Dist.String(),
		Mix:         map[string]int{},
		AmountMin:   cfg.AmountMin,
		AmountMax:   cfg.AmountMax,
		Seed:        cfg.Seed,
		TimeoutMS:   cfg.Timeout.Milliseconds(),
		Batch:       max(cfg.Batch, 1),
	}
	if cfg.Rate > 0 {
		r.Mode = "open"
	}
	for k, v := range cfg.Mix {
		if v > 0 {
			r.Mix[k] = v
		}
	}
	return r
}

func (r *Report) fill(t totals, elapsed time.Duration, interrupted bool) {
	r.Interrupted = interrupted
	r.DurationSeconds = elapsed.Seconds()
	r.Requests, r.OK, r.Unknown, r.Dropped = t.requests, t.ok, t.unknown, t.dropped
	r.Errors = t.requests - t.ok
	if s := elapsed.Seconds(); s > 0 {
		r.ThroughputOK = float64(t.ok) / s
		r.ThroughputTotal = float64(t.requests) / s
	}
	r.Histogram = t.hist
	r.Latency = latencyOf(t.hist)
	if r.Batch > 1 {
		b := &BatchStats{Size: r.Batch, Requests: t.batchReq, OK: t.batchOK, Transfers: t.transfers, Applied: t.applied,
			Refused: map[string]int64{}}
		for code, n := range t.refused {
			b.Refused[teller.Code(code).String()] += n
		}
		if s := elapsed.Seconds(); s > 0 {
			b.ThroughputApplied = float64(t.applied) / s
			b.ThroughputTransfers = float64(t.transfers) / s
		}
		if t.batchHist != nil {
			b.Latency = latencyOf(t.batchHist)
		}
		r.Batches = b
	}
	r.Outcomes = make(map[string]int64, len(t.outcomes))
	for k, v := range t.outcomes {
		r.Outcomes[k.label()] += v
	}
	r.Ops = map[string]OpStats{}
	for o := range numOps {
		if r.Mix[o.String()] > 0 || t.opReq[o] > 0 || t.opDropped[o] > 0 {
			r.Ops[o.String()] = OpStats{Requests: t.opReq[o], OK: t.opOK[o], Dropped: t.opDropped[o]}
		}
	}
}

// latencyOf summarizes h; the zero Latency when it is empty.
func latencyOf(h *hdr.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Min: h.Min(), Mean: h.Mean(), Max: h.Max(),
		P50: h.ValueAtPercentile(50), P90: h.ValueAtPercentile(90),
		P99: h.ValueAtPercentile(99), P999: h.ValueAtPercentile(99.9),
	}
}

// WriteJSON writes the report as one indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report for people: settings, totals, latency
// percentiles, outcomes, per-op counts and the conservation check.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format, a...) }

	loop := fmt.Sprintf("closed loop, %d workers", r.Workers)
	if r.Mode == "open" {
		loop = fmt.Sprintf("open loop, %s/s, max %d in flight", fmtFloat(r.Rate), r.MaxInflight)
	}
	p("target\t%s (%s)\n", r.Target, strings.Join(r.Servers, ", "))
	p("load\t%s; %d accounts, %s, amounts %d..%d, seed %d\n", loop, r.Accounts, r.Dist, r.AmountMin, r.AmountMax, r.Seed)
	p("mix\t%s\n", formatMix(r.Mix))
	if r.Batches != nil {
		p("\teach transferencia a batch of %d transfers (one POST /transferencias)\n", r.Batches.Size)
	}
	if r.Interrupted {
		p("\tINTERRUPTED: the run was cut short\n")
	}
	p("duration\t%.2fs\n", r.DurationSeconds)
	p("requests\t%d (ok %d, not ok %d, unknown outcome %d", r.Requests, r.OK, r.Errors, r.Unknown)
	if r.Mode == "open" {
		p(", dropped %d", r.Dropped)
	}
	p(")\n")
	p("throughput\t%s ok/s, %s total/s\n", fmtFloat(r.ThroughputOK), fmtFloat(r.ThroughputTotal))
	latency := func(name string, l Latency, suffix string) {
		p("%s\tp50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (min %s, mean %s)%s\n", name,
			FormatMicros(l.P50), FormatMicros(l.P90), FormatMicros(l.P99), FormatMicros(l.P999), FormatMicros(l.Max), FormatMicros(l.Min), FormatMicros(int64(l.Mean+0.5)), suffix)
	}
	latency("latency", r.Latency, "")
	if b := r.Batches; b != nil {
		p("transfers\t%d in %d batches of %d (%d answered): applied %d, refused %d%s\n",
			b.Transfers, b.Requests, b.Size, b.OK, b.Applied, sumValues(b.Refused), formatCounts(b.Refused))
		p("transfers/s\t%s applied/s, %s sent/s\n", fmtFloat(b.ThroughputApplied), fmtFloat(b.ThroughputTransfers))
		latency("batch latency", b.Latency, fmt.Sprintf("; per batch of %d", b.Size))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	type kv struct {
		k string
		v int64
	}
	outs := make([]kv, 0, len(r.Outcomes))
	width := len("outcome")
	for k, v := range r.Outcomes {
		outs = append(outs, kv{k, v})
		width = max(width, len(k))
	}
	// ok first, then by count, so the table reads top-down by importance.
	slices.SortFunc(outs, func(a, b kv) int {
		if (a.k == "ok") != (b.k == "ok") {
			if a.k == "ok" {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(b.v, a.v), strings.Compare(a.k, b.k))
	})
	var ops []op
	for o := range numOps {
		if _, ok := r.Ops[o.String()]; ok {
			ops = append(ops, o)
			width = max(width, len(o.String()))
		}
	}
	fmt.Fprintf(w, "\n%-*s  %10s  %6s\n", width, "outcome", "count", "share")
	for _, o := range outs {
		fmt.Fprintf(w, "%-*s  %10d  %5.1f%%\n", width, o.k, o.v, pct(o.v, r.Requests))
	}
	open := r.Mode == "open"
	if open {
		fmt.Fprintf(w, "%-*s  %10d\n", width, "(dropped)", r.Dropped)
	}
	fmt.Fprintf(w, "\n%-*s  %10s  %10s", width, "op", "requests", "ok")
	if open {
		fmt.Fprintf(w, "  %10s", "dropped")
	}
	fmt.Fprintln(w)
	for _, o := range ops {
		st := r.Ops[o.String()]
		fmt.Fprintf(w, "%-*s  %10d  %10d", width, o, st.Requests, st.OK)
		if open {
			fmt.Fprintf(w, "  %10d", st.Dropped)
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintln(w)
	c := r.Conservation
	if c == nil {
		_, err := fmt.Fprintln(w, "conservation: not checked")
		return err
	}
	verdict := "PASS"
	if !c.OK {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "conservation: %s (%s)\n", verdict, c.Reason)
	fmt.Fprintf(w, "  before %d + deposited %d - withdrawn %d = %d\n", c.Before, c.Deposited, c.Withdrawn, c.Before+c.Deposited-c.Withdrawn)
	if c.UnknownDeposit != 0 || c.UnknownWithdraw != 0 || c.UnknownTransfers != 0 {
		fmt.Fprintf(w, "  unknown outcomes: deposits %d, withdrawals %d (transfers: %d) -> after must lie in [%d, %d]\n",
			c.UnknownDeposit, c.UnknownWithdraw, c.UnknownTransfers, c.MinAfter, c.MaxAfter)
	}
	_, err := fmt.Fprintf(w, "  after  %d (difference %+d)\n", c.After, c.After-(c.Before+c.Deposited-c.Withdrawn))
	return err
}

func sumValues(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// formatCounts renders counts as " (NAME n, ...)", largest first; "" when
// there are none.
func formatCounts(m map[string]int64) string {
	if len(m) == 0 {
		return ""
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b)) })
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = k + " " + strconv.FormatInt(m[k], 10)
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func pct(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func fmtFloat(f float64) string {
	if f >= 100 {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'f', 1, 64)
}

// FormatMicros prints microseconds at a precision that suits the
// magnitude, in ASCII (us, not µs: reports are read in terminals, logs and
// CSV alike), with three significant digits from 1ms up: 1.23ms, 12.34ms,
// 1.50s. Every report of the benchmarks prints latencies with it.
func FormatMicros(us int64) string {
	switch {
	case us < 1000:
		return strconv.FormatInt(us, 10) + "us"
	case us < 1_000_000:
		return strconv.FormatFloat(float64(us)/1e3, 'f', 2, 64) + "ms"
	}
	return strconv.FormatFloat(float64(us)/1e6, 'f', 2, 64) + "s"
}

// FormatDuration is FormatMicros of a duration that may be shorter than a
// microsecond: "<1us" then, and "0" for none.
func FormatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Microsecond:
		return "<1us"
	}
	return FormatMicros(d.Microseconds())
}
