package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Errors of the PostgreSQL store beside ErrClosed. Any other error is a
// failure of the store (unreachable, timed out): a write that fails so may
// or may not have been applied, if the connection was lost while it
// committed; reclaiming the account reloads what is there.
// SupersededError is ErrSuperseded for one account, so that the writer
// knows which of its activations to retire.
type SupersededError struct{ ID int64 }

func (e *SupersededError) Error() string {
	return fmt.Sprintf("store: account %d: %v", e.ID, ErrSuperseded)
}

// Unwrap makes errors.Is(err, ErrSuperseded) hold.
func (e *SupersededError) Unwrap() error { return ErrSuperseded }

var (
	// ErrSuperseded refuses a conditional write because the account's
	// version moved on: another activation claimed the account (or wrote
	// it) since this one loaded it. Nothing of the commit was applied.
	ErrSuperseded = errors.New("account was claimed by another activation")
	// ErrKeyTaken refuses a commit whose record's key was written
	// concurrently (by another member): nothing of it was applied, and the
	// record kept under the key is the outcome to answer.
	ErrKeyTaken = errors.New("a record with this key was written concurrently; nothing applied")
	// ErrNegativeBalance refuses a write of a balance below zero; the
	// table's CHECK constraint refuses it too.
	ErrNegativeBalance = errors.New("balance would be negative")
)

// DefaultTimeout bounds each call of a Postgres store, its retries
// included, unless Postgres.Timeout says otherwise.
const DefaultTimeout = 5 * time.Second

// maxAttempts bounds the runs of a transaction that the database aborted
// for a serialization failure or a deadlock (the call's timeout bounds
// them too). Under SERIALIZABLE (CockroachDB's default) every writer of a
// contended row but one is aborted, so a handful of attempts is not
// enough when several activations race for one account; with the backoff
// below, twenty take up to about a second.
const maxAttempts = 20

// maxBackoff caps the random wait before a retry.
const maxBackoff = 100 * time.Millisecond

