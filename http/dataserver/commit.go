package dataserver

import (
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/actors/teller/inprocess"
	"github.com/bank/gobank/http/oplog"
	"github.com/bank/gobank/http/wire"
)

// Limits of /commit and /idem.
const (
	MaxCommitAccounts = teller.MaxAccounts // a batch's
	MaxKeyLength      = inprocess.MaxKeyLength
	MaxFingerprint    = inprocess.MaxFingerprint
	MaxRecordBody     = inprocess.MaxRecordBody
)

// Records keeps idempotency records.
type Records = inprocess.Records

// recordParams reads an idempotency record's key, fingerprint, status and
// body (the request's own: not retained past the request). It returns
// rec == nil when the request names no key, and a message when the
// parameters are unacceptable.
func recordParams(ctx *fasthttp.RequestCtx, needOutcome bool) (rec *teller.Record, msg string) {
	args := ctx.QueryArgs()
	key, n := single(args, wire.ParamKey)
	switch {
	case n > 1:
		return nil, "key given more than once"
	case n == 0:
		return nil, ""
	case len(key) == 0 || len(key) > MaxKeyLength:
		return nil, "key: 1 to 128 bytes"
	}
	rec = &teller.Record{Key: string(key)}
	if !needOutcome {
		return rec, ""
	}
	fp, n := single(args, wire.ParamFingerprint)
	if n != 1 || len(fp) == 0 || len(fp) > MaxFingerprint {
		return nil, "fingerprint: once, 1 to 512 bytes, with key"
	}
	st, n := single(args, wire.ParamStatus)
	status, ok := wire.ParseInt(st)
	if n != 1 || !ok || status < 100 || status > 599 {
		return nil, "status: once, an HTTP status, with key"
	}
	body := ctx.PostBody()
	if len(body) > MaxRecordBody {
		return nil, "the outcome's body is over 4 KiB"
	}
	rec.Fingerprint, rec.Status, rec.Body = string(fp), int(status), body
	return rec, ""
}

// appendRecord encodes a kept record: what a repeated request must answer.
func appendRecord(buf []byte, r *teller.Record, replayed bool) []byte {
	buf = append(buf, `{"found":true,"replayed":`...)
	buf = strconv.AppendBool(buf, replayed)
	buf = append(buf, `,"status":`...)
	buf = strconv.AppendInt(buf, int64(r.Status), 10)
	buf = append(buf, `,"fingerprint":`...)
	buf = wire.AppendString(buf, r.Fingerprint)
	buf = append(buf, `,"body":`...)
	buf = wire.AppendString(buf, string(r.Body))
	return append(buf, '}')
}

