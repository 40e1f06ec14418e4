package teller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// LockMode says how an operation takes a lock that another holder has.
type LockMode string

// Lock modes.
const (
	// ModeWait queues on the accounts (FIFO) for up to LockWait; accounts
	// that fail fast instead (the original data server ignores the wait)
	// are retried as ModeRetry does. The default.
	//
	// Each operation is named by a timestamp, as a transactional mode's
	// are, when the accounts can tell one operation of this Teller from
	// another by it (this project's data server and in-process accounts):
	// then it takes no local lock, and this Teller's operations on one
	// account queue at the account behind each other's, so that early
	// lock release passes the lock from one to the next as soon as the
	// first's commit is ordered, not after its sync. Accounts that cannot
	// (the original data server) get the local locks.
	ModeWait LockMode = "wait"
	// ModeRetry sends fail-fast lock requests, retried with jittered
	// exponential backoff for up to LockWait.
	ModeRetry LockMode = "retry"
	// ModeFailFast is the original's: one attempt, ErrLocked at once when
	// an account is locked, by another holder or by another operation of
	// this Teller.
	ModeFailFast LockMode = "fail-fast"
)

// LockOrder says in which order an operation locks its accounts.
type LockOrder string

// Lock orders.
const (
	// OrderAscending locks the lowest account number first: two transfers
	// can never each hold the lock the other waits for. The default.
	OrderAscending LockOrder = "ascending"
	// OrderRequest locks in the order of the request (source, then
	// destination), as the original did: opposite transfers between the
	// same accounts can each hold one lock and wait for the other until
	// LockWait runs out (ErrLocked), which shows why the order matters.
	OrderRequest LockOrder = "request"
)

// Defaults of Config.
const (
	DefaultLockWait      = 2 * time.Second
	DefaultUnlockTimeout = 2 * time.Second
)

// Config configures a Teller.
type Config struct {
	// Accounts are the accounts the Teller moves money between, bound to
	// this Teller's lock holder. Required.
	Accounts Accounts
	// Holder names the lock holder in log lines (a business server's
	// id_negoc).
	Holder string
	// Mode says how a lock held by someone else is waited for. Zero means
	// ModeWait.
	Mode LockMode
	// Order says in which order an operation locks its accounts. Zero
	// means OrderAscending.
	Order LockOrder
	// LockWait bounds how long an operation waits for (ModeWait) or
	// retries (ModeRetry) all the locks it needs together, before it is
	// refused with ErrLocked. Zero means DefaultLockWait; ModeFailFast
	// ignores it.
	LockWait time.Duration
	// LockTTL is the lease the Accounts ask for, for log lines only (the
	// Accounts are bound to it when made).
	LockTTL time.Duration
	// UnlockTimeout bounds each attempt of an unlock or a write-back,
	// which run after the operation's own context may have ended. Zero
	// means DefaultUnlockTimeout.
	UnlockTimeout time.Duration
	// Logger receives what an operator must see (a lock that could not be
	// released, a balance to restore by hand); nil discards it.
	Logger *slog.Logger
	// At, when set, is called at named points of every operation that
	// writes (see Stages). For fault-injection tests only.
	At func(stage string)
	// Coalesce, above 1, runs up to that many deposits, withdrawals and
	// transfers that reach the Teller at the same time (without an
	// idempotency key) as one batch transaction, each with its own result
	// (see coalesce.go): one Lock and one Commit for all of them, which
	// on one hot account is one lock hand-off per batch instead of per
	// operation. A failure of the batch (a lock not had in time, an
	// outcome unknown) is each operation's. ModeWait only; 0 or 1: every
	// operation alone.
	Coalesce int
}

// Stages returns the names of the points at which Config.At is called,
// in order:
//
//   - "locked": every lock of the operation held, nothing read or written;
//   - "before-commit": the new balances computed, about to be written;
//   - "between-writes": only on accounts without Commit, a transfer's
//     source written and its destination not yet;
//   - "after-commit": the balances (and a keyed operation's outcome)
//     durable and the locks released, the answer not yet made.
func Stages() []string { return []string{"locked", "before-commit", "between-writes", "after-commit"} }

