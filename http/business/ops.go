package business

import (
	"context"
	"errors"
	"math"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/dataclient"
)

// Deposit adds valor to account conta and returns the new balance.
func (s *Server) Deposit(ctx context.Context, conta, valor int64) (int64, error) {
	return s.deposit(ctx, conta, valor, nil)
}

func (s *Server) deposit(ctx context.Context, conta, valor int64, k *keyed) (int64, error) {
	if conta <= 0 {
		return 0, ErrInvalidAccount
	}
	if valor <= 0 {
		return 0, ErrInvalidValue
	}
	return s.adjust(ctx, conta, valor, k)
}

// Withdraw takes valor from account conta and returns the new balance. It
// fails with ErrInsufficientFunds, changing nothing, when the balance is
// smaller than valor.
func (s *Server) Withdraw(ctx context.Context, conta, valor int64) (int64, error) {
	return s.withdraw(ctx, conta, valor, nil)
}

func (s *Server) withdraw(ctx context.Context, conta, valor int64, k *keyed) (int64, error) {
	if conta <= 0 {
		return 0, ErrInvalidAccount
	}
	if valor <= 0 {
		return 0, ErrInvalidValue
	}
	return s.adjust(ctx, conta, -valor, k)
}

// Balance returns the balance of account conta. It takes no lock: the data
// server serves reads while an account is locked.
func (s *Server) Balance(ctx context.Context, conta int64) (int64, error) {
	if conta <= 0 {
		return 0, ErrInvalidAccount
	}
	return s.data.Read(ctx, conta)
}

// adjust adds delta (never math.MinInt64) to one account under its lock:
// lock (the grant carries the balance on our data server), check, then one
// /commit that writes the balance under the grant's fence and releases the
// lock (see write).
func (s *Server) adjust(ctx context.Context, conta, delta int64, k *keyed) (saldo int64, err error) {
	h, err := s.acquire(ctx, conta)
	if err != nil {
		return 0, err
	}
	defer h.release()
	s.at("locked")

	old, err := h.balance(ctx, conta)
	if err != nil {
		return 0, err
	}
	if saldo, err = add(old, delta); err != nil {
		return 0, err
	}
	if k != nil {
		k.body = k.success(saldo, 0)
	}
	err = s.write(ctx, h, []change{{conta: conta, old: old, saldo: saldo}}, k)
	if err != nil {
		return 0, err
	}
	return saldo, nil
}

// Transfer moves valor from account orig to account dest and returns both
// new balances. Both accounts are locked (lowest number first, unless
// LockOrder is OrderRequest) before either is read; funds and overflow are
// checked before anything is written; then both balances are written by
// one /commit under both grants' fences, which also releases both locks:
// the data server applies both or neither, whenever this server dies.
func (s *Server) Transfer(ctx context.Context, orig, dest, valor int64) (saldoOrig, saldoDest int64, err error) {
	return s.transfer(ctx, orig, dest, valor, nil)
}

func (s *Server) transfer(ctx context.Context, orig, dest, valor int64, k *keyed) (saldoOrig, saldoDest int64, err error) {
	if orig <= 0 || dest <= 0 {
		return 0, 0, ErrInvalidAccount
	}
	if valor <= 0 {
		return 0, 0, ErrInvalidValue
	}
	if orig == dest {
		return 0, 0, ErrSameAccount
	}
	h, err := s.acquire(ctx, orig, dest)
	if err != nil {
		return 0, 0, err
	}
	defer h.release()
	s.at("locked")

	oldOrig, err := h.balance(ctx, orig)
	if err != nil {
		return 0, 0, err
	}
	oldDest, err := h.balance(ctx, dest)
	if err != nil {
		return 0, 0, err
	}
	if saldoOrig, err = add(oldOrig, -valor); err != nil {
		return 0, 0, err
	}
	if saldoDest, err = add(oldDest, valor); err != nil {
		return 0, 0, err
	}
	if k != nil {
		k.body = k.success(saldoOrig, saldoDest)
	}
	// The source first: the order of the writes on a data server without
	// /commit (see writeLegacy).
	err = s.write(ctx, h, []change{
		{conta: orig, old: oldOrig, saldo: saldoOrig},
		{conta: dest, old: oldDest, saldo: saldoDest},
	}, k)
	if err != nil {
		return 0, 0, err
	}
	return saldoOrig, saldoDest, nil
}

// change is one account's part of an operation's write.
type change struct {
	conta int64
	old   int64 // the balance under the lock, before the operation
	saldo int64 // the new balance
}

// errReplayed stops an operation whose /commit was answered with the
// record of its key: a duplicate of the request was applied first.
// k.replay holds that record.
var errReplayed = errors.New("the idempotency key has a record already")

