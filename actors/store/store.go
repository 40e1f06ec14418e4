// Package store keeps the bank's accounts durably in an embedded pebble
// database, and the outcomes of idempotent requests beside them, so that a
// transfer's balances and its outcome become durable in one atomic batch.
//
// Pebble rather than bbolt: measured on a 2-core machine with one fsync at
// ~0.75 ms, pebble's write-ahead log commits concurrent synced batches
// together (~95k durable writes/s with 64 writers against ~5.4k/s for
// bbolt's Batch); see BenchmarkStore in package benchmarks.
package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Errors of the store.
var (
	// ErrClosed refuses an operation on a closed store.
	ErrClosed = errors.New("store is closed")
	// ErrCorrupt reports a value that does not decode.
	ErrCorrupt = errors.New("store holds a value it cannot decode")
	// ErrNoSpace refuses a write while the disk's free space is below the
	// store's reserve: pebble treats a write that fails for lack of space as
	// fatal, and cannot even reopen a database on a full disk, so writes
	// stop while there is still room for its own flushes — and while one of
	// those fails for lack of space, until one succeeds again.
	ErrNoSpace = errors.New("disk almost full: writes refused")
	// ErrOutcomeUnknown reports a commit whose answer was lost on its way
	// back from a store over the network (the connection broke or timed
	// out after COMMIT was sent): it may or may not be durable. Only the
	// PostgreSQL store returns it; the state in the store settles it.
	ErrOutcomeUnknown = errors.New("the store's answer was lost: the commit may or may not be durable")
)

// MaxReserve bounds the free space a store keeps in reserve; on a small
// file system the reserve is an eighth of it.
const MaxReserve = 64 << 20

// Write is the new balance of one account.
type Write struct {
	ID      int64
	Balance int64
}

// Record is the outcome of an idempotent request, kept under its key.
type Record struct {
	Key string
	// Fingerprint identifies the request (route and parameters), so that a
	// key reused for another request is refused.
	Fingerprint string
	Status      int
	Body        []byte
	At          time.Time
}

// Keys: "a" + 8-byte big-endian account id -> 8-byte balance;
// "e" -> 8-byte epoch; "i" + key -> record; "t" + 8-byte time + key -> nil
// (the records in the order they expire).
var (
	epochKey  = []byte("e")
	acctLow   = []byte("a")
	acctHigh  = []byte("b")
	recPrefix = byte('i')
	ttlLow    = []byte("t")
	ttlHigh   = []byte("u")
)

// Pebble is a Store in a pebble database. It is safe for concurrent use;
// concurrent commits share fsyncs.
type Pebble struct {
	db       *pebble.DB
	dir      string
	reserve  uint64
	lowSpace atomic.Bool // last measurement, to log changes once
	logger   *slog.Logger
	backoff  *backoff          // paces writes that fail for lack of space
	bg       *backgroundErrors // pebble's background errors

	mu     sync.RWMutex // guards closed against Close
	closed bool
	// syncs counts the ordered commits whose sync is still awaited: Close
	// waits for them, since a batch must outlive its SyncWait.
	syncs sync.WaitGroup
	// ordered is set once a commit was made visible before it was
	// durable (CommitOrdered): from then on a record found must be
	// synced before it is answered.
	ordered atomic.Bool
}

// PebbleOption configures OpenPebble.
type PebbleOption func(*Pebble)

// CountBackgroundErrors counts every background error of the database
// (a failed flush or compaction, which pebble retries) with c too.
func CountBackgroundErrors(c Incrementer) PebbleOption {
	return func(p *Pebble) { p.bg.counter = c }
}

