// Package inprocess implements teller.Accounts over the account actors of
// this process: an actors.Bank (one actor per account) or a cluster.Bank
// (this member's view of a cluster's grains). A Go program runs a transfer
// through it with no socket at all, and the data server's /getLocks,
// /commit and /idem are a decode, a call of it and an encode.
//
// It makes the decisions those routes made: several locks taken in the
// order given, all or none, within one wait budget, re-entrant for their
// holder, the ones taken released under their fences on a refusal; commits
// through the bank's two-phase Apply, with the idempotency record in the
// same durable batch; the check and the write of records with one key
// serialized, so that two requests racing with one key are not both
// applied; a known key replayed, and kept records never overwritten.
//
//	accts, err := inprocess.New(inprocess.Config{Bank: bank, Records: st})
//	var a teller.Accounts = accts.For("host:5001", 10*time.Second)
package inprocess

import (
	"context"
	"errors"
	"hash/maphash"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/store"
	"github.com/bank/gobank/actors/teller"
)

// Bank is what Accounts needs of the account actors: actors.Bank and
// cluster.Bank both offer it. No call is made under a context that has
// ended; a bank that also has DoContext (actors.Bank) has its calls
// abandoned when their context ends while they wait (a queued lock).
type Bank interface {
	Do(id int64, req actors.Request) (actors.Reply, error)
	Apply(ctx context.Context, holder string, changes []actors.Change, unlock bool, rec *store.Record) error
}

// contexter is a Bank whose calls can be abandoned: actors.Bank.
type contexter interface {
	DoContext(ctx context.Context, id int64, req actors.Request) (actors.Reply, error)
}

// Records keeps idempotency records: store.Pebble, store.Postgres and
// store.Memory do.
type Records interface {
	Record(key string) (store.Record, bool, error)
	Commit(writes []store.Write, rec *store.Record) error
}

// Bounds of a Record (see teller.Record).
const (
	MaxKeyLength   = 128
	MaxFingerprint = 512
	MaxRecordBody  = 4 << 10
)

// Config says which accounts an Accounts serves.
type Config struct {
	// Bank holds the accounts. Required.
	Bank Bank
	// Records keeps the idempotency records. It must be the store Bank's
	// Apply commits to (actors.Config.Store, cluster.Config.Store), so
	// that a commit's record lands in the same durable batch as its
	// balances. Nil: no records; Commit with one, Outcome and Keep answer
	// teller.ErrUnsupported.
	Records Records
	// TracerProvider, when set, records a span per account call of Lock,
	// Unlock, Read and Do (account.lock, account.unlock, account.read,
	// account.write) as a child of the span in the call's context, if
	// that one is recording. Nil: no spans, at no cost. Apply's phases
	// are traced by the bank itself (actors.Config.TracerProvider).
	TracerProvider trace.TracerProvider
	// LockWait, when set, is told how long each lock of a Lock took from
	// its request to its grant (granted locks only).
	LockWait func(time.Duration)
}

// Accounts serves teller.Accounts for any number of holders over one bank.
// It is safe for concurrent use. Make it with New.
type Accounts struct {
	bank     Bank
	ctxDo    func(ctx context.Context, id int64, req actors.Request) (actors.Reply, error)
	records  Records
	tracer   trace.Tracer // nil: not traced
	lockWait func(time.Duration)
	keys     keyLocks
}

// New checks cfg and returns the Accounts it describes.
func New(cfg Config) (*Accounts, error) {
	if cfg.Bank == nil {
		return nil, errors.New("inprocess: no bank")
	}
	a := &Accounts{bank: cfg.Bank, records: cfg.Records, lockWait: cfg.LockWait, keys: keyLocks{seed: maphash.MakeSeed()}}
	a.ctxDo = func(_ context.Context, id int64, req actors.Request) (actors.Reply, error) {
		return cfg.Bank.Do(id, req)
	}
	if c, ok := cfg.Bank.(contexter); ok {
		a.ctxDo = c.DoContext
	}
	if cfg.TracerProvider != nil {
		a.tracer = cfg.TracerProvider.Tracer(tracerScope)
	}
	return a, nil
}

// For returns the accounts as holder sees them: its locks are taken for
// holder with a lease of lease (zero or negative: no lease), and its
// commits and unlocks are made on holder's behalf. It costs nothing: make
// one per request if the holder or lease vary.
func (a *Accounts) For(holder string, lease time.Duration) Holder {
	return Holder{a: a, holder: holder, lease: lease}
}

// Do is one call of account id's actor, as the bank's Do, in a span of
// ctx's when tracing is on. It never abandons the call when ctx ends. It
// is for callers that need an operation teller.Accounts does not offer
// (a renewal under a fence, an unfenced or overdrawing write): the data
// server's single-account routes.
func (a *Accounts) Do(ctx context.Context, id int64, req actors.Request) (actors.Reply, error) {
	if a.tracer == nil {
		return a.bank.Do(id, req)
	}
	return a.traced(ctx, id, req, false)
}

