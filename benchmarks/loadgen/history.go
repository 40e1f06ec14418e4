package loadgen

import (
	"bufio"
	"encoding/json"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/wire"
)

// History format (bank bench --history FILE), version 3: JSON lines.
//
// The first line is the header:
//
//	{"type":"header","version":V,"start":"RFC 3339 wall time","target":"business",
//	 "accounts":N,"groups":G,"initial":[b1,...,bN],"covers":[1,N]}
//
// version V is the oldest version of the format that describes every
// line of the file: a history with moves is version 3 (its header is
// version 2's); loadgen writes no move, so its histories say 2.
//
// covers is [first, last]: the history covers accounts first..last (N of
// them, bank bench --accounts), the only ones its operations name and its
// snapshots list, whatever else the data server holds. initial[i] is
// account first+i's balance read before the load began (null when it
// could not be read). groups is 0 unless --groups partitioned the
// covered accounts: then group g (0-based) is accounts groupLo(g)..groupHi(g), the
// contiguous blocks GroupOf computes, and no transfer or move crosses
// groups.
//
// Every other line is one operation, written when it returned, so lines
// are in return order, not call order:
//
//	{"type":"op","client":W,"op":"deposito|saque|transferencia|saldo","a":A,"b":B,
//	 "amount":V,"call":NS,"ret":NS,"result":"ok|fail|unknown",
//	 "status":S,"error":"NAME","saldo":X,"saldo_b":Y}
//	{"type":"op","client":W,"op":"move","legs":[[C1,D1],...,[Ck,Dk]],
//	 "call":NS,"ret":NS,"result":"ok|fail|unknown",
//	 "status":S,"error":"NAME","leg_saldos":[X1,...,Xk]}
//	{"type":"snapshot","client":-1,"call":NS,"ret":NS,"result":"ok|fail|unknown",
//	 "status":S,"error":"NAME","saldos":[b1,...,bN]}
//
// (saldos[i]: account first+i, of a /snapshot of every account the data
// server holds.)
//
// A move (version 3; loadgen writes none) is a transaction of teller.Move:
// k legs, 1 <= k <= 16 (teller.MaxLegs), each [conta, delta] adding delta
// to account conta's balance, all applied or none. The accounts are
// distinct covered accounts of one group; each delta is an integer, not 0
// and not -2^63; the deltas need not sum to zero (then the move brings
// their sum into the bank, or takes it out). It is refused with
// INSUFFICIENT_FUNDS when any new balance would be negative, OVERFLOW when
// one would exceed int64. A move has no a, b, amount, saldo nor saldo_b;
// the other operations have no legs nor leg_saldos.
//
// call and ret are monotonic nanoseconds since the run's start: the
// operation was invoked at call and its answer (or the client's giving up)
// came at ret. client is the worker (closed loop) or sender (open loop)
// number; snapshots, read from the data server's /snapshot, use -1. b is
// present for transfers only. result is
//
//   - "ok": the bank acknowledged it. saldo is the balance it answered
//     (deposito, saque, saldo: of a; transferencia: of a, and saldo_b of b);
//     leg_saldos a move's new balances, one per leg in leg order; saldos
//     is the snapshot.
//   - "fail": a definite refusal, nothing applied. status is the HTTP
//     status, error the error_code's name (or "" when there was none, e.g.
//     "dial_error" as status 0 and error "dial_error").
//   - "unknown": the client cannot know whether it was applied — a timeout,
//     a broken connection, a 5xx without the bank's error body or whose
//     message does not say "not applied" / "nothing changed" (any 5xx with
//     --unknown-5xx). ret is when the client gave up; the operation may take
//     effect at any later time, or never.
//
// Lines are streamed through a buffered writer: memory does not grow with
// the run.
//
// Version 2 had no moves. Version 1 had no covers either, and its
// snapshots listed every account of the data server: "bank check" reads it
// as covering accounts 1..N and leaves the other balances out.
const HistoryVersion = 3

// historyWriteVersion is the version loadgen's histories say they are.
// loadgen writes no move (no route of the business server takes one), so
// what it writes is exactly version 2: saying 2 claims no more than the
// file holds, and a checker that reads only up to version 2 still reads
// it. Once loadgen writes moves it writes HistoryVersion.
const historyWriteVersion = 2