// Teller runs deposits, withdrawals, balances and transfers over its
// Accounts: each operation takes its accounts' locks (locally, then on the
// accounts, in the configured order), reads, checks, commits the new
// balances under the grants' fences and releases the locks on every path.
// It is safe for concurrent use. Make it with New.
type Teller struct {
	cfg    Config
	acc    Accounts
	writer Writer // nil: the accounts have no single writes
	locks  *localLocks
	logger *slog.Logger

	// noCommit is set once the accounts answered Commit with
	// ErrUnsupported (the original data server): balances are then
	// written one at a time (see writeLegacy).
	noCommit atomic.Bool
	// noLockMany is set once the accounts answered a Lock of several with
	// ErrUnsupported: locks are then taken one call at a time.
	noLockMany atomic.Bool
	// noTxn is set once the accounts refused a ModeWait operation's
	// timestamped Lock with ErrUnsupported (the original data server):
	// ModeWait then takes local locks and unnamed account locks.
	noTxn atomic.Bool

	clock clock // transaction timestamps
	stats stats
	coal  *coalescer // nil: every operation alone
}

// New checks cfg and returns the Teller it describes.
func New(cfg Config) (*Teller, error) {
	if cfg.Accounts == nil {
		return nil, errors.New("teller: no accounts")
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeWait
	}
	if !slices.Contains(Modes(), cfg.Mode) {
		return nil, fmt.Errorf("teller: lock mode %q: want one of %v", cfg.Mode, Modes())
	}
	switch cfg.Order {
	case "":
		cfg.Order = OrderAscending
	case OrderAscending, OrderRequest:
	default:
		return nil, fmt.Errorf("teller: lock order %q: want %q or %q", cfg.Order, OrderAscending, OrderRequest)
	}
	if cfg.LockWait < 0 {
		return nil, fmt.Errorf("teller: lock wait %v: must not be negative (use %q for no wait)", cfg.LockWait, ModeFailFast)
	}
	if cfg.LockWait == 0 {
		cfg.LockWait = DefaultLockWait
	}
	if cfg.UnlockTimeout <= 0 {
		cfg.UnlockTimeout = DefaultUnlockTimeout
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t := &Teller{cfg: cfg, acc: cfg.Accounts, locks: newLocalLocks(), logger: logger}
	t.writer, _ = cfg.Accounts.(Writer)
	switch {
	case cfg.Coalesce < 0 || cfg.Coalesce > MaxBatch:
		return nil, fmt.Errorf("teller: coalesce %d: want 0 to %d operations per batch", cfg.Coalesce, MaxBatch)
	case cfg.Coalesce > 1 && cfg.Mode != ModeWait:
		return nil, fmt.Errorf("teller: coalescing operations needs lock mode %q, not %q", ModeWait, cfg.Mode)
	case cfg.Coalesce > 1:
		t.coal = &coalescer{t: t, max: cfg.Coalesce}
	}
	return t, nil
}

// Kind names an operation.
type Kind uint8

// The operations.
const (
	Deposit Kind = iota + 1
	Withdraw
	Balance
	Transfer
)

// Op is one operation: A is its account (a transfer's source), B a
// transfer's destination, Amount the money moved (not for Balance).
type Op struct {
	Kind   Kind
	A, B   int64
	Amount int64
}

// Result is what an operation leaves: the balance of A, and of B for a
// transfer.
type Result struct{ A, B int64 }

// Run runs op. A refusal wraps one of the domain errors (ErrInvalidAccount,
// ErrInsufficientFunds, ErrLocked, ...) and changed nothing; an error
// wrapping ErrOutcomeUnknown may have been applied; any other error changed
// nothing or was rolled back.
func (t *Teller) Run(ctx context.Context, op Op) (Result, error) {
	if t.coal != nil && op.Kind != Balance && !t.noTxn.Load() {
		if err := op.check(); err != nil {
			return Result{}, err
		}
		return t.coal.run(ctx, op)
	}
	return t.run(ctx, op, nil)
}

// check refuses what run refuses of a deposit, withdrawal or transfer
// before it locks anything.
func (op Op) check() error {
	switch {
	case op.Kind != Deposit && op.Kind != Withdraw && op.Kind != Transfer:
		return fmt.Errorf("teller: operation kind %d: %w", op.Kind, ErrBadRequest)
	case op.A <= 0 || op.Kind == Transfer && op.B <= 0:
		return ErrInvalidAccount
	case op.Amount <= 0:
		return ErrInvalidValue
	case op.Kind == Transfer && op.A == op.B:
		return ErrSameAccount
	}
	return nil
}

func (t *Teller) run(ctx context.Context, op Op, k *keyed) (Result, error) {
	var legs [2]Leg
	var saldos [2]int64
	switch op.Kind {
	case Deposit, Withdraw:
		if op.A <= 0 {
			return Result{}, ErrInvalidAccount
		}
		if op.Amount <= 0 {
			return Result{}, ErrInvalidValue
		}
		legs[0] = Leg{Conta: op.A, Delta: op.Amount}
		if op.Kind == Withdraw {
			legs[0].Delta = -op.Amount
		}
		err := t.move(ctx, legs[:1], saldos[:1], k)
		return Result{A: saldos[0]}, err
	case Balance:
		if op.A <= 0 {
			return Result{}, ErrInvalidAccount
		}
		saldo, err := t.acc.Read(ctx, op.A)
		return Result{A: saldo}, err
	case Transfer:
		if op.A <= 0 || op.B <= 0 {
			return Result{}, ErrInvalidAccount
		}
		if op.Amount <= 0 {
			return Result{}, ErrInvalidValue
		}
		// The source first: the order of the writes on accounts without
		// Commit (see writeLegacy).
		legs = [2]Leg{{Conta: op.A, Delta: -op.Amount}, {Conta: op.B, Delta: op.Amount}}
		err := t.move(ctx, legs[:], saldos[:], k)
		return Result{A: saldos[0], B: saldos[1]}, err
	}
	return Result{}, fmt.Errorf("teller: operation kind %d: %w", op.Kind, ErrBadRequest)
}

// Leg is one account's part of a Move: Delta is added to Conta's balance.
type Leg struct {
	Conta int64
	Delta int64
}

// Move applies legs as one transaction: every account is locked (in
// Order, locally and then on the accounts) before any is read; every new
// balance is checked (none negative: ErrInsufficientFunds; none beyond
// int64: ErrOverflow) before anything is written; then all of them are
// written by one commit under their grants' fences, which also releases
// the locks: the accounts apply all of them or none. saldos (as long as
// legs) receives the new balances, in legs' order, once they are written.
//
// Legs name 1 to MaxLegs distinct accounts (ErrSameAccount for one named
// twice), each with a delta that is neither 0 nor math.MinInt64
// (ErrInvalidValue). A deposit is a Move of one leg, a transfer one of two
// whose deltas sum to zero; a Move whose deltas sum to zero conserves the
// total. Errors are Run's.
func (t *Teller) Move(ctx context.Context, legs []Leg, saldos []int64) error {
	switch {
	case len(legs) == 0 || len(legs) > MaxLegs:
		return fmt.Errorf("teller: a move of %d legs: want 1 to %d: %w", len(legs), MaxLegs, ErrBadRequest)
	case len(saldos) != len(legs):
		return fmt.Errorf("teller: %d balances for %d legs: %w", len(saldos), len(legs), ErrBadRequest)
	}
	return t.move(ctx, legs, saldos, nil)
}

func (t *Teller) move(ctx context.Context, legs []Leg, saldos []int64, k *keyed) error {
	for i, l := range legs {
		switch {
		case l.Conta <= 0:
			return ErrInvalidAccount
		case l.Delta == 0 || l.Delta == math.MinInt64:
			return ErrInvalidValue
		}
		for _, m := range legs[:i] {
			if m.Conta == l.Conta {
				return ErrSameAccount
			}
		}
	}
	return t.transact(ctx, func(tx txn) error { return t.attempt(ctx, legs, saldos, k, tx) })
}

// attempt makes one attempt of move's transaction tx.
func (t *Teller) attempt(ctx context.Context, legs []Leg, saldos []int64, k *keyed, tx txn) error {
	var ids [MaxLegs]int64
	for i, l := range legs {
		ids[i] = l.Conta
	}
	h, err := t.acquire(ctx, ids[:len(legs)], tx)
	if err != nil {
		return err
	}
	defer h.release()
	t.at("locked")

	var chs [MaxLegs]change
	for i, l := range legs {
		old, err := h.balance(ctx, l.Conta)
		if err != nil {
			return err
		}
		saldo, err := add(old, l.Delta)
		if err != nil {
			return err
		}
		chs[i] = change{conta: l.Conta, old: old, saldo: saldo, fence: h.fence(l.Conta)}
	}
	if k != nil {
		r := Result{A: chs[0].saldo}
		if len(legs) > 1 {
			r.B = chs[1].saldo
		}
		k.body = k.Success(r)
	}
	if err := t.write(ctx, h, chs[:len(legs)], k); err != nil {
		return err
	}
	for i := range legs {
		saldos[i] = chs[i].saldo
	}
	return nil
}

// change is one account's part of an operation's write.
type change struct {
	conta int64
	old   int64  // the balance under the lock, before the operation
	saldo int64  // the new balance
	fence uint64 // the grant held on conta (0: none)
}

// errReplayed stops an operation whose commit was answered with the record
// of its key: a duplicate of the operation was applied first. k.replay
// holds that record.
var errReplayed = errors.New("the idempotency key has a record already")

// write makes the new balances of changes durable and releases h's locks;
// the accounts are all locked by h.
//
// That is one Commit naming every account with its grant's fence, with
// unlock set, and, for a keyed operation, the success outcome k.body kept
// in the same durable batch: the accounts apply all the balances (and the
// record) or none, whenever this process dies. A commit refused or failed
// for sure (notApplied) changed nothing; one whose answer was lost may or
// may not have been applied, which ErrOutcomeUnknown reports: the locks are
// released by the caller's release all the same (an unlock refused as
// STALE_FENCE then means the commit released them). A keyed operation's
// retry finds out which from its record.
//
// Accounts that answer Commit with ErrUnsupported (the original data
// server) get writeLegacy instead, and so does a grant without a fence
// (the original's): both only for operations without a key, since such
// accounts keep no idempotency records either.
func (t *Teller) write(ctx context.Context, h *held, changes []change, k *keyed) error {
	fenced := true
	for _, c := range changes {
		fenced = fenced && c.fence != 0
	}
	if !fenced || t.noCommit.Load() {
		if k != nil {
			return ErrNoRecords
		}
		return t.writeLegacy(ctx, h, changes)
	}
	cs := make([]Change, len(changes)) // it escapes through Commit: as large as needed
	for i, c := range changes {
		cs[i] = Change{Conta: c.conta, Saldo: c.saldo, Fence: c.fence}
	}
	var rec *Record
	if k != nil {
		rec = &Record{Key: k.Key, Fingerprint: k.Fingerprint, Status: k.SuccessStatus, Body: k.body}
	}
	t.at("before-commit")
	replay, err := t.acc.Commit(ctx, cs, true, rec)
	switch {
	case err == nil && replay != nil:
		// Nothing applied, and the locks are still ours: release unlocks.
		k.replay = replay
		return errReplayed
	case err == nil:
		h.released() // the commit released them
		t.at("after-commit")
		return nil
	case errors.Is(err, ErrUnsupported):
		if t.noCommit.CompareAndSwap(false, true) {
			t.logger.Warn("the accounts have no atomic commit (the original data server, or an older version): "+
				"writing one balance at a time, which is not atomic, and refusing idempotency keys", "id_negoc", t.cfg.Holder)
		}
		if k != nil {
			return ErrNoRecords
		}
		return t.writeLegacy(ctx, h, changes)
	case t.cfg.Mode == ModeWoundWait && errors.Is(err, ErrStaleFence):
		// Wounded: an older transaction has the grant, which release
		// finds gone, as after a commit.
		h.maybeReleased()
		return err
	case notApplied(err):
		return err
	}
	h.maybeReleased()
	if code, ok := CodeOf(err); ok && code == Internal {
		return err // a bug (an answer outside the contract), whose outcome is unknown as well
	}
	return &OutcomeUnknownError{Err: err}
}

// writeLegacy writes the balances one at a time, in order, each under its
// grant's fence (none on the original data server), for accounts without
// Commit. A write whose outcome is unknown, or that a later failure makes
// moot (the source of a transfer whose destination could not be written),
// is undone by writing the old balance back; a write-back that fails is
// logged with the balance to restore. One failure cannot be undone: when
// the leases run out between the two writes of a transfer, the source's
// write-back is refused as stale like the destination's write, and the
// debit stays. The caller releases the locks.
func (t *Teller) writeLegacy(ctx context.Context, h *held, changes []change) error {
	if t.writer == nil {
		return ErrUnsupported
	}
	if len(changes) > MaxLegs {
		// A batch: its transfers apply all or none only through Commit.
		return fmt.Errorf("teller: batched transfers need accounts with atomic commits (this project's data server): %w", ErrUnsupported)
	}
	// Which accounts may hold a new balance that must be undone if the
	// operation does not complete (error or panic).
	var dirty [MaxLegs]bool
	defer func() {
		for i := len(changes) - 1; i >= 0; i-- {
			if dirty[i] {
				t.writeBack(h.ctx, changes[i].conta, changes[i].old, changes[i].fence)
			}
		}
	}()
	t.at("before-commit")
	for i, c := range changes {
		if i > 0 {
			t.at("between-writes")
		}
		dirty[i] = true
		if err := t.writer.Write(ctx, c.conta, c.saldo, c.fence); err != nil {
			dirty[i] = !notApplied(err)
			return err
		}
	}
	dirty = [MaxLegs]bool{}
	t.at("after-commit")
	return nil
}

// writeBack sets account id back to balance, under grant fence, after a
// failed or abandoned write by writeLegacy, with fresh timeouts and a few
// retries. Absolute writes make this safe whether or not the failed write
// was applied, and the fence makes the accounts refuse it if the lock was
// lost meanwhile (someone else may have written since). It reports whether
// the account is known to hold balance.
func (t *Teller) writeBack(op context.Context, id, balance int64, fence uint64) bool {
	var err error
	for attempt := range unlockAttempts {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt*attempt) * 10 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(op), t.cfg.UnlockTimeout)
		err = t.writer.Write(ctx, id, balance, fence)
		cancel()
		if err == nil {
			return true
		}
		if refused(err) {
			break
		}
	}
	t.logger.Error("could not restore a balance: set it by hand",
		"conta", id, "saldo", balance, "id_negoc", t.cfg.Holder, "err", err)
	return false
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
func (t *Teller) at(stage string) {
	if t.cfg.At != nil {
		t.cfg.At(stage)
	}
}

// refused reports whether err, from the accounts, is a refusal they
// decided (a domain error other than ErrUnavailable and ErrInternal):
// trying the same call again is refused again.
func refused(err error) bool {
	code, ok := CodeOf(err)
	return ok && code != Unavailable && code != Internal
}

// notApplied reports whether err, from the accounts, surely means the
// call applied nothing: a refusal, or an error wrapping ErrNotApplied or
// ErrUnsupported. Any other failure (in transit, a lost answer) leaves its
// outcome unknown.
func notApplied(err error) bool {
	return refused(err) || errors.Is(err, ErrNotApplied) || errors.Is(err, ErrUnsupported)
}
