package store

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// kind opens a store and reopens it "after a restart".
type kind struct {
	name   string
	open   func(t *testing.T) storeUnderTest
	reopen func(t *testing.T, old storeUnderTest) storeUnderTest
}

type storeUnderTest interface {
	Accounts() (map[int64]int64, error)
	NextEpoch() (uint64, error)
	Commit([]Write, *Record) error
	Record(string) (Record, bool, error)
	ExpireRecords(time.Time) (int, error)
	Close() error
}

func kinds() []kind {
	return []kind{
		{
			name: "pebble",
			open: func(t *testing.T) storeUnderTest {
				dir := filepath.Join(t.TempDir(), "db")
				p, err := OpenPebble(dir, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { p.Close() })
				dirs.Store(p, dir)
				return p
			},
			reopen: func(t *testing.T, old storeUnderTest) storeUnderTest {
				dir, _ := dirs.Load(old)
				if err := old.Close(); err != nil {
					t.Fatal(err)
				}
				p, err := OpenPebble(dir.(string), nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { p.Close() })
				dirs.Store(p, dir)
				return p
			},
		},
		{
			name: "memory",
			open: func(t *testing.T) storeUnderTest { return NewMemory() },
			reopen: func(t *testing.T, old storeUnderTest) storeUnderTest {
				return old // memory survives only within the process
			},
		},
	}
}

var dirs sync.Map

func TestCommitAndReload(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, k := range kinds() {
		t.Run(k.name, func(t *testing.T) {
			s := k.open(t)
			if got, err := s.Accounts(); err != nil || len(got) != 0 {
				t.Fatalf("fresh store: %v, %v", got, err)
			}
			if err := s.Commit([]Write{{1, 100}, {2, 0}, {1 << 40, 7}}, nil); err != nil {
				t.Fatal(err)
			}
			rec := &Record{Key: "k1", Fingerprint: "transferencia/1/2/5", Status: 200, Body: []byte(`{"ok":1}`), At: at}
			if err := s.Commit([]Write{{1, 95}, {2, 5}}, rec); err != nil {
				t.Fatal(err)
			}
			e1, err := s.NextEpoch()
			if err != nil {
				t.Fatal(err)
			}
			s = k.reopen(t, s)
			got, err := s.Accounts()
			if err != nil {
				t.Fatal(err)
			}
			if want := map[int64]int64{1: 95, 2: 5, 1 << 40: 7}; !reflect.DeepEqual(got, want) {
				t.Fatalf("after reopen: %v, want %v", got, want)
			}
			if e2, err := s.NextEpoch(); err != nil || e2 != e1+1 {
				t.Fatalf("epoch after reopen: %d, %v; want %d", e2, err, e1+1)
			}
			r, ok, err := s.Record("k1")
			if err != nil || !ok || r.Fingerprint != rec.Fingerprint || r.Status != 200 || string(r.Body) != `{"ok":1}` || !r.At.Equal(at) {
				t.Fatalf("record: %+v %v %v", r, ok, err)
			}
			if _, ok, err := s.Record("k2"); ok || err != nil {
				t.Fatalf("missing record: %v %v", ok, err)
			}
			// Expiry deletes what is older than the cutoff only.
			newer := &Record{Key: "k2", Fingerprint: "f", Status: 409, At: at.Add(time.Hour)}
			if err := s.Commit(nil, newer); err != nil {
				t.Fatal(err)
			}
			if n, err := s.ExpireRecords(at.Add(time.Minute)); err != nil || n != 1 {
				t.Fatalf("expired %d, %v; want 1", n, err)
			}
			if _, ok, _ := s.Record("k1"); ok {
				t.Fatal("old record survived expiry")
			}
			if _, ok, _ := s.Record("k2"); !ok {
				t.Fatal("newer record expired")
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if err := s.Commit([]Write{{1, 1}}, nil); !errors.Is(err, ErrClosed) {
				t.Fatalf("Commit after Close: %v", err)
			}
			if _, err := s.Accounts(); !errors.Is(err, ErrClosed) {
				t.Fatalf("Accounts after Close: %v", err)
			}
		})
	}
}

// TestConcurrentCommits has 64 writers commit at once; every last write
// must be there after a reopen.
func TestConcurrentCommits(t *testing.T) {
	for _, k := range kinds() {
		t.Run(k.name, func(t *testing.T) {
			s := k.open(t)
			var wg sync.WaitGroup
			for w := range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 20 {
						if err := s.Commit([]Write{{int64(w), int64(i)}, {int64(1000 + w), int64(i)}}, nil); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			s = k.reopen(t, s)
			got, err := s.Accounts()
			if err != nil {
				t.Fatal(err)
			}
			for w := range int64(64) {
				if got[w] != 19 || got[1000+w] != 19 {
					t.Fatalf("writer %d: %d and %d, want 19", w, got[w], got[1000+w])
				}
			}
		})
	}
}

func TestOpenUnusableDirectory(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{file, filepath.Join(file, "sub")} {
		_, err := OpenPebble(path, nil)
		if err == nil {
			t.Fatalf("OpenPebble(%s) succeeded", path)
		}
		if !containsPath(err, path) && !containsPath(err, file) {
			t.Errorf("error does not name the directory: %v", err)
		}
	}
}

func containsPath(err error, path string) bool {
	return err != nil && strings.Contains(err.Error(), path)
}

func TestCorruptRecord(t *testing.T) {
	if _, err := decodeRecord("k", []byte{1, 2}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short record: %v", err)
	}
	r := &Record{Key: "k", Fingerprint: "abc", Status: 200, Body: []byte("x"), At: time.Unix(5, 0)}
	enc := encodeRecord(r)
	if _, err := decodeRecord("k", enc[:14]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated record: %v", err)
	}
	got, err := decodeRecord("k", enc)
	if err != nil || got.Fingerprint != "abc" || got.Status != 200 || string(got.Body) != "x" || got.At.Unix() != 5 {
		t.Fatalf("roundtrip: %+v %v", got, err)
	}
}

// TestCommitOrdered: an ordered commit is visible (balances and record)
// before its sync is awaited, durable once it is, and a Close waits for
// the syncs still awaited.
func TestCommitOrdered(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	p, err := OpenPebble(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &Record{Key: "k1", Fingerprint: "f", Status: 200, Body: []byte(`{"saldo":7}`), At: time.Now()}
	first, err := p.CommitOrdered([]Write{{ID: 1, Balance: 7}}, rec)
	if err != nil {
		t.Fatal(err)
	}
	second, err := p.CommitOrdered([]Write{{ID: 1, Balance: 8}, {ID: 2, Balance: 9}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Accounts()
	if err != nil || got[1] != 8 || got[2] != 9 {
		t.Fatalf("before the syncs: %v, %v; want the later commit visible", got, err)
	}
	// A record found is synced before it is answered.
	if r, ok, err := p.Record("k1"); err != nil || !ok || string(r.Body) != `{"saldo":7}` {
		t.Fatalf("Record = %+v, %v, %v", r, ok, err)
	}
	if err := first(); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	if err := second(); err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if _, err := p.CommitOrdered(nil, rec); !errors.Is(err, ErrClosed) {
		t.Fatalf("CommitOrdered after Close: %v; want ErrClosed", err)
	}
	p, err = OpenPebble(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got, err := p.Accounts(); err != nil || got[1] != 8 || got[2] != 9 {
		t.Fatalf("after reopening: %v, %v", got, err)
	}
	if _, ok, err := p.Record("k1"); err != nil || !ok {
		t.Fatalf("record after reopening: %v, %v", ok, err)
	}
}
