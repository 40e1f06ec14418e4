package dataserver

import (
	"errors"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/account"
	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/actors/teller/inprocess"
	"github.com/bank/gobank/http/wire"
)

// getLocks serves /getLocks: the locks of several accounts (conta
// repeated, 1 to MaxCommitAccounts, distinct: a batch's) for one id_negoc, with the
// wait and ttl of /getLock, taken by inprocess.Holder.Lock: in the order
// given, all or none, the wait bounding the whole request, re-entrant.
// A transaction's lock also names its scheme, timestamp, deadlock
// detection and the versions it read (see txnParams). It
// spares a business server one round trip per extra account: a transfer
// is one /getLocks and one /commit instead of two /getLock and a /commit.
//
// Once every lock is granted it answers
// {"contas":[A,B],"fences":[FA,FB],"saldos":[SA,SB]} in the order given
// (the keys are plural so that a /getLock parser does not mistake the
// lists for a grant); a refusal is answered as /getLock would
// (LOCKED_ACCOUNT, NOT_FOUND, 503), its message and its "conta" naming
// the account. No fence: a renewal names one grant, which /getLock does.
// A batch's many parameters come in a form body (see params).
func (s *Server) getLocks(ctx *fasthttp.RequestCtx) {
	const name = "getLocks"
	id, ok := s.callerID(ctx, true)
	if !ok || !s.authorized(ctx, id, name) {
		return
	}
	s.ids.remember(id)
	entry := s.cfg.Log.Entry(id, name)
	args, ok := s.params(ctx, entry)
	if !ok {
		return
	}
	var small [teller.MaxLegs]int64
	contas := small[:0]
	for k, v := range args.All() {
		if string(k) != wire.ParamConta {
			continue
		}
		if len(contas) == MaxCommitAccounts {
			s.answer(ctx, entry, fasthttp.StatusBadRequest, teller.BadRequest, "getLocks takes 1 to "+strconv.Itoa(MaxCommitAccounts)+" accounts")
			return
		}
		conta, ok := wire.ParseInt(v)
		if !ok {
			s.refuse(ctx, entry, teller.InvalidAccount, "a conta is not a number")
			return
		}
		contas = append(contas, conta)
		entry.Int(conta)
	}
	n := len(contas)
	if teller.Repeats(n, func(i int) int64 { return contas[i] }) {
		s.answer(ctx, entry, fasthttp.StatusBadRequest, teller.BadRequest, "an account appears twice in one getLocks")
		return
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
	opt := teller.LockOptions{Wait: req.Wait, BeforeDurable: req.BeforeDurable}
	var smallVersions [teller.MaxLegs]uint64
	var smallGrants [teller.MaxLegs]teller.Grant
	versions, grants := smallVersions[:], smallGrants[:]
	if n > teller.MaxLegs {
		versions, grants = make([]uint64, n), make([]teller.Grant, n)
	}
	versions, grants = versions[:n], grants[:n]
	if msg := txnParams(args, &opt, versions); msg != "" {
		s.answer(ctx, entry, fasthttp.StatusBadRequest, teller.BadRequest, msg)
		return
	}
	if err := s.accts.For(id, req.TTL).Lock(s.callContext(ctx), contas, opt, grants); err != nil {
		if e := (*inprocess.Error)(nil); errors.As(err, &e) && e.Conta != 0 {
			// The account is named in the message and in the answer's
			// conta: a batch leaves out an account not found, and locks
			// the rest.
			s.rejectAccount(ctx, entry, name, err, e.Conta, " (conta "+strconv.FormatInt(e.Conta, 10)+"); no lock taken")
			return
		}
		s.reject(ctx, entry, name, err, "")
		return
	}
	entry.Done()
	var a [256]byte
	buf := append(a[:0], `{"contas":[`...)
	for i, c := range contas {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendInt(buf, c, 10)
	}
	buf = append(buf, `],"fences":[`...)
	for i, g := range grants {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendUint(buf, g.Fence, 10)
	}
	buf = append(buf, `],"saldos":[`...)
	for i, g := range grants {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendInt(buf, g.Saldo, 10)
	}
	wire.WriteJSON(ctx, append(buf, "]}"...))
}

// txnParams reads a transaction's lock parameters into opt: scheme (a
// name of account.ParseScheme), ts (a positive integer), detect ("1" or
// "true") and version (none, or one per conta, in its order, into
// versions). It returns what is wrong with them, or "".
func txnParams(args *fasthttp.Args, opt *teller.LockOptions, versions []uint64) string {
	if raw, n := single(args, wire.ParamScheme); n > 1 {
		return "scheme given more than once"
	} else if n == 1 {
		sc, err := account.ParseScheme(string(raw))
		if err != nil {
			return err.Error()
		}
		opt.Scheme = sc
	}
	if raw, n := single(args, wire.ParamTS); n > 1 {
		return "ts given more than once"
	} else if n == 1 {
		ts, err := strconv.ParseUint(string(raw), 10, 64)
		if err != nil || ts == 0 {
			return "ts: want a positive integer, the transaction's timestamp"
		}
		opt.TS = ts
	}
	if raw, n := single(args, wire.ParamDetect); n > 1 {
		return "detect given more than once"
	} else if n == 1 {
		switch string(raw) {
		case "1", "true":
			opt.Detect = true
		case "0", "false":
		default:
			return "detect: want 1 or 0"
		}
	}
	if opt.Detect && opt.TS == 0 {
		return "detect needs ts: a deadlock's victim is its youngest transaction"
	}
	n := 0
	for k, v := range args.All() {
		if string(k) != wire.ParamVersion {
			continue
		}
		if n == len(versions) {
			return "version: one per conta, no more"
		}
		ver, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil || ver == 0 {
			return "version: want a positive integer from a read"
		}
		versions[n] = ver
		n++
	}
	switch n {
	case 0:
	case len(versions):
		opt.Versions = versions
	default:
		return "version: one per conta, or none"
	}
	return ""
}