// do is Do not made when ctx has ended, and abandoned when ctx ends
// before the actor took it up (by banks that have DoContext).
func (a *Accounts) do(ctx context.Context, id int64, req actors.Request) (actors.Reply, error) {
	if err := ctx.Err(); err != nil {
		return actors.Reply{}, err
	}
	if a.tracer == nil {
		return a.ctxDo(ctx, id, req)
	}
	return a.traced(ctx, id, req, true)
}

// keyLocks serializes the check and the write of records with the same
// key, so that two requests racing with one key cannot both be applied.
// Keys share 256 mutexes by hash: a collision only serializes two keys.
type keyLocks struct {
	seed  maphash.Seed
	locks [256]sync.Mutex
}

func (k *keyLocks) lock(key string) *sync.Mutex {
	m := &k.locks[maphash.String(k.seed, key)%uint64(len(k.locks))]
	m.Lock()
	return m
}

// Holder is the accounts as one holder sees them (Accounts.For). It
// implements teller.Accounts; the zero value is not usable.
type Holder struct {
	a      *Accounts
	holder string
	lease  time.Duration
}

var _ teller.Accounts = Holder{}

// Lock implements teller.Accounts: the locks of ids, in the order given,
// all or none, under opt's scheme, timestamp and versions. opt.Wait
// bounds the whole call, not each lock: each waits for what is left of it
// (the last ones fail fast once it is spent). A lock
// the holder has already is granted again, its lease renewed, and on a
// refusal released with the others, as the holder's own unlock would. A
// grant carries the balance. A refusal names the account (Error.Conta).
// Callers that must not deadlock give the accounts in ascending order.
func (h Holder) Lock(ctx context.Context, ids []int64, opt teller.LockOptions, grants []teller.Grant) error {
	if err := checkIDs(ids); err != nil {
		return err
	}
	if len(grants) != len(ids) || (opt.Versions != nil && len(opt.Versions) != len(ids)) {
		return badRequest("inprocess: one grant (and version, if any) per account, please")
	}
	req := actors.Request{Op: actors.OpLock, Holder: h.holder, TTL: h.lease, Scheme: opt.Scheme, TS: opt.TS, Detect: opt.Detect,
		BeforeDurable: opt.BeforeDurable}
	var deadline time.Time
	if opt.Wait > 0 {
		deadline = time.Now().Add(opt.Wait)
	}
	for i, id := range ids {
		r := req
		if opt.Versions != nil {
			r.Version = opt.Versions[i]
		}
		if !deadline.IsZero() {
			r.Wait = max(time.Until(deadline), 0) // 0: fail fast once the wait is spent
		}
		var start time.Time
		if h.a.lockWait != nil {
			start = time.Now()
		}
		reply, err := h.a.do(ctx, id, r)
		if err != nil {
			h.release(ctx, ids[:i], grants[:i])
			return wrap(id, err, false)
		}
		if h.a.lockWait != nil {
			h.a.lockWait(time.Since(start))
		}
		grants[i] = teller.Grant{Fence: reply.Fence, Saldo: reply.Balance, HasSaldo: true}
	}
	return nil
}

// release unlocks what Lock took, latest first, under each grant's fence
// (a grant that ran out meanwhile is someone else's business now), even
// when ctx has ended: that may be why the lock was not taken.
func (h Holder) release(ctx context.Context, ids []int64, grants []teller.Grant) {
	for j := len(ids) - 1; j >= 0; j-- {
		_, _ = h.a.Do(ctx, ids[j], actors.Request{Op: actors.OpUnlock, Holder: h.holder, Fence: grants[j].Fence})
	}
}

// Unlock implements teller.Accounts. fence 0 releases whatever grant the
// holder has.
func (h Holder) Unlock(ctx context.Context, id int64, fence uint64) error {
	if _, err := h.a.do(ctx, id, actors.Request{Op: actors.OpUnlock, Holder: h.holder, Fence: fence}); err != nil {
		return wrap(id, err, false)
	}
	return nil
}

// Read implements teller.Accounts.
func (h Holder) Read(ctx context.Context, id int64) (int64, error) {
	b, _, err := h.ReadVersion(ctx, id)
	return b, err
}

// ReadVersion implements teller.VersionReader.
func (h Holder) ReadVersion(ctx context.Context, id int64) (int64, uint64, error) {
	r, err := h.a.do(ctx, id, actors.Request{Op: actors.OpRead})
	if err != nil {
		return 0, 0, wrap(id, err, false)
	}
	return r.Balance, r.Version, nil
}

