package business

import (
	"context"
	"math"
)

// Deposit adds valor to account conta and returns the new balance.
func (s *Server) Deposit(ctx context.Context, conta, valor int64) (int64, error) {
	if conta <= 0 {
		return 0, ErrInvalidAccount
	}
	if valor <= 0 {
		return 0, ErrInvalidValue
	}
	return s.adjust(ctx, conta, valor)
}

// Withdraw takes valor from account conta and returns the new balance. It
// fails with ErrInsufficientFunds, changing nothing, when the balance is
// smaller than valor.
func (s *Server) Withdraw(ctx context.Context, conta, valor int64) (int64, error) {
	if conta <= 0 {
		return 0, ErrInvalidAccount
	}
	if valor <= 0 {
		return 0, ErrInvalidValue
	}
	return s.adjust(ctx, conta, -valor)
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
// lock, read (the grant carries the balance on our data server), check,
// write under the grant's fence, unlock.
func (s *Server) adjust(ctx context.Context, conta, delta int64) (saldo int64, err error) {
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
	fence := h.fence(conta)
	saldo, err = add(old, delta)
	if err != nil {
		return 0, err
	}
	// Until the write is known to be applied, a failure (or a panic) sets
	// the balance back: a write lost in transit may still have landed.
	done := false
	defer func() {
		if !done {
			s.writeBack(conta, old, fence)
		}
	}()
	if err := s.data.Write(ctx, conta, saldo, fence); err != nil {
		done = isDefinite(err) // refused: surely not applied
		return 0, err
	}
	s.at("written")
	done = true
	return saldo, nil
}

// Transfer moves valor from account orig to account dest and returns both
// new balances. Both accounts are locked (lowest number first, unless
// LockOrder is OrderRequest) before either is read; funds and overflow are
// checked before anything is written; the source is written first, each
// write under its grant's fence. If the destination cannot be written, the
// source is set back, so that no money is created or destroyed; a rollback
// that fails is logged with the balances to restore. One failure cannot be
// rolled back: when both leases run out between the two writes (the
// server paused longer than LockTTL there), the source's write-back is
// refused as stale like the destination's write, and the debit stays:
// only a data server that applies both writes at once could prevent it.
func (s *Server) Transfer(ctx context.Context, orig, dest, valor int64) (saldoOrig, saldoDest int64, err error) {
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
	fenceOrig, fenceDest := h.fence(orig), h.fence(dest)
	if saldoOrig, err = add(oldOrig, -valor); err != nil {
		return 0, 0, err
	}
	if saldoDest, err = add(oldDest, valor); err != nil {
		return 0, 0, err
	}

	// Which accounts may hold a new balance that must be undone if the
	// transfer does not complete (error or panic).
	var dirtyOrig, dirtyDest bool
	defer func() {
		if dirtyDest {
			s.writeBack(dest, oldDest, fenceDest)
		}
		if dirtyOrig {
			s.writeBack(orig, oldOrig, fenceOrig)
		}
	}()

	dirtyOrig = true
	if err := s.data.Write(ctx, orig, saldoOrig, fenceOrig); err != nil {
		dirtyOrig = !isDefinite(err)
		return 0, 0, err
	}
	s.at("between-writes")
	dirtyDest = true
	if err := s.data.Write(ctx, dest, saldoDest, fenceDest); err != nil {
		dirtyDest = !isDefinite(err)
		return 0, 0, err
	}
	s.at("written")
	dirtyOrig, dirtyDest = false, false
	return saldoOrig, saldoDest, nil
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
