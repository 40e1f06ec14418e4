package teller

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Batches of transfers, after TigerBeetle's create_transfers: up to
// MaxBatch transfers in one call, each applied in order with a result of
// its own, optionally linked into chains that succeed or fail together,
// and all of them orchestrated as one transaction: one Lock of the
// batch's accounts (sorted, each once) and one Commit. One hot account
// then costs one lock hand-off per batch, not per transfer.
const (
	// MaxBatch bounds the transfers of one batch (TigerBeetle's 8,190 per
	// request).
	MaxBatch = 8190
	// MaxAccounts bounds the accounts of one Lock or Commit: a batch's,
	// two per transfer. A Move takes at most MaxLegs.
	MaxAccounts = 2 * MaxBatch
)

// BatchTransfer is one transfer of a batch: Amount from account From to
// account To.
type BatchTransfer struct {
	From, To, Amount int64
	// Linked chains this transfer to the next one: a chain — a run of
	// linked transfers and the first unlinked one after it — is applied
	// whole or not at all. The last transfer of a batch must not be
	// linked (ErrLinkedOpen).
	Linked bool
}

// BatchResult is what one transfer of a batch came to.
type BatchResult struct {
	// Err is nil when the transfer was applied; otherwise it is the
	// refusal, and the transfer changed nothing: ErrInvalidAccount,
	// ErrInvalidValue, ErrSameAccount, ErrNotFound, ErrInsufficientFunds,
	// ErrOverflow, or, for the others of a chain that failed,
	// ErrLinkedFailed (ErrLinkedOpen for a batch's last transfer that is
	// linked to nothing).
	Err error
	// FromSaldo and ToSaldo are the balances of From and To right after
	// the transfer, in the batch's order, when it was applied.
	FromSaldo, ToSaldo int64
}

// Transfers applies batch (1 to MaxBatch transfers) as one transaction
// and fills results (as long as batch) with each transfer's outcome. The
// transfers are applied in order, each to the balances the ones before it
// left, and a refused one (see BatchResult) changes nothing: the batch
// goes on with the next. A chain of linked transfers is applied whole or
// refused whole.
//
// Every account the batch names is locked by one Lock, in ascending order
// (whatever the Teller's Order: the accounts of a batch have no order of
// their own), the new balances computed, and every locked account written
// by one Commit that releases the locks: the accounts apply the batch's
// balances all or none. An account the accounts do not know refuses the
// transfers that name it (ErrNotFound), not the batch.
//
// A nil error means every result is final. An error is the batch's:
// ErrBadRequest (no transfers, too many, results of another length), a
// lock not had in time (ErrLocked), accounts without atomic commits
// (ErrUnsupported), a failure that applied nothing, or one wrapping
// ErrOutcomeUnknown, after which the whole batch may or may not have been
// applied; results are then meaningless.
func (t *Teller) Transfers(ctx context.Context, batch []BatchTransfer, results []BatchResult) error {
	switch {
	case len(batch) == 0 || len(batch) > MaxBatch:
		return fmt.Errorf("teller: a batch of %d transfers: want 1 to %d: %w", len(batch), MaxBatch, ErrBadRequest)
	case len(results) != len(batch):
		return fmt.Errorf("teller: %d results for %d transfers: %w", len(results), len(batch), ErrBadRequest)
	}
	return t.transfers(ctx, batch, results, false)
}

// transfers is Transfers of a checked batch; oneSided lets a transfer lack
// a side (see newBatchRun).
func (t *Teller) transfers(ctx context.Context, batch []BatchTransfer, results []BatchResult, oneSided bool) error {
	b := newBatchRun(batch, oneSided)
	if len(b.ids) == 0 {
		b.fill(results) // every transfer refused by a rule that needs no balance
		return nil
	}
	return t.transact(ctx, func(tx txn) error { return t.attemptBatch(ctx, b, results, tx) })
}