// commit serves /commit: several balances set atomically and durably
// under the caller's current grants (each conta with its valor and fence,
// in parallel lists), the locks optionally released, and an idempotency
// record kept in the same batch, by inprocess.Holder.Commit. When the key
// already has a record, the commit is not applied and the record is
// answered instead.
func (s *Server) commit(ctx *fasthttp.RequestCtx) {
	const name = "commit"
	id, ok := s.callerID(ctx, true)
	if !ok || !s.authorized(ctx, id, name) {
		return
	}
	entry := s.cfg.Log.Entry(id, name)
	args, ok := s.params(ctx, entry)
	if !ok {
		return
	}
	var contas, valores, fences [][]byte
	for k, v := range args.All() {
		switch string(k) {
		case wire.ParamConta:
			contas = append(contas, v)
		case wire.ParamValor:
			valores = append(valores, v)
		case wire.ParamFence:
			fences = append(fences, v)
		}
	}
	if len(contas) == 0 || len(contas) > MaxCommitAccounts || len(valores) != len(contas) || len(fences) != len(contas) {
		s.answer(ctx, entry, fasthttp.StatusBadRequest, teller.BadRequest,
			"commit needs 1 to "+strconv.Itoa(MaxCommitAccounts)+" accounts, each with conta, valor and fence, in the same order")
		return
	}
	changes := make([]teller.Change, 0, len(contas))
	for i := range contas {
		conta, ok := wire.ParseInt(contas[i])
		if !ok {
			s.refuse(ctx, entry, teller.InvalidAccount, "a conta is not a number")
			return
		}
		valor, ok := wire.ParseInt(valores[i])
		if !ok {
			s.refuse(ctx, entry, teller.InvalidValue, "a valor is not an integer within 64 bits")
			return
		}
		fence, ok := wire.ParseInt(fences[i])
		if !ok || fence <= 0 {
			s.answer(ctx, entry, fasthttp.StatusBadRequest, teller.BadRequest, "each fence must be a positive integer from a lock grant")
			return
		}
		entry.Int(conta).Int(valor)
		changes = append(changes, teller.Change{Conta: conta, Saldo: valor, Fence: uint64(fence)})
	}
	if teller.Repeats(len(changes), func(i int) int64 { return changes[i].Conta }) {
		s.answer(ctx, entry, fasthttp.StatusBadRequest, teller.BadRequest, "an account appears twice in one commit")
		return
	}
	unlock := false
	switch v, n := single(args, wire.ParamUnlock); {
	case n > 1:
		s.answer(ctx, entry, fasthttp.StatusBadRequest, teller.BadRequest, "unlock given more than once")
		return
	case n == 1:
		unlock = string(v) == "1" || string(v) == "true"
	}
	rec, msg := recordParams(ctx, true)
	if msg != "" {
		s.answer(ctx, entry, fasthttp.StatusBadRequest, teller.BadRequest, msg)
		return
	}
	if rec != nil && !s.keepsRecords(ctx, entry) {
		return
	}
	old, err := s.accts.For(id, 0).Commit(s.callContext(ctx), changes, unlock, rec)
	switch {
	case err != nil:
		s.reject(ctx, entry, name, err, "; nothing applied")
	case old != nil:
		entry.Str("REPLAYED").Done()
		wire.WriteJSON(ctx, appendRecord(nil, old, true))
	default:
		entry.Done()
		wire.WriteJSON(ctx, emptyObject)
	}
}

// idem serves /idem: GET answers the record kept under key (or
// {"found":false}); POST keeps a record alone — for an outcome that
// changed no balance, such as a refusal — unless the key has one already,
// which it then answers (inprocess.Holder.Outcome and Keep).
func (s *Server) idem(ctx *fasthttp.RequestCtx) {
	const name = "idem"
	id, ok := s.callerID(ctx, false)
	if !ok || !s.authorized(ctx, id, name) {
		return
	}
	entry := s.cfg.Log.Entry(id, name)
	post := ctx.IsPost()
	rec, msg := recordParams(ctx, post)
	if msg == "" && rec == nil {
		msg = "missing key"
	}
	if msg != "" {
		s.answer(ctx, entry, fasthttp.StatusBadRequest, teller.BadRequest, msg)
		return
	}
	if !s.keepsRecords(ctx, entry) {
		return
	}
	accts := s.accts.For(id, 0)
	var old *teller.Record
	var err error
	if post {
		old, err = accts.Keep(s.callContext(ctx), *rec)
		if err == nil && old == nil {
			entry.Str("STORED").Done()
			wire.WriteJSON(ctx, []byte(`{"found":false,"stored":true}`))
			return
		}
	} else {
		var r teller.Record
		var found bool
		if r, found, err = accts.Outcome(s.callContext(ctx), rec.Key); found {
			old = &r
		}
	}
	switch {
	case err != nil:
		s.reject(ctx, entry, name, err, "")
	case old == nil:
		entry.Str("NOT_FOUND").Done()
		wire.WriteJSON(ctx, []byte(`{"found":false}`))
	default:
		entry.Str("FOUND").Done()
		wire.WriteJSON(ctx, appendRecord(nil, old, false))
	}
}

// keepsRecords answers 503 itself unless the server keeps idempotency
// records.
func (s *Server) keepsRecords(ctx *fasthttp.RequestCtx, entry *oplog.Entry) bool {
	if s.cfg.Records == nil {
		s.answer(ctx, entry, fasthttp.StatusServiceUnavailable, teller.Unavailable, "this data server keeps no idempotency records")
		return false
	}
	return true
}