// GroupOf returns the 0-based group of account a (1..accounts) when the
// accounts are split into groups contiguous blocks, and that block's
// bounds. groups <= 1 puts every account in group 0.
func GroupOf(a int64, accounts, groups int) (g int, lo, hi int64) {
	if groups <= 1 {
		return 0, 1, int64(accounts)
	}
	for g = range groups {
		lo, hi = groupBounds(g, accounts, groups)
		if a >= lo && a <= hi {
			return g, lo, hi
		}
	}
	return groups - 1, lo, hi
}

// groupBounds returns group g's accounts lo..hi.
func groupBounds(g, accounts, groups int) (lo, hi int64) {
	lo = int64(g*accounts/groups) + 1
	hi = int64((g + 1) * accounts / groups)
	return lo, hi
}

// history streams the run's operations to a writer.
type history struct {
	mu    sync.Mutex
	w     *bufio.Writer
	start time.Time
	err   error
	n     int64
}

func newHistory(w io.Writer) *history {
	return &history{w: bufio.NewWriterSize(w, 256<<10)}
}

func (h *history) ns(t time.Time) int64 { return int64(t.Sub(h.start)) }

func (h *history) writeLine(b []byte) {
	h.mu.Lock()
	if h.err == nil {
		_, h.err = h.w.Write(b)
		h.n++
	}
	h.mu.Unlock()
}

func (h *history) header(target Target, accounts, groups int, initial []int64) {
	b := append([]byte(nil), `{"type":"header","version":`...)
	b = strconv.AppendInt(b, historyWriteVersion, 10)
	b = append(b, `,"start":`...)
	b = wire.AppendString(b, h.start.UTC().Format(time.RFC3339Nano))
	b = append(b, `,"target":`...)
	b = wire.AppendString(b, string(target))
	b = append(b, `,"accounts":`...)
	b = strconv.AppendInt(b, int64(accounts), 10)
	b = append(b, `,"groups":`...)
	b = strconv.AppendInt(b, int64(groups), 10)
	b = append(b, `,"initial":`...)
	b = appendInts(b, initial)
	b = append(b, `,"covers":[1,`...)
	b = strconv.AppendInt(b, int64(accounts), 10)
	b = append(b, "]}\n"...)
	h.writeLine(b)
}

func appendInts(b []byte, v []int64) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, x := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, x, 10)
	}
	return append(b, ']')
}

// result classifies an outcome for the history: "ok", "fail" (surely not
// applied) or "unknown".
func historyResult(o outcome, unknown5xx bool) string {
	switch {
	case o == okOutcome:
		return "ok"
	case o.unknown(unknown5xx):
		return "unknown"
	}
	return "fail"
}

func appendOutcome(b []byte, res string, o outcome) []byte {
	b = append(b, `,"result":"`...)
	b = append(b, res...)
	b = append(b, '"')
	if res == "ok" {
		return b
	}
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(o.status), 10)
	b = append(b, `,"error":`...)
	name := ""
	switch {
	case o.kind != kindHTTP:
		name = o.label()
	case o.hasCode:
		name = teller.Code(o.code).String()
	}
	return wire.AppendString(b, name)
}

// op records one business operation. body is the answer's body.
func (h *history) op(client int, p planned, call, ret time.Time, o outcome, body []byte, unknown5xx bool) {
	res := historyResult(o, unknown5xx)
	var a [320]byte // encoded outside the lock, copied under it
	b := append(a[:0], `{"type":"op","client":`...)
	b = strconv.AppendInt(b, int64(client), 10)
	b = append(b, `,"op":"`...)
	b = append(b, p.op.String()...)
	b = append(b, `","a":`...)
	b = strconv.AppendInt(b, p.a, 10)
	if p.op == opTransferencia {
		b = append(b, `,"b":`...)
		b = strconv.AppendInt(b, p.b, 10)
	}
	if p.op != opSaldo {
		b = append(b, `,"amount":`...)
		b = strconv.AppendInt(b, p.amount, 10)
	}
	b = append(b, `,"call":`...)
	b = strconv.AppendInt(b, h.ns(call), 10)
	b = append(b, `,"ret":`...)
	b = strconv.AppendInt(b, h.ns(ret), 10)
	b = appendOutcome(b, res, o)
	if res == "ok" {
		switch p.op {
		case opTransferencia:
			b = append(b, `,"saldo":`...)
			b = strconv.AppendInt(b, fieldInt(body, `"saldo_orig"`, -1), 10)
			b = append(b, `,"saldo_b":`...)
			b = strconv.AppendInt(b, fieldInt(body, `"saldo_dest"`, -1), 10)
		default:
			b = append(b, `,"saldo":`...)
			b = strconv.AppendInt(b, fieldInt(body, `"saldo"`, -1), 10)
		}
	}
	b = append(b, "}\n"...)
	h.writeLine(b)
}