// OpenPebble opens (creating it if needed) the database in dir.
func OpenPebble(dir string, logger *slog.Logger, opts ...PebbleOption) (*Pebble, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// Fail before pebble does, with a message that names the problem: pebble
	// reports a read-only directory deep inside its recovery.
	probe, err := os.CreateTemp(dir, ".writable-*")
	if err != nil {
		return nil, fmt.Errorf("store: directory %s is not writable: %w", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	p := &Pebble{dir: dir, logger: logger, backoff: newBackoff(), bg: &backgroundErrors{logger: logger}}
	for _, o := range opts {
		o(p)
	}
	if free, total, ok := diskSpace(dir); ok {
		p.reserve = min(MaxReserve, total/8)
		if free < p.reserve {
			return nil, fmt.Errorf("store: %s has %d KiB free, below the %d KiB this store keeps in reserve: free some space",
				dir, free>>10, p.reserve>>10)
		}
	}
	db, err := pebble.Open(dir, &pebble.Options{
		Logger:        pebbleLogger{logger},
		FS:            backoffFS{FS: vfs.Default, b: p.backoff},
		EventListener: p.bg.listener(),
	})
	if err != nil {
		p.backoff.close()
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("store: %s is in use by another process (its lock is held): %w", dir, err)
		}
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	p.db = db
	return p, nil
}

// spaceLow measures the free space (a statfs call, ~1 µs, small beside a
// synced commit) and reports whether it is below the reserve, logging
// when that changes.
func (p *Pebble) spaceLow() bool {
	if p.reserve == 0 {
		return false
	}
	free, _, ok := diskSpace(p.dir)
	low := ok && free < p.reserve
	if was := p.lowSpace.Swap(low); was != low {
		if low {
			p.logger.Error("disk almost full: refusing writes", "dir", p.dir, "free_kib", free>>10, "reserve_kib", p.reserve>>10)
		} else {
			p.logger.Info("disk space back above the reserve: accepting writes", "dir", p.dir)
		}
	}
	return low
}

// BackgroundErrors returns how many background jobs of the database (a
// flush, a compaction) have failed since it opened; pebble retries them.
func (p *Pebble) BackgroundErrors() uint64 { return p.bg.total.Load() }

// DiskFull reports whether the disk is too full for the store: its free
// space is below the reserve, or a background job failed for lack of space
// in the last few seconds and none has succeeded since. Writes are refused
// meanwhile.
func (p *Pebble) DiskFull() bool { return p.spaceLow() || p.bg.diskFull() }

func acctKey(id int64) []byte {
	var k [9]byte
	k[0] = 'a'
	binary.BigEndian.PutUint64(k[1:], uint64(id))
	return k[:]
}

// Accounts returns every saved balance by account id.
func (p *Pebble) Accounts() (map[int64]int64, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return nil, ErrClosed
	}
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: acctLow, UpperBound: acctHigh})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer it.Close()
	out := make(map[int64]int64)
	for it.First(); it.Valid(); it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != 9 || len(v) != 8 {
			return nil, fmt.Errorf("store: account key %x: %w", k, ErrCorrupt)
		}
		out[int64(binary.BigEndian.Uint64(k[1:]))] = int64(binary.BigEndian.Uint64(v))
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("store: reading accounts: %w", err)
	}
	return out, nil
}

// NextEpoch durably increments and returns the store's epoch. A data server
// takes one at every start and builds its lock fences on it, so that fences
// keep growing across restarts without a write per grant.
func (p *Pebble) NextEpoch() (uint64, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return 0, ErrClosed
	}
	var epoch uint64
	v, closer, err := p.db.Get(epochKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return 0, fmt.Errorf("store: reading epoch: %w", err)
	default:
		if len(v) != 8 {
			closer.Close()
			return 0, fmt.Errorf("store: epoch: %w", ErrCorrupt)
		}
		epoch = binary.BigEndian.Uint64(v)
		closer.Close()
	}
	epoch++
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], epoch)
	if err := p.db.Set(epochKey, b[:], pebble.Sync); err != nil {
		return 0, fmt.Errorf("store: writing epoch: %w", err)
	}
	return epoch, nil
}

// Commit makes writes and rec (which may be nil) durable together: when it
// returns nil they are on disk, and a crash at any point leaves either all
// or none of them.
func (p *Pebble) Commit(writes []Write, rec *Record) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	b, err := p.batch(writes, rec)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// CommitOrdered is Commit in two steps, for early lock release: when it
// returns, writes and rec have their place in the write-ahead log — after
// every commit that returned before it started, before every commit that
// starts after it returned — and reads of the database see them, but they
// may not be on disk yet. The sync it returns waits until they are (or
// reports why they may not be: then a crash may erase them, and only
// them and what came after). Call sync exactly once.
//
// The log is replayed in order after a crash, so a later commit that is
// durable makes every earlier one durable too: that is what lets an
// account pass its lock on as soon as its write is ordered, with its
// acknowledgement (and every answer that shows the new balance) waiting
// for sync.
func (p *Pebble) CommitOrdered(writes []Write, rec *Record) (sync func() error, err error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	b, err := p.batch(writes, rec)
	if err != nil {
		return nil, err
	}
	if err := p.db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
		b.Close()
		return nil, fmt.Errorf("store: commit: %w", err)
	}
	p.ordered.Store(true)
	p.syncs.Add(1)
	return func() error {
		defer p.syncs.Done()
		defer b.Close()
		if err := b.SyncWait(); err != nil {
			return fmt.Errorf("store: sync: %w", err)
		}
		return nil
	}, nil
}