// write makes the new balances of changes durable and releases h's locks
// on the data server; the accounts are all locked by h.
//
// On our data server that is one /commit naming every account with its
// grant's fence, with unlock=1, and, for a keyed request, the success
// outcome k.body kept in the same durable batch: the data server applies
// all the balances (and the record) or none, whenever this server dies. A
// commit refused or failed for sure (NotApplied) changed nothing; one whose
// answer was lost (timeout, broken connection, 5xx other than 503
// UNAVAILABLE) may or may not have been applied, which ErrOutcomeUnknown
// reports: the locks are released by the caller's release all the same
// (an unlock refused as STALE_FENCE then means the commit released them).
// A keyed request's retry finds out which from its record.
//
// A data server that answers /commit with 404 (the original, or ours before
// /commit) gets writeLegacy instead, and so does a grant without a fence
// (the original's): both only for requests without a key, since such a
// data server keeps no idempotency records either.
func (s *Server) write(ctx context.Context, h *held, changes []change, k *keyed) error {
	fenced := true
	for _, c := range changes {
		fenced = fenced && h.fence(c.conta) != 0
	}
	if !fenced || s.noCommit.Load() {
		if k != nil {
			return errNoRecords
		}
		return s.writeLegacy(ctx, h, changes)
	}
	var cs [2]teller.Change
	for i, c := range changes {
		cs[i] = teller.Change{Conta: c.conta, Saldo: c.saldo, Fence: h.fence(c.conta)}
	}
	var rec *teller.Record
	if k != nil {
		rec = &teller.Record{Key: k.key, Fingerprint: k.fingerprint, Status: 200, Body: k.body}
	}
	s.at("before-commit")
	replay, err := s.data.Commit(ctx, cs[:len(changes)], true, rec)
	switch {
	case err == nil && replay != nil:
		// Nothing applied, and the locks are still ours: release unlocks.
		k.replay = replay
		return errReplayed
	case err == nil:
		h.released() // the commit released them
		s.at("after-commit")
		return nil
	case errors.Is(err, ErrUnsupported):
		if s.noCommit.CompareAndSwap(false, true) {
			s.logger.Warn("the data server has no /commit (it is the original, or an older version): "+
				"writing with setSaldo, which is not atomic, and refusing Idempotency-Key", "id_negoc", s.cfg.ID)
		}
		if k != nil {
			return errNoRecords
		}
		return s.writeLegacy(ctx, h, changes)
	case dataclient.NotApplied(err):
		return err
	}
	h.maybeReleased()
	if de := (*dataclient.DataError)(nil); errors.As(err, &de) && de.Kind == nil {
		return err // an error_code we do not know: a bug (500), whose outcome is unknown as well
	}
	return &outcomeUnknown{err: err}
}

// writeLegacy writes the balances one setSaldo at a time, in order, each
// under its grant's fence (none on the original data server), for a data
// server without /commit. A write whose outcome is unknown, or that a
// later failure makes moot (the source of a transfer whose destination
// could not be written), is undone by writing the old balance back; a
// write-back that fails is logged with the balance to restore. One failure
// cannot be undone: when the leases run out between the two writes of a
// transfer, the source's write-back is refused as stale like the
// destination's write, and the debit stays. The caller releases the locks.
func (s *Server) writeLegacy(ctx context.Context, h *held, changes []change) error {
	// Which accounts may hold a new balance that must be undone if the
	// operation does not complete (error or panic).
	var dirty [2]bool
	defer func() {
		for i := len(changes) - 1; i >= 0; i-- {
			if dirty[i] {
				s.writeBack(changes[i].conta, changes[i].old, h.fence(changes[i].conta))
			}
		}
	}()
	s.at("before-commit")
	for i, c := range changes {
		if i > 0 {
			s.at("between-writes")
		}
		dirty[i] = true
		if err := s.data.Write(ctx, c.conta, c.saldo, h.fence(c.conta)); err != nil {
			dirty[i] = !isDefinite(err) // refused: surely not applied
			return err
		}
	}
	dirty = [2]bool{}
	s.at("after-commit")
	return nil
}

// add returns balance+delta, refusing a negative result with
// ErrInsufficientFunds and one beyond int64 with ErrOverflow.
func add(balance, delta int64) (int64, error) {
	if delta > 0 && balance > math.MaxInt64-delta {
		return 0, ErrOverflow
	}
	if delta < 0 && balance < math.MinInt64-delta {
		return 0, ErrInsufficientFunds
	}
	r := balance + delta
	if r < 0 {
		return 0, ErrInsufficientFunds
	}
	return r, nil
}

// at runs the test hook, if any, at a named point of an operation.
func (s *Server) at(stage string) {
	if h := s.hook.Load(); h != nil {
		(*h)(stage)
	}
}
