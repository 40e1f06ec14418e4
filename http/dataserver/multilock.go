package dataserver

import (
	"errors"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/actors/teller/inprocess"
	"github.com/bank/gobank/http/wire"
)

// getLocks serves /getLocks: the locks of several accounts (conta
// repeated, 1 to MaxCommitAccounts, distinct) for one id_negoc, with the
// wait and ttl of /getLock, taken by inprocess.Holder.Lock: in the order
// given, all or none, the wait bounding the whole request, re-entrant. It
// spares a business server one round trip per extra account: a transfer
// is one /getLocks and one /commit instead of two /getLock and a /commit.
//
// Once every lock is granted it answers
// {"contas":[A,B],"fences":[FA,FB],"saldos":[SA,SB]} in the order given
// (the keys are plural so that a /getLock parser does not mistake the
// lists for a grant); a refusal is answered as /getLock would
// (LOCKED_ACCOUNT, NOT_FOUND, 503), its message naming the account. No
// fence: a renewal names one grant, which /getLock does.
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
	var grants [MaxCommitAccounts]teller.Grant
	if err := s.accts.For(id, req.TTL).Lock(s.callContext(ctx), contas[:n], req.Wait, grants[:n]); err != nil {
		which := ""
		if e := (*inprocess.Error)(nil); errors.As(err, &e) && e.Conta != 0 {
			which = " (conta " + strconv.FormatInt(e.Conta, 10) + "); no lock taken"
		}
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
	for i, g := range grants[:n] {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendUint(buf, g.Fence, 10)
	}
	buf = append(buf, `],"saldos":[`...)
	for i, g := range grants[:n] {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendInt(buf, g.Saldo, 10)
	}
	wire.WriteJSON(ctx, append(buf, "]}"...))
}