// snapshot records one /snapshot read.
func (h *history) snapshot(call, ret time.Time, o outcome, res string, saldos []int64) {
	b := append([]byte(nil), `{"type":"snapshot","client":-1,"call":`...)
	b = strconv.AppendInt(b, h.ns(call), 10)
	b = append(b, `,"ret":`...)
	b = strconv.AppendInt(b, h.ns(ret), 10)
	b = appendOutcome(b, res, o)
	if res == "ok" {
		b = append(b, `,"saldos":`...)
		b = appendInts(b, saldos)
	}
	b = append(b, "}\n"...)
	h.writeLine(b)
}

// close flushes the history and returns the first write error.
func (h *history) close() (int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.w.Flush(); h.err == nil {
		h.err = err
	}
	return h.n, h.err
}

// regroup moves p's accounts into group g of the configured groups, so
// that a transfer never crosses groups (the linearizability check is then
// partitioned by group). Both accounts stay distinct when the group has
// two or more.
func regroup(p *planned, g, accounts, groups int) {
	if groups <= 1 {
		return
	}
	lo, hi := groupBounds(g%groups, accounts, groups)
	size := hi - lo + 1
	if p.op != opTransferencia {
		p.a = lo + (p.a-1)%size
		return
	}
	p.a, p.b = regroupPair(p.a, p.b, lo, size)
	for i := range p.batch {
		p.batch[i].a, p.batch[i].b = regroupPair(p.batch[i].a, p.batch[i].b, lo, size)
	}
}

// regroupPair moves a transfer's accounts a and b into the group of size
// accounts from lo, keeping them distinct when the group has two or more.
func regroupPair(a, b, lo, size int64) (int64, int64) {
	a = lo + (a-1)%size
	b = lo + (b-1)%size
	if b == a {
		b = lo + (a-lo+1)%size
	}
	return a, b
}

// snapshotter reads the data server's /snapshot every interval and
// records each read in the history.
type snapshotter struct {
	h      *history
	ex     *executor
	t      *target
	n      int
	covers int // accounts 1..covers are recorded
	uri    []byte
	every  time.Duration
	unk5xx bool
}

func newSnapshotter(h *history, dataServer, token string, accounts int, timeout, every time.Duration, unknown5xx bool) (*snapshotter, error) {
	t, err := newTarget(dataServer, 2, timeout)
	if err != nil {
		return nil, err
	}
	ex := newExecutor([]*target{t}, token, timeout, "loadgen-snapshot")
	uri := append([]byte(t.base), wire.RouteSnapshot+"?"+wire.ParamIDNegoc+"=loadgen-snapshot"...)
	return &snapshotter{h: h, ex: ex, t: t, covers: accounts, uri: uri, every: every, unk5xx: unknown5xx}, nil
}

// read takes one snapshot and records the covered accounts' balances; it
// returns them when the read succeeded. The data server answers every
// account it holds, which may be more than the run covers.
func (s *snapshotter) read() []int64 {
	call := time.Now()
	o := s.ex.call(s.t, append([]byte(nil), s.uri...))
	ret := time.Now()
	body := s.ex.resp.Body()
	res := historyResult(o, s.unk5xx)
	var saldos []int64
	if res == "ok" {
		var v struct {
			Saldos []int64 `json:"saldos"`
		}
		if err := json.Unmarshal(body, &v); err != nil || len(v.Saldos) < s.covers {
			res, o = "fail", outcome{kind: kindHTTP, status: 200}
		} else {
			saldos = v.Saldos[:s.covers]
		}
	}
	s.h.snapshot(call, ret, o, res, saldos)
	s.n++
	return saldos
}

// run reads snapshots until stop is closed.
func (s *snapshotter) run(stop <-chan struct{}) {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.read()
		}
	}
}

func (s *snapshotter) close() {
	s.ex.release()
	s.t.hc.CloseIdleConnections()
}
