package dataserver

import (
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/account"
	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/wire"
)

// Snapshot defaults and limits.
const (
	// DefaultSnapshotWait bounds how long a snapshot waits for each
	// account's lock (the query parameter wait overrides it, up to
	// MaxLockWait).
	DefaultSnapshotWait = 2 * time.Second
	// MaxSnapshotAccounts bounds the accounts a snapshot reads.
	MaxSnapshotAccounts = 1 << 20
)

// snapshotSeq makes every snapshot's lock holder unique: locks are
// re-entrant per holder, so two snapshots must never share one.
var snapshotSeq atomic.Uint64

// snapshotTS is a snapshot's transaction timestamp: the oldest there is.
// A snapshot locks every account, so it meets every transaction, and it
// must not form a cycle of waits with the concurrency-control schemes:
// a wait-die transaction dies behind it rather than waiting for it, a
// wound-wait one never wounds it, and a cycle through it (a wound-wait or
// detect transaction waiting for an account the snapshot holds, while the
// snapshot waits for one it holds) is broken by the deadlock detector,
// whose victim is never the snapshot, the oldest. A snapshot without a
// timestamp was the youngest of all: wait-die and detect transactions
// waited for it while it waited for them, until the waits ran out.
const snapshotTS = 1

// snapshot serves /snapshot (server credential): every account's balance
// as of one instant, {"accounts":N,"total":T,"saldos":[b1,...,bN]} with
// saldos[i] the balance of account i+1.
//
// Consistency: linearizable. Every balance change goes through the
// account's lock — /setSaldo is refused while another holder has it and a
// /commit needs the caller's grants in force (it pins every account it
// writes, and pinned accounts cannot be locked by anyone else) — so the
// snapshot takes every account's lock, in ascending order (the order
// business servers use, so it cannot deadlock with them), waiting in the
// accounts' FIFO queues; once it holds them all, no write can be in
// progress or start, and it reads every balance. The answer is the state
// of the bank at that instant, which lies between the request and the
// answer: no commit is half-visible. It then releases the locks naming
// their fences; if any grant ran out meanwhile (its lease), the snapshot
// is refused with 503 instead of answered.
//
// Cost: nothing on the write path (no extra lock or check per write). A
// snapshot is as expensive as a transfer touching every account: writers
// to an account wait while the snapshot holds its lock (a business server
// with --lock-mode fail-fast answers 403 LOCKED_ACCOUNT then).
//
// Refusals: 200 LOCKED_ACCOUNT when a lock was not granted within wait;
// 503 UNAVAILABLE when an actor did not answer in time or a lease ran out.
// Nothing is ever changed.
func (s *Server) snapshot(ctx *fasthttp.RequestCtx) {
	const name = "snapshot"
	id, ok := s.callerID(ctx, false)
	if !ok || !s.authorized(ctx, id, name) {
		return
	}
	entry := s.cfg.Log.Entry(id, name)
	wait := DefaultSnapshotWait
	if raw, n := single(ctx.QueryArgs(), wire.ParamWait); n > 0 {
		d, err := time.ParseDuration(string(raw))
		if n > 1 || err != nil || d <= 0 || d > s.cfg.MaxLockWait {
			s.answer(ctx, entry, fasthttp.StatusBadRequest, teller.BadRequest,
				"wait: once, a positive Go duration within the server's maximum lock wait")
			return
		}
		wait = d
	}
	n := s.accountCount()
	holder := "gobank-snapshot-" + strconv.FormatUint(snapshotSeq.Add(1), 10)
	// The lease covers the whole snapshot with room to spare; the locks are
	// released explicitly below in every case.
	ttl := time.Duration(n+1)*wait + 10*time.Second
	fences := make([]uint64, 0, n)
	release := func() (stale bool) {
		for i, f := range fences {
			_, err := s.cfg.Accounts.Do(int64(i+1), actors.Request{Op: actors.OpUnlock, Holder: holder, Fence: f})
			if err != nil {
				stale = true
			}
		}
		return stale
	}
	for i := range n {
		conta := int64(i + 1)
		deadline := time.Now().Add(wait)
		for {
			reply, err := s.cfg.Accounts.Do(conta, actors.Request{Op: actors.OpLock, Holder: holder, TTL: ttl, Wait: wait,
				Scheme: account.Wait, TS: snapshotTS, Detect: true})
			if err == nil {
				fences = append(fences, reply.Fence)
				break
			}
			// A commit of an unfenced write is in progress: it ends soon.
			if errors.Is(err, account.ErrBusy) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
				continue
			}
			release()
			s.reject(ctx, entry, name, err, " (conta "+strconv.FormatInt(conta, 10)+", past wait); nothing read")
			return
		}
	}
	// Every lock is held: no balance can change until they are released.
	saldos := make([]int64, n)
	for i := range n {
		reply, err := s.cfg.Accounts.Do(int64(i+1), actors.Request{Op: actors.OpRead})
		if err != nil {
			release()
			s.reject(ctx, entry, name, err, "")
			return
		}
		saldos[i] = reply.Balance
	}
	if release() {
		s.answer(ctx, entry, fasthttp.StatusServiceUnavailable, teller.Unavailable,
			"a snapshot lock ran out or could not be released cleanly; snapshot discarded")
		return
	}
	var total int64
	buf := make([]byte, 0, 48+n*8)
	buf = append(buf, `{"accounts":`...)
	buf = strconv.AppendInt(buf, int64(n), 10)
	buf = append(buf, `,"saldos":[`...)
	for i, b := range saldos {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendInt(buf, b, 10)
		total += b // balances are bounded by the bank's overflow checks
	}
	buf = append(buf, `],"total":`...)
	buf = strconv.AppendInt(buf, total, 10)
	buf = append(buf, '}')
	entry.Int(int64(n)).Int(total).Done()
	wire.WriteJSON(ctx, buf)
}

// accountCount returns how many accounts there are: accounts are numbered
// 1..N. An Accounts without Len is probed until an account is not found.
func (s *Server) accountCount() int {
	if l, ok := s.cfg.Accounts.(interface{ Len() int }); ok {
		return l.Len()
	}
	n := 0
	for n < MaxSnapshotAccounts {
		if _, err := s.cfg.Accounts.Do(int64(n+1), actors.Request{Op: actors.OpRead}); errors.Is(err, actors.ErrNotFound) {
			break
		}
		n++
	}
	return n
}