// batchRun is one batch's state across the attempts of its transaction.
type batchRun struct {
	batch []BatchTransfer
	// pre holds each transfer's refusal by the rules that need no
	// balance (and, once the accounts have said so, ErrNotFound), with
	// the chains they break: what every attempt starts from.
	pre []error
	// ids are the accounts of the transfers not refused, ascending,
	// each once.
	ids []int64
}

// newBatchRun refuses what the rules refuse without a balance, chains
// included, and collects the accounts of the rest. With oneSided, a
// transfer's From or To may be 0, the side it lacks: a deposit to To, a
// withdrawal from From (a Teller's own coalesced operations; see
// Config.Coalesce).
func newBatchRun(batch []BatchTransfer, oneSided bool) *batchRun {
	b := &batchRun{batch: batch, pre: make([]error, len(batch))}
	for i, tr := range batch {
		switch {
		case tr.From < 0 || tr.To < 0 || (tr.From == 0 || tr.To == 0) && !oneSided || tr.From == 0 && tr.To == 0:
			b.pre[i] = ErrInvalidAccount
		case tr.Amount <= 0:
			b.pre[i] = ErrInvalidValue
		case tr.From == tr.To:
			b.pre[i] = ErrSameAccount
		}
	}
	if last := len(batch) - 1; batch[last].Linked {
		b.pre[last] = ErrLinkedOpen
	}
	b.breakChains()
	b.collect()
	return b
}

// breakChains refuses with ErrLinkedFailed every transfer of a chain in
// which another is refused.
func (b *batchRun) breakChains() {
	for start, end := range b.chains() {
		if slices.ContainsFunc(b.pre[start:end], func(err error) bool { return err != nil }) {
			for i := start; i < end; i++ {
				if b.pre[i] == nil {
					b.pre[i] = ErrLinkedFailed
				}
			}
		}
	}
}

// chains yields each chain of the batch as [start, end); an unlinked
// transfer is a chain of one.
func (b *batchRun) chains() func(yield func(int, int) bool) {
	return func(yield func(int, int) bool) {
		start := 0
		for i, tr := range b.batch {
			if !tr.Linked || i == len(b.batch)-1 {
				if !yield(start, i+1) {
					return
				}
				start = i + 1
			}
		}
	}
}

// collect sets ids to the accounts of the transfers not refused.
func (b *batchRun) collect() {
	ids := b.ids[:0]
	for i, tr := range b.batch {
		if b.pre[i] != nil {
			continue
		}
		if tr.From != 0 {
			ids = append(ids, tr.From)
		}
		if tr.To != 0 {
			ids = append(ids, tr.To)
		}
	}
	slices.Sort(ids)
	b.ids = slices.Compact(ids)
}

// missing refuses with ErrNotFound the transfers that name account id,
// which the accounts do not know, and their chains.
func (b *batchRun) missing(id int64) {
	for i, tr := range b.batch {
		if b.pre[i] == nil && (tr.From == id || tr.To == id) {
			b.pre[i] = ErrNotFound
		}
	}
	b.breakChains()
	b.collect()
}

// fill sets results to the refusals known before any balance.
func (b *batchRun) fill(results []BatchResult) {
	for i := range results {
		results[i] = BatchResult{Err: b.pre[i]}
	}
}

