package dataserver

import (
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/wire"
)

// getLocks serves /getLocks: the locks of several accounts (conta
// repeated, 1 to MaxCommitAccounts, distinct) for one id_negoc, taken one
// after the other in the order given, with the wait and ttl of /getLock.
// It spares a business server one round trip per extra account: a transfer
// is one /getLocks and one /commit instead of two /getLock and a /commit.
//
// All or none: once every lock is granted it answers
// {"contas":[A,B],"fences":[FA,FB],"saldos":[SA,SB]} in the order given
// (the keys are plural so that a /getLock parser does not mistake the
// lists for a grant); when one is refused, the locks already taken are
// released under their fences and the refusal is answered as /getLock
// would (LOCKED_ACCOUNT, NOT_FOUND, 503), its message naming the account.
//
// Order is the caller's: callers that must not deadlock give the accounts
// in ascending order, as business servers do by default. wait bounds the
// whole request, not each lock: each lock waits for what is left of it
// (the last ones fail fast once it is spent). A lock this id_negoc already
// holds is granted again (re-entrant) and, on a refusal, released with the
// others, as the caller's own unlock would. No fence: a renewal names one
// grant, which /getLock does.
//
// It is built on Accounts.Do alone, so that any backend serves it.
func (s *Server) getLocks(ctx *fasthttp.RequestCtx) {
	const name = "getLocks"
	id, ok := s.callerID(ctx, true)
	if !ok || !s.authorized(ctx, id, name) {
		return
	}
	s.ids.remember(id)
	entry := s.cfg.Log.Entry(id, name)
	args := ctx.QueryArgs()
	var contas [MaxCommitAccounts]int64
	n := 0
	for k, v := range args.All() {
		if string(k) != wire.ParamConta {
			continue
		}
		if n == len(contas) {
			s.answer(ctx, entry, fasthttp.StatusBadRequest, teller.BadRequest, "getLocks takes 1 to 16 accounts")
			return
		}
		conta, ok := wire.ParseInt(v)
		if !ok {
			s.refuse(ctx, entry, teller.InvalidAccount, "a conta is not a number")
			return
		}
		for _, c := range contas[:n] {
			if c == conta {
				s.answer(ctx, entry, fasthttp.StatusBadRequest, teller.BadRequest, "an account appears twice in one getLocks")
				return
			}
		}
		contas[n] = conta
		n++
		entry.Int(conta)
	}
	if n == 0 {
		s.refuse(ctx, entry, teller.InvalidAccount, "missing conta")
		return
	}
	if _, k := single(args, wire.ParamFence); k > 0 {
		s.answer(ctx, entry, fasthttp.StatusBadRequest, teller.BadRequest, "getLocks takes no fence: renew a grant with getLock")
		return
	}
	req := actors.Request{Op: actors.OpLock, Holder: id}
	if msg := s.lockParams(args, &req); msg != "" {
		s.answer(ctx, entry, fasthttp.StatusBadRequest, teller.BadRequest, msg)
		return
	}
	var deadline time.Time
	if req.Wait > 0 {
		deadline = time.Now().Add(req.Wait)
	}
	var replies [MaxCommitAccounts]actors.Reply
	for i, conta := range contas[:n] {
		r := req
		if !deadline.IsZero() {
			r.Wait = max(time.Until(deadline), 0) // 0: fail fast once the wait is spent
		}
		start := time.Now()
		reply, err := s.do(ctx, conta, r)
		if err == nil {
			s.m.lockWait.Since(start)
			replies[i] = reply
			continue
		}
		// Release what was taken, latest first, under each grant's fence: a
		// grant that ran out meanwhile is someone else's business now.
		for j := i - 1; j >= 0; j-- {
			_, _ = s.do(ctx, contas[j], actors.Request{Op: actors.OpUnlock, Holder: id, Fence: replies[j].Fence})
		}
		which := " (conta " + strconv.FormatInt(conta, 10) + "); no lock taken"
		s.reject(ctx, entry, name, err, which)
		return
	}
	entry.Done()
	var a [256]byte
	buf := append(a[:0], `{"contas":[`...)
	for i, c := range contas[:n] {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendInt(buf, c, 10)
	}
	buf = append(buf, `],"fences":[`...)
	for i, r := range replies[:n] {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendUint(buf, r.Fence, 10)
	}
	buf = append(buf, `],"saldos":[`...)
	for i, r := range replies[:n] {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendInt(buf, r.Balance, 10)
	}
	wire.WriteJSON(ctx, append(buf, "]}"...))
}