// batch builds the batch of writes and rec, refusing it when the store is
// closed or the disk almost full. The caller holds p.mu for reading and
// closes the batch.
func (p *Pebble) batch(writes []Write, rec *Record) (*pebble.Batch, error) {
	if p.closed {
		return nil, ErrClosed
	}
	if p.DiskFull() { // a commit's write-ahead log write must not be the one that fails: pebble treats that as fatal
		return nil, ErrNoSpace
	}
	b := p.db.NewBatch()
	var v [8]byte
	for _, w := range writes {
		binary.BigEndian.PutUint64(v[:], uint64(w.Balance))
		if err := b.Set(acctKey(w.ID), v[:], nil); err != nil {
			b.Close()
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	if rec != nil {
		err := b.Set(recKey(rec.Key), encodeRecord(rec), nil)
		if err == nil {
			err = b.Set(ttlKey(rec.At, rec.Key), nil, nil)
		}
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	return b, nil
}

func recKey(key string) []byte { return append([]byte{recPrefix}, key...) }

func ttlKey(at time.Time, key string) []byte {
	k := make([]byte, 9, 9+len(key))
	k[0] = 't'
	// Times before 1970 (a bad clock) index as 1970, so that they still
	// sort before every later time and expire.
	binary.BigEndian.PutUint64(k[1:], uint64(max(at.UnixNano(), 0)))
	return append(k, key...)
}

func encodeRecord(r *Record) []byte {
	buf := make([]byte, 0, 20+len(r.Fingerprint)+len(r.Body))
	buf = binary.BigEndian.AppendUint64(buf, uint64(r.At.UnixNano()))
	buf = binary.BigEndian.AppendUint32(buf, uint32(r.Status))
	buf = binary.AppendUvarint(buf, uint64(len(r.Fingerprint)))
	buf = append(buf, r.Fingerprint...)
	return append(buf, r.Body...)
}

func decodeRecord(key string, v []byte) (Record, error) {
	if len(v) < 13 {
		return Record{}, ErrCorrupt
	}
	r := Record{Key: key, At: time.Unix(0, int64(binary.BigEndian.Uint64(v))), Status: int(binary.BigEndian.Uint32(v[8:]))}
	n, size := binary.Uvarint(v[12:])
	if size <= 0 || uint64(len(v)-12-size) < n {
		return Record{}, ErrCorrupt
	}
	rest := v[12+size:]
	r.Fingerprint = string(rest[:n])
	r.Body = bytes.Clone(rest[n:])
	return r, nil
}

// Record returns the outcome kept under key, if any.
func (p *Pebble) Record(key string) (Record, bool, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return Record{}, false, ErrClosed
	}
	v, closer, err := p.db.Get(recKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("store: reading record: %w", err)
	}
	r, err := decodeRecord(key, v)
	closer.Close()
	if err != nil {
		return Record{}, false, fmt.Errorf("store: record: %w", err)
	}
	if p.ordered.Load() {
		// The record may be one CommitOrdered made visible before it is on
		// disk: answering it would tell of an outcome a crash could still
		// erase. A synced empty entry of the log is durable only once
		// everything before it is.
		if err := p.db.LogData(nil, pebble.Sync); err != nil {
			return Record{}, false, fmt.Errorf("store: syncing before answering a record: %w", err)
		}
	}
	return r, true, nil
}

// ExpireRecords deletes the records kept since before cutoff and returns
// how many it deleted.
func (p *Pebble) ExpireRecords(cutoff time.Time) (int, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return 0, ErrClosed
	}
	if p.DiskFull() {
		return 0, ErrNoSpace
	}
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: ttlLow, UpperBound: ttlKey(cutoff, "")})
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	b := p.db.NewBatch()
	defer b.Close()
	n := 0
	deleted := make(map[string]bool)
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) < 9 {
			continue
		}
		// This index entry is at or before the cutoff: it goes whatever
		// its record became.
		_ = b.Delete(bytes.Clone(k), nil)
		key := string(k[9:])
		if deleted[key] {
			continue
		}
		r, ok, err := p.recordLocked(key)
		if err != nil || !ok || !r.At.Before(cutoff) {
			// Gone already, unreadable (left for a human), or rewritten
			// since with a newer time, which its own entry indexes.
			continue
		}
		_ = b.Delete(recKey(key), nil)
		deleted[key] = true
		n++
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("store: scanning records: %w", err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, fmt.Errorf("store: expiring records: %w", err)
	}
	return n, nil
}

func (p *Pebble) recordLocked(key string) (Record, bool, error) {
	v, closer, err := p.db.Get(recKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, err
	}
	defer closer.Close()
	r, err := decodeRecord(key, v)
	return r, err == nil, err
}

// Close flushes and closes the database. It is safe to call more than
// once; later calls return nil.
func (p *Pebble) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.syncs.Wait()    // no new ordered commit can start: closed is set
	p.backoff.close() // a retry waiting out its delay fails now, so that Close need not wait for it
	if err := p.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// pebbleLogger routes pebble's messages to slog. Its informational chatter
// (compactions, flushes) is debug-level.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf is called for errors pebble cannot continue after (corruption, a
// failed fsync): the process must stop rather than acknowledge writes that
// may not be durable.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error("storage failed, stopping: "+fmt.Sprintf(format, args...), "component", "pebble")
	os.Exit(70)
}