// attemptBatch makes one attempt of a batch's transaction tx.
func (t *Teller) attemptBatch(ctx context.Context, b *batchRun, results []BatchResult, tx txn) error {
	h, err := t.lockBatch(ctx, b, tx)
	if err != nil || h == nil {
		b.fill(results) // h == nil: every transfer refused, nothing locked
		return err
	}
	defer h.release()
	t.at("locked")

	// The balances of h's accounts (ascending, as b.ids) as the batch
	// goes on; each transfer finds its accounts by binary search.
	cur := make([]int64, h.n)
	for i, g := range h.grants {
		if !g.HasSaldo {
			// The original data server's grants are empty, and it has no
			// atomic commit either: a batch could not be applied whole.
			return fmt.Errorf("teller: batched transfers need accounts with atomic commits (this project's data server): %w", ErrUnsupported)
		}
		cur[i] = g.Saldo
	}
	b.fill(results)
	type undo struct {
		at  int
		old int64
	}
	var undos []undo // the current chain's writes, to take back if it fails
	for start, end := range b.chains() {
		undos = undos[:0]
		failed := -1
		if results[start].Err != nil {
			continue // refused before the lock, with the rest of its chain
		}
		for i := start; i < end; i++ {
			tr := b.batch[i]
			if err := b.apply(tr, h.ids, cur, &results[i], func(at int, old int64) { undos = append(undos, undo{at, old}) }); err != nil {
				results[i].Err, failed = err, i
				break
			}
		}
		if failed < 0 {
			continue
		}
		for _, u := range slices.Backward(undos) {
			cur[u.at] = u.old
		}
		for i := start; i < end; i++ {
			if i != failed {
				results[i] = BatchResult{Err: ErrLinkedFailed}
			}
		}
	}

	// Every locked account is written, changed or not: the one Commit
	// releases every lock.
	changes := make([]change, h.n)
	for i, id := range h.ids {
		changes[i] = change{conta: id, old: h.grants[i].Saldo, saldo: cur[i], fence: h.grants[i].Fence}
	}
	return t.write(ctx, h, changes, nil)
}

// apply applies tr to cur, the balances of ids, and sets r's balances;
// undo is told each balance it replaces. A refusal changes nothing.
func (b *batchRun) apply(tr BatchTransfer, ids, cur []int64, r *BatchResult, undo func(at int, old int64)) error {
	from, to := -1, -1
	var fromSaldo, toSaldo int64
	var err error
	if tr.From != 0 {
		from, _ = slices.BinarySearch(ids, tr.From)
		if fromSaldo, err = add(cur[from], -tr.Amount); err != nil {
			return err
		}
	}
	if tr.To != 0 {
		to, _ = slices.BinarySearch(ids, tr.To)
		if toSaldo, err = add(cur[to], tr.Amount); err != nil {
			return err
		}
	}
	if from >= 0 {
		undo(from, cur[from])
		cur[from], r.FromSaldo = fromSaldo, fromSaldo
	}
	if to >= 0 {
		undo(to, cur[to])
		cur[to], r.ToSaldo = toSaldo, toSaldo
	}
	return nil
}

// lockBatch locks the accounts of b's transfers still to run, for
// transaction tx. An account the accounts do not know refuses the
// transfers that name it and is left out; the rest are locked again. It
// returns a nil held, and no error, when no transfer is left to run.
func (t *Teller) lockBatch(ctx context.Context, b *batchRun, tx txn) (*held, error) {
	for len(b.ids) > 0 {
		// b.ids are ascending: acquire keeps them so under either Order.
		h, err := t.acquire(ctx, b.ids, tx)
		if err == nil {
			return h, nil
		}
		id, named := accountOf(err)
		if !errors.Is(err, ErrNotFound) || !named {
			return nil, err
		}
		if _, found := slices.BinarySearch(b.ids, id); !found {
			return nil, err // not an account of the batch: not ours to judge
		}
		b.missing(id)
	}
	return nil, nil
}

// accountOf returns the account a refusal from the accounts names (a
// Lock's ErrNotFound names the account that is missing), and whether it
// names one.
func accountOf(err error) (int64, bool) {
	var a interface{ Account() (int64, bool) }
	if !errors.As(err, &a) {
		return 0, false
	}
	return a.Account()
}

// Repeats reports whether any of the n accounts id(0..n-1) appears twice:
// by comparing pairs for an operation's few accounts (no allocation), by
// sorting a copy for a batch's many. The accounts check a Lock's and a
// Commit's with it.
func Repeats(n int, id func(int) int64) bool {
	if n <= MaxLegs {
		for i := range n {
			for j := range i {
				if id(i) == id(j) {
					return true
				}
			}
		}
		return false
	}
	sorted := make([]int64, n)
	for i := range sorted {
		sorted[i] = id(i)
	}
	slices.Sort(sorted)
	for i := 1; i < n; i++ {
		if sorted[i] == sorted[i-1] {
			return true
		}
	}
	return false
}
