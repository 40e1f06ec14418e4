package dataserver

import (
	"errors"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/account"
	"github.com/bank/gobank/actors/store"
	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/oplog"
	"github.com/bank/gobank/http/wire"
)

// refusal is how the data server answers an error of the account layer.
type refusal struct {
	err    error
	status int
	code   teller.Code
	msg    string
	log    string // an error log line's message, "" for none
}

// refusals is the data server's one table from the errors of package
// actors (and its account rules), as Do returns them and package
// inprocess wraps them, to its answers: a domain refusal is 200
// with error_code, as the original's business servers expect; a request
// that could not be applied is 503 UNAVAILABLE. The business server's side
// of the same boundary is package business's dataCodes table. Anything
// else is answered 500 INTERNAL (internal).
var refusals = []refusal{
	{actors.ErrNotFound, fasthttp.StatusOK, teller.NotFound, "no such account", ""},
	{account.ErrLocked, fasthttp.StatusOK, teller.LockedAccount, "account locked by another id_negoc", ""},
	{account.ErrStaleFence, fasthttp.StatusOK, teller.StaleFence, "stale fence: the lock grant named is no longer in force", ""},
	{account.ErrBusy, fasthttp.StatusOK, teller.LockedAccount, "account busy: a commit is in progress", ""},
	{account.ErrNegativeBalance, fasthttp.StatusOK, teller.InvalidValue, "a balance cannot be negative", ""},
	{account.ErrDied, fasthttp.StatusOK, teller.Died, "wait-die: younger than the lock's holder; abort and retry", ""},
	{account.ErrDeadlock, fasthttp.StatusOK, teller.Deadlock, "deadlock: the youngest waiter of a cycle of waits; abort and retry", ""},
	{account.ErrChanged, fasthttp.StatusOK, teller.Changed, "the account was written since the version named", ""},
	{account.ErrWounded, fasthttp.StatusOK, teller.StaleFence, "wound-wait: an older transaction took a lock this one held; abort and retry", ""},
	{account.ErrNoTimestamp, fasthttp.StatusBadRequest, teller.BadRequest, "the lock scheme needs a transaction timestamp (ts)", ""},
	{actors.ErrNoFence, fasthttp.StatusBadRequest, teller.BadRequest, "a change needs the fence of the holder's grant", ""},
	// Before ErrStore, which it comes with: 504, never 503 (which says "not
	// applied"), so that the client reads the outcome as unknown.
	{store.ErrOutcomeUnknown, fasthttp.StatusGatewayTimeout, teller.Unavailable,
		"the store's answer was lost: the commit may or may not have been applied; the accounts stay locked until the store settles it",
		"store commit outcome unknown"},
	{actors.ErrStore, fasthttp.StatusServiceUnavailable, teller.Unavailable, "storage unavailable; not applied", "storage failed; write refused"},
	{actors.ErrTimeout, fasthttp.StatusServiceUnavailable, teller.Unavailable, "account busy or server stopping; not applied", ""},
	{actors.ErrClosed, fasthttp.StatusServiceUnavailable, teller.Unavailable, "account busy or server stopping; not applied", ""},
}

// internal answers an error refusals does not know: a bug.
var internal = refusal{nil, fasthttp.StatusInternalServerError, teller.Internal, "internal error", "account operation failed"}

// refusalOf returns the row of refusals that err matches, or internal.
func refusalOf(err error) refusal {
	for _, r := range refusals {
		if errors.Is(err, r.err) {
			return r
		}
	}
	return internal
}

// reject answers err, an error of the account layer on route, through
// refusals (see message).
func (s *Server) reject(ctx *fasthttp.RequestCtx, entry *oplog.Entry, route string, err error, detail string) {
	r := refusalOf(err)
	if r.log != "" {
		s.logger.Error(r.log, "route", route, "err", err)
	}
	s.answer(ctx, entry, r.status, r.code, r.message(detail))
}

// rejectAccount is reject of a refusal by account conta, which the
// answer names beside error_code: {"error_code":C,"error":M,"conta":N}.
func (s *Server) rejectAccount(ctx *fasthttp.RequestCtx, entry *oplog.Entry, route string, err error, conta int64, detail string) {
	r := refusalOf(err)
	if r.log != "" {
		s.logger.Error(r.log, "route", route, "err", err)
	}
	entry.Str(r.code.String()).Done()
	ctx.SetStatusCode(r.status)
	var a [256]byte
	buf := wire.AppendError(a[:0], r.code, r.message(detail))
	buf = append(buf[:len(buf)-1], `,"conta":`...)
	buf = strconv.AppendInt(buf, conta, 10)
	wire.WriteJSON(ctx, append(buf, '}'))
	wire.SetRefusal(ctx, r.code)
}

// message is r's message with detail (which account, what was not done)
// appended when r is a domain refusal; a failure's message says "not
// applied" already.
func (r refusal) message(detail string) string {
	if r.status != fasthttp.StatusOK {
		return r.msg
	}
	return r.msg + detail
}
