package store

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// fuzzBase is the time of the fuzzed records: times are base + a fuzzed
// offset in milliseconds (both signs), within the range UnixNano encodes.
var fuzzBase = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type fuzzStore interface {
	Commit([]Write, *Record) error
	Record(string) (Record, bool, error)
	ExpireRecords(time.Time) (int, error)
	Accounts() (map[int64]int64, error)
	Close() error
}

// FuzzRecords drives store.Memory and store.Pebble (in a fresh directory)
// with the same sequence of record commits (keys from a small set, so that
// they are rewritten, or arbitrary), expiries by cutoff and (pebble)
// reopenings, and checks both against a map after every step: a committed
// record reads back equal; expiring by a cutoff removes exactly the
// records older than it, never a newer one; a reopened store keeps them.
//
// Program: opcode byte, then operands (see the cases).
func FuzzRecords(f *testing.F) {
	f.Add([]byte{})
	// commit k0 at +10, read, expire at +5 (kept), expire at +11 (gone).
	f.Add([]byte{0, 0, 10, 0, 1, 2, 'x', 'y', 2, 5, 0, 2, 11, 0})
	// commit k1 at +10, rewrite k1 at +1, expire at +5, reopen, expire at +20.
	f.Add([]byte{0, 1, 10, 0, 0, 0, 0, 1, 1, 0, 0, 0, 2, 5, 0, 3, 2, 20, 0})
	// commit k2 at +1, rewrite at +10, expire at +5 (kept), reopen.
	f.Add([]byte{0, 2, 1, 0, 0, 3, 'a', 'b', 'c', 0, 2, 10, 0, 1, 0, 2, 5, 0, 3, 1})
	// an arbitrary key with a balance write, negative offset.
	f.Add([]byte{4, 3, 'k', 0, 'y', 200, 255, 7, 3, 2, 0, 128})
	f.Fuzz(func(t *testing.T, prog []byte) {
		pc := 0
		next := func() byte {
			if pc >= len(prog) {
				pc++
				return 0
			}
			pc++
			return prog[pc-1]
		}
		str := func() string {
			n := int(next()) % 16
			if pc >= len(prog) {
				return ""
			}
			n = min(n, len(prog)-pc)
			s := string(prog[pc : pc+n])
			pc += n
			return s
		}
		at := func() time.Time {
			off := int16(uint16(next()) | uint16(next())<<8)
			return fuzzBase.Add(time.Duration(off) * time.Millisecond)
		}

		dir := filepath.Join(t.TempDir(), "db")
		p, err := OpenPebble(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { p.Close() }()
		stores := []fuzzStore{NewMemory(), p}
		names := []string{"memory", "pebble"}
		want := map[string]Record{}
		accounts := map[int64]int64{}

		for steps := 0; pc < len(prog) && steps < 64; steps++ {
			switch op := next() % 5; op {
			case 0, 4: // commit a record (4: an arbitrary key, plus a balance)
				var key string
				if op == 0 {
					key = []string{"k0", "k1", "k2", "k3"}[next()%4]
				} else {
					key = str()
				}
				r := Record{Key: key, At: at(), Status: 100 + int(next())*2, Fingerprint: str(), Body: []byte(str())}
				var writes []Write
				if op == 4 {
					w := Write{ID: int64(next()) - 128, Balance: int64(int8(next())) * 1000}
					writes = append(writes, w)
					accounts[w.ID] = w.Balance
				}
				for i, s := range stores {
					rec := r
					rec.Body = bytes.Clone(r.Body)
					if err := s.Commit(writes, &rec); err != nil {
						t.Fatalf("%s: Commit(%+v): %v", names[i], r, err)
					}
					if len(rec.Body) > 0 {
						rec.Body[0] ^= 0xff // the store must have kept its own copy
					}
				}
				want[key] = r
			case 1: // read one key, kept or not
				key := []string{"k0", "k1", "k2", "k3", "nope"}[next()%5]
				for i, s := range stores {
					got, ok, err := s.Record(key)
					w, wok := want[key]
					if err != nil || ok != wok || (ok && !fuzzSameRecord(got, w)) {
						t.Fatalf("%s: Record(%q) = %+v, %v, %v; want %+v, %v", names[i], key, got, ok, err, w, wok)
					}
				}
			case 2: // expire by cutoff
				cutoff := at()
				n := 0
				for k, r := range want {
					if r.At.Before(cutoff) {
						delete(want, k)
						n++
					}
				}
				for i, s := range stores {
					got, err := s.ExpireRecords(cutoff)
					if err != nil {
						t.Fatalf("%s: ExpireRecords(%v): %v", names[i], cutoff, err)
					}
					if got != n {
						t.Fatalf("%s: ExpireRecords(%v) = %d, want %d", names[i], cutoff, got, n)
					}
				}
			case 3: // reopen pebble
				if err := p.Close(); err != nil {
					t.Fatal(err)
				}
				if p, err = OpenPebble(dir, nil); err != nil {
					t.Fatalf("reopen: %v", err)
				}
				stores[1] = p
			}
			// Every store holds exactly the model's records and balances.
			for i, s := range stores {
				for k, w := range want {
					got, ok, err := s.Record(k)
					if err != nil || !ok || !fuzzSameRecord(got, w) {
						t.Fatalf("%s after op %d: Record(%q) = %+v, %v, %v; want %+v", names[i], steps, k, got, ok, err, w)
					}
				}
				accts, err := s.Accounts()
				if err != nil || len(accts) != len(accounts) {
					t.Fatalf("%s: Accounts() = %v, %v; want %v", names[i], accts, err, accounts)
				}
				for id, b := range accounts {
					if accts[id] != b {
						t.Fatalf("%s: Accounts() = %v; want %v", names[i], accts, accounts)
					}
				}
			}
			if keys := fuzzPebbleRecordKeys(t, p); !fuzzEqualKeys(keys, want) {
				t.Fatalf("pebble holds records %q; want those of %v", keys, want)
			}
		}
	})
}

func fuzzSameRecord(a, b Record) bool {
	return a.Key == b.Key && a.Fingerprint == b.Fingerprint && a.Status == b.Status &&
		bytes.Equal(a.Body, b.Body) && a.At.Equal(b.At)
}

// fuzzPebbleRecordKeys lists the keys of every record pebble holds.
func fuzzPebbleRecordKeys(t *testing.T, p *Pebble) []string {
	it, err := p.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var keys []string
	for it.First(); it.Valid(); it.Next() {
		if k := it.Key(); len(k) > 0 && k[0] == recPrefix {
			keys = append(keys, string(k[1:]))
		}
	}
	return keys
}

func fuzzEqualKeys(keys []string, want map[string]Record) bool {
	if len(keys) != len(want) {
		return false
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := want[k]; !ok {
			return false
		}
	}
	return true
}

// FuzzDecodeRecord: decodeRecord never panics on arbitrary bytes (a
// corrupt value is ErrCorrupt), what it decodes encodes back to a value
// that decodes the same, and any record encodes and decodes back equal.
func FuzzDecodeRecord(f *testing.F) {
	good := encodeRecord(&Record{Key: "k", At: fuzzBase, Status: 200, Fingerprint: "deposito/1/100", Body: []byte(`{"saldo":1}`)})
	f.Add("k", good, "fp", []byte("body"), int64(0), uint32(200))
	f.Add("", []byte{}, "", []byte{}, int64(-1), uint32(0))
	f.Add("x", good[:12], "", []byte(nil), int64(1<<62), uint32(599))
	f.Add("x", append(bytes.Clone(good[:12]), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), "f", []byte{0}, int64(1), uint32(1<<31))
	f.Add("x", append(bytes.Clone(good[:12]), 0x80, 0x00), "", []byte{}, int64(0), uint32(1))
	f.Fuzz(func(t *testing.T, key string, v []byte, fp string, body []byte, nanos int64, status uint32) {
		orig := bytes.Clone(v)
		r, err := decodeRecord(key, v)
		if !bytes.Equal(v, orig) {
			t.Fatalf("decodeRecord modified its input")
		}
		if err == nil {
			if r.Key != key {
				t.Fatalf("decodeRecord(%q, %x): key %q", key, v, r.Key)
			}
			if len(v) > 0 && len(r.Body) > 0 {
				v[len(v)-1] ^= 0xff // the record must not alias the value
				if r.Body[len(r.Body)-1] == v[len(v)-1] && r.Body[len(r.Body)-1] != orig[len(orig)-1] {
					t.Fatalf("decodeRecord's body aliases the value")
				}
				copy(v, orig)
			}
			again, err := decodeRecord(key, encodeRecord(&r))
			if err != nil || !fuzzSameRecord(again, r) {
				t.Fatalf("decodeRecord(%x) = %+v; re-encoded it decodes to %+v, %v", v, r, again, err)
			}
		}
		in := Record{Key: key, At: time.Unix(0, nanos), Status: int(status), Fingerprint: fp, Body: body}
		out, err := decodeRecord(key, encodeRecord(&in))
		if err != nil || !fuzzSameRecord(in, out) || binary.BigEndian.Uint32(encodeRecord(&in)[8:]) != status {
			t.Fatalf("record %+v encodes and decodes to %+v, %v", in, out, err)
		}
	})
}