// The schema is plain SQL that PostgreSQL, CockroachDB and YugabyteDB all
// run. Versions and epochs are BIGINT holding a uint64 below 2^63. A
// record's time is Unix nanoseconds, as the pebble store keeps it, since
// TIMESTAMPTZ keeps microseconds only.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS accounts (
		id      BIGINT PRIMARY KEY,
		balance BIGINT NOT NULL CHECK (balance >= 0),
		version BIGINT NOT NULL,
		epoch   BIGINT NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS idempotency_records (
		key         TEXT PRIMARY KEY,
		fingerprint TEXT NOT NULL,
		status      INTEGER NOT NULL,
		body        BYTEA NOT NULL,
		at_ns       BIGINT NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS idempotency_records_at ON idempotency_records (at_ns)`,
}

const (
	// claimSQL creates the account at version 1 of epoch 1, or moves an
	// existing one to a new version and epoch: the writes of every earlier
	// activation, conditional on an older version, are refused from now
	// on, and this activation's fences (epoch<<32 + counter) are above
	// theirs.
	claimSQL = `INSERT INTO accounts (id, balance, version, epoch) VALUES ($1, $2, 1, 1)
		ON CONFLICT (id) DO UPDATE SET epoch = accounts.epoch + 1, version = accounts.version + 1
		RETURNING balance, version, epoch`
	versionedSQL = `UPDATE accounts SET balance = $2, version = version + 1 WHERE id = $1 AND version = $3`
	// upsertSQL is an unconditional write. It moves the version too, so
	// that an activation that loaded the account before it cannot write
	// over it.
	upsertSQL = `INSERT INTO accounts (id, balance, version, epoch) VALUES ($1, $2, 1, 0)
		ON CONFLICT (id) DO UPDATE SET balance = excluded.balance, version = accounts.version + 1`
	// recordSQL keeps the first record under a key: a second one is a
	// concurrent request of another member, refused as ErrKeyTaken.
	recordSQL = `INSERT INTO idempotency_records (key, fingerprint, status, body, at_ns) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (key) DO NOTHING`
	// expireSQL deletes in slices: CockroachDB bounds the size of a
	// transaction, and a short one holds its locks briefly.
	expireSQL = `DELETE FROM idempotency_records WHERE key IN
		(SELECT key FROM idempotency_records WHERE at_ns < $1 LIMIT 1000)`
)

// Claimed is an account as an activation claimed it.
type Claimed struct {
	Balance int64
	Version uint64 // the version the activation's writes are conditional on
	Epoch   uint64 // the activation's fence epoch: greater than any earlier activation's
}

// VersionedWrite is the new balance of one account, conditional on its
// version.
type VersionedWrite struct {
	ID      int64
	Balance int64
	Version uint64 // the version the writer loaded; the write makes it Version+1
}

// Postgres keeps the accounts and records in a PostgreSQL database (or a
// CockroachDB or YugabyteDB one) that every member of a data-server
// cluster reaches. Writes conditional on versions let the store, not the
// members, decide which of two activations of one account may write. It is
// safe for concurrent use.
type Postgres struct {
	// Timeout bounds each call, its retries included; DefaultTimeout
	// when zero. Set it before the store is used.
	Timeout time.Duration

	pool   *pgxpool.Pool
	host   string // host:port, for messages
	logger *slog.Logger

	mu     sync.RWMutex // guards closed against Close
	closed bool

	// beforeCommit, set by tests, runs on the connection of a commit
	// just before its COMMIT is sent.
	beforeCommit func(*pgx.Conn)
}

// DefaultMaxConns is the connections a Postgres keeps at most, unless its
// DSN sets pool_max_conns.
const DefaultMaxConns = 32

// OpenPostgres connects to the database of dsn (a postgres:// URL or
// keyword=value pairs; pool settings such as pool_max_conns are accepted),
// creates the tables if they are missing, and checks that the database
// answers.
func OpenPostgres(dsn string, logger *slog.Logger) (*Postgres, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// Not err's text: pgx redacts passwords from it on a best-effort
		// basis only.
		return nil, errors.New("store: the PostgreSQL DSN does not parse (not shown: it may hold a password); " +
			"expected postgres://user@host:port/database or host=... user=... dbname=...")
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		// pgx's default, max(4, cores), holds a member to four concurrent
		// transactions on a small machine: each waits for its commit's
		// fsync, so four connections were the limit of transfers (~2.9k/s
		// on 2 cores); more let PostgreSQL group the commits.
		cfg.MaxConns = DefaultMaxConns
	}
	p := &Postgres{
		host:   fmt.Sprintf("%s:%d", cfg.ConnConfig.Host, cfg.ConnConfig.Port),
		logger: logger,
	}
	ctx, cancel := p.context()
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: PostgreSQL at %s: %w", p.host, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: PostgreSQL at %s (database %s, user %s) is unreachable: %w",
			p.host, cfg.ConnConfig.Database, cfg.ConnConfig.User, err)
	}
	p.pool = pool
	if err := p.createSchema(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return p, nil
}

// createSchema runs the schema, again after a conflict: members starting
// together race to create the tables, and PostgreSQL's CREATE ... IF NOT
// EXISTS can then fail on its catalog, as a unique violation (23505), a
// duplicate table (42P07) or a duplicate type (42710, the table's row
// type); run again, it finds the object there.
func (p *Postgres) createSchema(ctx context.Context) error {
	for _, stmt := range schema {
		var err error
		for range maxAttempts {
			_, err = p.pool.Exec(ctx, stmt)
			if code := sqlState(err); code != "23505" && code != "42P07" && code != "42710" && !retryable(err) {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("store: creating the schema in PostgreSQL at %s: %w", p.host, err)
		}
	}
	return nil
}

func (p *Postgres) context() (context.Context, context.CancelFunc) {
	d := p.Timeout
	if d <= 0 {
		d = DefaultTimeout
	}
	return context.WithTimeout(context.Background(), d)
}

// begin takes the read lock that Close waits for, and the call's context.
func (p *Postgres) begin() (context.Context, func(), error) {
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return nil, nil, ErrClosed
	}
	ctx, cancel := p.context()
	return ctx, func() { cancel(); p.mu.RUnlock() }, nil
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// retryable reports a transaction the database aborted, applying nothing,
// and that may succeed when run again: a serialization failure (which
// CockroachDB reports for every conflict) or a deadlock.
func retryable(err error) bool {
	code := sqlState(err)
	return code == "40001" || code == "40P01"
}

// retry runs f until it returns an error that is not retryable, at most
// maxAttempts times or until ctx ends, after a random backoff that grows
// with each attempt (so that writers that conflicted do not collide again
// in step).
func (p *Postgres) retry(ctx context.Context, f func() error) error {
	for attempt := 1; ; attempt++ {
		err := f()
		if !retryable(err) || attempt == maxAttempts {
			return err
		}
		p.logger.Debug("transaction aborted by the database; retrying", "attempt", attempt, "err", err)
		backoff := time.Duration(rand.Int64N(int64(min(time.Millisecond<<min(attempt, 10), maxBackoff))))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// Claim loads account id for a new activation, creating it with balance
// initial if it does not exist, and moves it to a new version and epoch
// in the same statement, so that the writes of any earlier activation are
// refused from now on.
func (p *Postgres) Claim(id, initial int64) (Claimed, error) {
	if initial < 0 {
		return Claimed{}, fmt.Errorf("store: account %d: initial balance %d: %w", id, initial, ErrNegativeBalance)
	}
	ctx, done, err := p.begin()
	if err != nil {
		return Claimed{}, err
	}
	defer done()
	var c Claimed
	var version, epoch int64
	err = p.retry(ctx, func() error {
		return p.pool.QueryRow(ctx, claimSQL, id, initial).Scan(&c.Balance, &version, &epoch)
	})
	if err != nil {
		return Claimed{}, fmt.Errorf("store: claiming account %d: %w", id, err)
	}
	c.Version, c.Epoch = uint64(version), uint64(epoch)
	return c, nil
}

// CommitVersioned writes every balance of writes, each only if its
// account is still at the version given, and keeps rec (which may be nil)
// with them, all in one transaction: when it returns nil all are applied
// and durable; when it returns an error wrapping ErrSuperseded (naming the
// first account found moved on), ErrKeyTaken or ErrNegativeBalance, none
// is.
func (p *Postgres) CommitVersioned(writes []VersionedWrite, rec *Record) error {
	sorted := slices.Clone(writes)
	// In id order, so that two commits over the same accounts lock them in
	// the same order and cannot deadlock.
	slices.SortFunc(sorted, func(a, b VersionedWrite) int { return cmpInt64(a.ID, b.ID) })
	for i, w := range sorted {
		if w.Balance < 0 {
			return fmt.Errorf("store: account %d: balance %d: %w", w.ID, w.Balance, ErrNegativeBalance)
		}
		if i > 0 && sorted[i-1].ID == w.ID {
			return fmt.Errorf("store: account %d written twice in one commit", w.ID)
		}
	}
	return p.commit(len(sorted), func(b *pgx.Batch, i int) {
		w := sorted[i]
		b.Queue(versionedSQL, w.ID, w.Balance, int64(w.Version))
	}, func(i int) int64 { return sorted[i].ID }, rec, true)
}

// Commit writes writes unconditionally (creating the accounts that do not
// exist) and keeps rec (which may be nil) with them, in one transaction,
// as Pebble.Commit does; with writes nil it keeps a refusal's record. A
// record whose key is taken is refused with ErrKeyTaken, and nothing is
// applied.
func (p *Postgres) Commit(writes []Write, rec *Record) error {
	sorted := slices.Clone(writes)
	slices.SortFunc(sorted, func(a, b Write) int { return cmpInt64(a.ID, b.ID) })
	for _, w := range sorted {
		if w.Balance < 0 {
			return fmt.Errorf("store: account %d: balance %d: %w", w.ID, w.Balance, ErrNegativeBalance)
		}
	}
	return p.commit(len(sorted), func(b *pgx.Batch, i int) {
		b.Queue(upsertSQL, sorted[i].ID, sorted[i].Balance)
	}, func(i int) int64 { return sorted[i].ID }, rec, false)
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// commit runs n account writes (queued by queue) and rec's insertion as
// one transaction, retried while the database aborts it retryably.
// conditional says a write that changes no row is superseded.
func (p *Postgres) commit(n int, queue func(*pgx.Batch, int), idOf func(int) int64, rec *Record, conditional bool) error {
	if n == 0 && rec == nil {
		return nil
	}
	ctx, done, err := p.begin()
	if err != nil {
		return err
	}
	defer done()
	err = p.retry(ctx, func() error { return p.commitOnce(ctx, n, queue, idOf, rec, conditional) })
	if err != nil {
		if errors.Is(err, ErrSuperseded) || errors.Is(err, ErrKeyTaken) {
			return err
		}
		if sqlState(err) == "23514" { // check_violation: the balance CHECK
			return fmt.Errorf("store: %w: %v", ErrNegativeBalance, err)
		}
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// commitOnce sends BEGIN, the writes and the record in one batch (one
// round trip), then COMMIT or, if a write or the record is refused,
// ROLLBACK: two round trips in all.
func (p *Postgres) commitOnce(ctx context.Context, n int, queue func(*pgx.Batch, int), idOf func(int) int64, rec *Record, conditional bool) error {
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// A connection left inside a transaction (an error before COMMIT or
	// ROLLBACK went through) is closed by the pool on release rather than
	// reused.
	defer conn.Release()
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	for i := range n {
		queue(b, i)
	}
	if rec != nil {
		b.Queue(recordSQL, rec.Key, rec.Fingerprint, int32(rec.Status), nonNil(rec.Body), rec.At.UnixNano())
	}
	refused, err := sendBatch(ctx, conn.Conn(), b, n, idOf, rec, conditional)
	if err != nil {
		rollback(ctx, conn.Conn())
		return err
	}
	if refused != nil {
		if err := rollback(ctx, conn.Conn()); err != nil {
			// Still refused: the transaction was never committed, and the
			// pool drops the connection.
			p.logger.Warn("rollback failed", "err", err)
		}
		return refused
	}
	if p.beforeCommit != nil {
		p.beforeCommit(conn.Conn())
	}
	if _, err = conn.Exec(ctx, "COMMIT"); err != nil && commitUnknown(err) {
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	return err
}

// commitUnknown reports whether err, from a COMMIT, leaves the
// transaction's outcome unknown: the server answered nothing (a refusal,
// e.g. a serialization failure, is a *pgconn.PgError and aborted it), and
// the COMMIT may have been sent (pgconn.SafeToRetry says it surely was
// not).
func commitUnknown(err error) bool {
	var pe *pgconn.PgError
	return !errors.As(err, &pe) && !pgconn.SafeToRetry(err)
}

// sendBatch sends b (BEGIN, n writes, then rec's insertion if rec is not
// nil) and reads its results: refused is the first refusal (a conditional
// write that changed no row, or a record whose key is taken), err a
// failure.
func sendBatch(ctx context.Context, conn *pgx.Conn, b *pgx.Batch, n int, idOf func(int) int64, rec *Record, conditional bool) (refused, err error) {
	br := conn.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil { // BEGIN
		return nil, err
	}
	for i := range n {
		tag, err := br.Exec()
		if err != nil {
			return nil, err
		}
		if conditional && tag.RowsAffected() == 0 && refused == nil {
			refused = &SupersededError{ID: idOf(i)}
		}
	}
	if rec != nil {
		tag, err := br.Exec()
		if err != nil {
			return nil, err
		}
		if tag.RowsAffected() == 0 && refused == nil {
			refused = fmt.Errorf("store: record %q: %w", rec.Key, ErrKeyTaken)
		}
	}
	return refused, br.Close()
}

func rollback(ctx context.Context, conn *pgx.Conn) error {
	if conn.PgConn().TxStatus() == 'I' {
		return nil // no transaction open (BEGIN failed)
	}
	_, err := conn.Exec(ctx, "ROLLBACK")
	return err
}

// nonNil returns b, or an empty slice for nil, which pgx would send as
// NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Record returns the outcome kept under key, if any.
func (p *Postgres) Record(key string) (Record, bool, error) {
	ctx, done, err := p.begin()
	if err != nil {
		return Record{}, false, err
	}
	defer done()
	r := Record{Key: key}
	var status int32
	var at int64
	err = p.retry(ctx, func() error {
		return p.pool.QueryRow(ctx, `SELECT fingerprint, status, body, at_ns FROM idempotency_records WHERE key = $1`, key).
			Scan(&r.Fingerprint, &status, &r.Body, &at)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("store: reading record: %w", err)
	}
	r.Status, r.At = int(status), time.Unix(0, at)
	return r, true, nil
}

// Accounts returns every balance by account id.
func (p *Postgres) Accounts() (map[int64]int64, error) {
	ctx, done, err := p.begin()
	if err != nil {
		return nil, err
	}
	defer done()
	var out map[int64]int64
	err = p.retry(ctx, func() error {
		out = make(map[int64]int64)
		rows, err := p.pool.Query(ctx, `SELECT id, balance FROM accounts`)
		if err != nil {
			return err
		}
		var id, balance int64
		_, err = pgx.ForEachRow(rows, []any{&id, &balance}, func() error {
			out[id] = balance
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: reading accounts: %w", err)
	}
	return out, nil
}

// ExpireRecords deletes the records kept since before cutoff and returns
// how many it deleted.
func (p *Postgres) ExpireRecords(cutoff time.Time) (int, error) {
	ctx, done, err := p.begin()
	if err != nil {
		return 0, err
	}
	defer done()
	n := 0
	for {
		var tag pgconn.CommandTag
		err := p.retry(ctx, func() error {
			var err error
			tag, err = p.pool.Exec(ctx, expireSQL, cutoff.UnixNano())
			return err
		})
		if err != nil {
			return n, fmt.Errorf("store: expiring records: %w", err)
		}
		n += int(tag.RowsAffected())
		if tag.RowsAffected() == 0 {
			return n, nil
		}
	}
}

// Close closes the connections, after the calls in progress. It is safe
// to call more than once; later calls return nil, and every other method
// returns ErrClosed.
func (p *Postgres) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.pool.Close()
	return nil
}