// Commit implements teller.Accounts through the bank's two-phase Apply: it
// pins every change in its account, makes them durable in one batch with
// rec, then applies them (and releases the locks, with unlock). A change
// under a grant no longer in force (its lease ran out, another holder has
// the lock) is refused with teller.ErrStaleFence, and nothing is applied.
// rec is not retained.
func (h Holder) Commit(ctx context.Context, changes []teller.Change, unlock bool, rec *teller.Record) (*teller.Record, error) {
	if len(changes) == 0 || len(changes) > teller.MaxAccounts {
		return nil, badRequest("inprocess: a commit changes 1 to " + strconv.Itoa(teller.MaxAccounts) + " accounts")
	}
	var buf [teller.MaxLegs]actors.Change
	cs := buf[:0]
	if len(changes) > len(buf) {
		cs = make([]actors.Change, 0, len(changes))
	}
	for _, c := range changes {
		cs = append(cs, actors.Change{ID: c.Conta, Fence: c.Fence, Balance: c.Saldo})
	}
	if teller.Repeats(len(cs), func(i int) int64 { return cs[i].ID }) {
		return nil, badRequest("inprocess: an account appears twice in one commit")
	}
	var sr *store.Record
	if rec != nil {
		if h.a.records == nil {
			return nil, errNoRecords
		}
		if err := checkRecord(rec); err != nil {
			return nil, err
		}
		defer h.a.keys.lock(rec.Key).Unlock()
		if old, found, err := h.a.outcome(rec.Key); err != nil || found {
			return old, err
		}
		r := storeRecord(rec)
		sr = &r
	}
	err := h.a.bank.Apply(ctx, h.holder, cs, unlock, sr)
	switch {
	case err == nil:
		return nil, nil
	case rec != nil && errors.Is(err, store.ErrKeyTaken):
		// Another member kept a record under the key meanwhile (a shared
		// store): nothing was applied, and that record is the answer.
		return h.a.taken(rec.Key, err)
	}
	return nil, wrap(0, err, true)
}

// Outcome implements teller.Accounts.
func (h Holder) Outcome(_ context.Context, key string) (teller.Record, bool, error) {
	if h.a.records == nil {
		return teller.Record{}, false, errNoRecords
	}
	if len(key) == 0 || len(key) > MaxKeyLength {
		return teller.Record{}, false, badRequest("inprocess: a key has 1 to 128 bytes")
	}
	r, found, err := h.a.outcome(key)
	if r == nil {
		return teller.Record{}, false, err
	}
	return *r, found, err
}

// Keep implements teller.Accounts.
func (h Holder) Keep(_ context.Context, rec teller.Record) (*teller.Record, error) {
	if h.a.records == nil {
		return nil, errNoRecords
	}
	if err := checkRecord(&rec); err != nil {
		return nil, err
	}
	defer h.a.keys.lock(rec.Key).Unlock()
	if old, found, err := h.a.outcome(rec.Key); err != nil || found {
		return old, err
	}
	r := storeRecord(&rec)
	switch err := h.a.records.Commit(nil, &r); {
	case errors.Is(err, store.ErrKeyTaken):
		return h.a.taken(rec.Key, err)
	case err != nil:
		return nil, storeFailed(err)
	}
	return nil, nil
}

// outcome reads the record kept under key.
func (a *Accounts) outcome(key string) (*teller.Record, bool, error) {
	r, found, err := a.records.Record(key)
	if err != nil {
		return nil, false, storeFailed(err)
	}
	if !found {
		return nil, false, nil
	}
	return &teller.Record{Key: key, Fingerprint: r.Fingerprint, Status: r.Status, Body: r.Body}, true, nil
}

// taken answers a write refused because key has a record (written by
// another member of a shared store): that record, or the refusal should
// it be gone already.
func (a *Accounts) taken(key string, refusal error) (*teller.Record, error) {
	old, found, err := a.outcome(key)
	if err == nil && !found {
		err = storeFailed(refusal)
	}
	return old, err
}

func storeRecord(r *teller.Record) store.Record {
	return store.Record{Key: r.Key, Fingerprint: r.Fingerprint, Status: r.Status, Body: r.Body, At: time.Now()}
}

// checkIDs refuses a Lock of no accounts, too many, or one twice.
func checkIDs(ids []int64) error {
	if len(ids) == 0 || len(ids) > teller.MaxAccounts {
		return badRequest("inprocess: a lock takes 1 to " + strconv.Itoa(teller.MaxAccounts) + " accounts")
	}
	if teller.Repeats(len(ids), func(i int) int64 { return ids[i] }) {
		return badRequest("inprocess: an account appears twice in one lock")
	}
	return nil
}

// checkRecord refuses a record outside teller.Record's bounds.
func checkRecord(r *teller.Record) error {
	switch {
	case len(r.Key) == 0 || len(r.Key) > MaxKeyLength:
		return badRequest("inprocess: a key has 1 to 128 bytes")
	case len(r.Fingerprint) > MaxFingerprint:
		return badRequest("inprocess: a fingerprint has at most 512 bytes")
	case len(r.Body) > MaxRecordBody:
		return badRequest("inprocess: a record's body has at most 4 KiB")
	}
	return nil
}
