package store

import (
	"bytes"
	"sync"
	"time"
)

// Memory is a Store that keeps everything in memory: the bank's in-memory
// mode, and the baseline durable mode is measured against. Nothing
// survives the process.
type Memory struct {
	mu       sync.Mutex
	accounts map[int64]int64
	records  map[string]Record
	epoch    uint64
	closed   bool
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{accounts: make(map[int64]int64), records: make(map[string]Record)}
}

// Accounts returns every saved balance by account id.
func (m *Memory) Accounts() (map[int64]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	out := make(map[int64]int64, len(m.accounts))
	for id, b := range m.accounts {
		out[id] = b
	}
	return out, nil
}

// NextEpoch increments and returns the epoch.
func (m *Memory) NextEpoch() (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	m.epoch++
	return m.epoch, nil
}

// Commit applies writes and rec together.
func (m *Memory) Commit(writes []Write, rec *Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for _, w := range writes {
		m.accounts[w.ID] = w.Balance
	}
	if rec != nil {
		r := *rec
		r.Body = bytes.Clone(r.Body)
		m.records[r.Key] = r
	}
	return nil
}

// Record returns the outcome kept under key, if any.
func (m *Memory) Record(key string) (Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Record{}, false, ErrClosed
	}
	r, ok := m.records[key]
	r.Body = bytes.Clone(r.Body)
	return r, ok, nil
}

// ExpireRecords deletes the records kept since before cutoff.
func (m *Memory) ExpireRecords(cutoff time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	n := 0
	for k, r := range m.records {
		if r.At.Before(cutoff) {
			delete(m.records, k)
			n++
		}
	}
	return n, nil
}

// Close marks the store closed.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
