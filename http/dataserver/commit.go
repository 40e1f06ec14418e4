package dataserver

import (
	"bytes"
	"errors"
	"hash/maphash"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/account"
	"github.com/bank/gobank/actors/store"
	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/wire"
)

// Limits of /commit and /idem.
const (
	MaxCommitAccounts = 16
	MaxKeyLength      = 128
	MaxFingerprint    = 512
	MaxRecordBody     = 4 << 10
)

// Records keeps idempotency records.
type Records interface {
	Record(key string) (store.Record, bool, error)
	Commit(writes []store.Write, rec *store.Record) error
}

// keyLocks serializes the check and the write of records with the same
// key, so that two requests racing with one key cannot both be applied.
type keyLocks struct {
	seed  maphash.Seed
	locks [256]sync.Mutex
}

func (k *keyLocks) lock(key string) *sync.Mutex {
	m := &k.locks[maphash.String(k.seed, key)%uint64(len(k.locks))]
	m.Lock()
	return m
}

// recordParams reads an idempotency record's key, fingerprint, status and
// body. It returns rec == nil when the request names no key, and a
// message when the parameters are unacceptable.
func recordParams(ctx *fasthttp.RequestCtx, needOutcome bool) (rec *store.Record, msg string) {
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
	rec = &store.Record{Key: string(key), At: time.Now()}
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
	rec.Fingerprint, rec.Status, rec.Body = string(fp), int(status), bytes.Clone(body)
	return rec, ""
}

// appendRecord encodes a kept record: what a repeated request must answer.
func appendRecord(buf []byte, r store.Record, replayed bool) []byte {
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
// record kept in the same batch. When the key already has a record, the
// commit is not applied and the record is answered instead.
func (s *Server) commit(ctx *fasthttp.RequestCtx) {
	const name = "commit"
	id, ok := s.callerID(ctx, true)
	if !ok || !s.authorized(ctx, id, name) {
		return
	}
	entry := s.cfg.Log.Entry(id, name)
	args := ctx.QueryArgs()
	var changes []actors.Change
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
			"commit needs 1 to 16 accounts, each with conta, valor and fence, in the same order")
		return
	}
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
		for _, c := range changes {
			if c.ID == conta {
				s.answer(ctx, entry, fasthttp.StatusBadRequest, teller.BadRequest, "an account appears twice in one commit")
				return
			}
		}
		entry.Int(conta).Int(valor)
		changes = append(changes, actors.Change{ID: conta, Fence: uint64(fence), Balance: valor})
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
	if rec != nil {
		if s.cfg.Records == nil {
			s.answer(ctx, entry, fasthttp.StatusServiceUnavailable, teller.Unavailable, "this data server keeps no idempotency records")
			return
		}
		defer s.keys.lock(rec.Key).Unlock()
		old, found, err := s.cfg.Records.Record(rec.Key)
		if err != nil {
			s.reject(ctx, entry, name, errors.Join(actors.ErrStore, err), "")
			return
		}
		if found {
			entry.Str("REPLAYED").Done()
			wire.WriteJSON(ctx, appendRecord(nil, old, true))
			return
		}
	}
	err := s.cfg.Accounts.Apply(s.spanContext(ctx), id, changes, unlock, rec)
	switch {
	case err == nil:
		entry.Done()
		wire.WriteJSON(ctx, emptyObject)
	case errors.Is(err, account.ErrLocked):
		// Under a fence, a lock held by another means the grant named
		// is gone.
		s.reject(ctx, entry, name, account.ErrStaleFence, "; nothing applied")
	default:
		s.reject(ctx, entry, name, err, "; nothing applied")
	}
}

// idem serves /idem: GET answers the record kept under key (or
// {"found":false}); POST keeps a record alone — for an outcome that
// changed no balance, such as a refusal — unless the key has one already,
// which it then answers.
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
	if s.cfg.Records == nil {
		s.answer(ctx, entry, fasthttp.StatusServiceUnavailable, teller.Unavailable, "this data server keeps no idempotency records")
		return
	}
	defer s.keys.lock(rec.Key).Unlock()
	old, found, err := s.cfg.Records.Record(rec.Key)
	if err == nil && !found && post {
		if err = s.cfg.Records.Commit(nil, rec); err == nil {
			entry.Str("STORED").Done()
			wire.WriteJSON(ctx, []byte(`{"found":false,"stored":true}`))
			return
		}
	}
	if err != nil {
		s.reject(ctx, entry, name, errors.Join(actors.ErrStore, err), "")
		return
	}
	if !found {
		entry.Str("NOT_FOUND").Done()
		wire.WriteJSON(ctx, []byte(`{"found":false}`))
		return
	}
	entry.Str("FOUND").Done()
	wire.WriteJSON(ctx, appendRecord(nil, old, false))
}
