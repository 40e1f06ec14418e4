package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bank/gobank/actors/store/pgserver/pgtest"
	"github.com/bank/gobank/http/faultnet"
	"github.com/bank/gobank/http/freeport"
)

// The PostgreSQL store's tests run against a real server: one private
// server for this test binary, a database per test (see pgtest), or the
// server GOBANK_POSTGRES_DSN names.
func TestMain(m *testing.M) { pgtest.Main(m) }

// openPG opens a Postgres store on a fresh database, closed after the test.
func openPG(t *testing.T) (*Postgres, string) {
	t.Helper()
	dsn := pgtest.ForTest(t)
	p, err := OpenPostgres(dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, dsn
}

// withParam returns dsn (a URL or keyword=value pairs) with a run-time
// parameter set for its sessions.
func withParam(dsn, key, value string) string {
	if strings.Contains(dsn, "://") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		return dsn + sep + key + "=" + url.PathEscape(value) // %20 for a space: pgx reads + as itself
	}
	return dsn + " " + key + "='" + value + "'"
}

// row is an account as the table holds it.
type row struct{ balance, version, epoch int64 }

// rows reads the accounts table directly, versions and epochs included.
func rows(t *testing.T, dsn string) map[int64]row {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rs, err := conn.Query(ctx, "SELECT id, balance, version, epoch FROM accounts")
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[int64]row)
	var id int64
	var r row
	if _, err := pgx.ForEachRow(rs, []any{&id, &r.balance, &r.version, &r.epoch}, func() error {
		out[id] = r
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustClaim(t *testing.T, p *Postgres, id, initial int64) Claimed {
	t.Helper()
	c, err := p.Claim(id, initial)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPostgresClaim(t *testing.T) {
	p, _ := openPG(t)
	steps := []struct {
		name        string
		id, initial int64
		want        Claimed
	}{
		{"creates the account", 1, 100, Claimed{Balance: 100, Version: 1, Epoch: 1}},
		{"another account, on its own", 2, 7, Claimed{Balance: 7, Version: 1, Epoch: 1}},
		{"claimed again: new version and epoch, initial ignored", 1, 999, Claimed{Balance: 100, Version: 2, Epoch: 2}},
		{"and again", 1, 0, Claimed{Balance: 100, Version: 3, Epoch: 3}},
		{"a large id", 1 << 40, 0, Claimed{Balance: 0, Version: 1, Epoch: 1}},
	}
	for _, s := range steps {
		got, err := p.Claim(s.id, s.initial)
		if err != nil || got != s.want {
			t.Fatalf("%s: Claim(%d, %d) = %+v, %v; want %+v", s.name, s.id, s.initial, got, err, s.want)
		}
	}
	if _, err := p.Claim(3, -1); !errors.Is(err, ErrNegativeBalance) {
		t.Fatalf("Claim with a negative initial balance: %v", err)
	}
	got, err := p.Accounts()
	if want := map[int64]int64{1: 100, 2: 7, 1 << 40: 0}; err != nil || !maps.Equal(got, want) {
		t.Fatalf("Accounts() = %v, %v; want %v", got, err, want)
	}
}

func TestPostgresCommitVersioned(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name string
		// writes are built from the versions claimed for accounts 1 and 2
		// (balances 100 and 50); taken is a record kept beforehand.
		writes  func(v1, v2 uint64) []VersionedWrite
		rec     *Record
		taken   bool
		wantErr error
		wantID  string // the account or key the error names
		want    map[int64]int64
	}{
		{
			name:   "both at their versions",
			writes: func(v1, v2 uint64) []VersionedWrite { return []VersionedWrite{{1, 60, v1}, {2, 90, v2}} },
			rec:    &Record{Key: "t1", Fingerprint: "f", Status: 200, Body: []byte("{}"), At: at},
			want:   map[int64]int64{1: 60, 2: 90},
		},
		{
			name:    "one stale: neither applied, nor the record",
			writes:  func(v1, v2 uint64) []VersionedWrite { return []VersionedWrite{{1, 60, v1}, {2, 90, v2 - 1}} },
			rec:     &Record{Key: "t1", Fingerprint: "f", Status: 200, At: at},
			wantErr: ErrSuperseded,
			wantID:  "account 2",
			want:    map[int64]int64{1: 100, 2: 50},
		},
		{
			name:    "one ahead of the store",
			writes:  func(v1, v2 uint64) []VersionedWrite { return []VersionedWrite{{2, 90, v2 + 1}, {1, 60, v1}} },
			wantErr: ErrSuperseded,
			wantID:  "account 2",
			want:    map[int64]int64{1: 100, 2: 50},
		},
		{
			name:    "an account never claimed",
			writes:  func(v1, v2 uint64) []VersionedWrite { return []VersionedWrite{{1, 60, v1}, {3, 90, 1}} },
			wantErr: ErrSuperseded,
			wantID:  "account 3",
			want:    map[int64]int64{1: 100, 2: 50},
		},
		{
			name:    "record key taken: writes not applied",
			writes:  func(v1, v2 uint64) []VersionedWrite { return []VersionedWrite{{1, 60, v1}, {2, 90, v2}} },
			rec:     &Record{Key: "t1", Fingerprint: "other", Status: 200, At: at},
			taken:   true,
			wantErr: ErrKeyTaken,
			wantID:  `"t1"`,
			want:    map[int64]int64{1: 100, 2: 50},
		},
		{
			name:    "a negative balance",
			writes:  func(v1, v2 uint64) []VersionedWrite { return []VersionedWrite{{1, 160, v1}, {2, -10, v2}} },
			wantErr: ErrNegativeBalance,
			wantID:  "account 2",
			want:    map[int64]int64{1: 100, 2: 50},
		},
		{
			name:   "a record alone",
			writes: func(v1, v2 uint64) []VersionedWrite { return nil },
			rec:    &Record{Key: "t1", Fingerprint: "f", Status: 409, At: at},
			want:   map[int64]int64{1: 100, 2: 50},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, dsn := openPG(t)
			v1, v2 := mustClaim(t, p, 1, 100).Version, mustClaim(t, p, 2, 50).Version
			if tt.taken {
				if err := p.Commit(nil, &Record{Key: tt.rec.Key, Fingerprint: "first", Status: 201, At: at}); err != nil {
					t.Fatal(err)
				}
			}
			before := rows(t, dsn)
			err := p.CommitVersioned(tt.writes(v1, v2), tt.rec)
			if !errors.Is(err, tt.wantErr) || (err != nil && !strings.Contains(err.Error(), tt.wantID)) {
				t.Fatalf("CommitVersioned: %v; want %v naming %s", err, tt.wantErr, tt.wantID)
			}
			got, err2 := p.Accounts()
			if err2 != nil || !maps.Equal(got, tt.want) {
				t.Fatalf("Accounts() = %v, %v; want %v", got, err2, tt.want)
			}
			after := rows(t, dsn)
			for id, b := range before {
				moved := after[id].version != b.version
				if written := err == nil && got[id] != b.balance; written != moved {
					t.Errorf("account %d: version %d -> %d, balance %d -> %d", id, b.version, after[id].version, b.balance, got[id])
				}
				if err == nil && moved && after[id].version != b.version+1 {
					t.Errorf("account %d: version %d -> %d, want +1", id, b.version, after[id].version)
				}
			}
			if tt.rec == nil {
				return
			}
			r, ok, rerr := p.Record(tt.rec.Key)
			switch {
			case rerr != nil:
				t.Fatal(rerr)
			case tt.taken:
				if !ok || r.Fingerprint != "first" {
					t.Errorf("the first record was replaced: %+v, %v", r, ok)
				}
			case err == nil:
				if !ok || r.Fingerprint != tt.rec.Fingerprint || r.Status != tt.rec.Status || !r.At.Equal(at) {
					t.Errorf("record: %+v, %v; want %+v", r, ok, *tt.rec)
				}
			default:
				if ok {
					t.Errorf("the record of a refused commit was kept: %+v", r)
				}
			}
		})
	}
}

// TestPostgresTwoActivations: A claims, B claims the same account; only
// B's writes land, and A's are refused before and after B's.
func TestPostgresTwoActivations(t *testing.T) {
	p, _ := openPG(t)
	a := mustClaim(t, p, 1, 100)
	b := mustClaim(t, p, 1, 100)
	if b.Epoch <= a.Epoch || b.Version <= a.Version {
		t.Fatalf("second claim %+v not above the first %+v", b, a)
	}
	// Fences built on the epoch stay monotonic across activations.
	if fa, fb := a.Epoch<<32+1_000_000, b.Epoch<<32+1; fb <= fa {
		t.Fatalf("B's first fence %d is not above A's %d", fb, fa)
	}
	if err := p.CommitVersioned([]VersionedWrite{{1, 10, a.Version}}, nil); !errors.Is(err, ErrSuperseded) {
		t.Fatalf("A's write: %v; want ErrSuperseded", err)
	}
	if err := p.CommitVersioned([]VersionedWrite{{1, 80, b.Version}}, nil); err != nil {
		t.Fatalf("B's write: %v", err)
	}
	if err := p.CommitVersioned([]VersionedWrite{{1, 10, a.Version}}, nil); !errors.Is(err, ErrSuperseded) {
		t.Fatalf("A's write after B's: %v; want ErrSuperseded", err)
	}
	// B goes on from the version its write made.
	if err := p.CommitVersioned([]VersionedWrite{{1, 70, b.Version + 1}}, nil); err != nil {
		t.Fatalf("B's second write: %v", err)
	}
	if got, err := p.Accounts(); err != nil || got[1] != 70 {
		t.Fatalf("balance %v, %v; want 70", got, err)
	}
}

// TestPostgresRacingActivations: activations of one account race, each
// claiming and then adding 1 at the version it claimed, under both the
// isolation PostgreSQL defaults to and the one CockroachDB does. Every
// write either lands or is refused as superseded (a serialization failure
// is retried, never returned), and no landed write is lost.
func TestPostgresRacingActivations(t *testing.T) {
	for _, iso := range []string{"read committed", "serializable"} {
		t.Run(iso, func(t *testing.T) {
			dsn := withParam(pgtest.ForTest(t), "default_transaction_isolation", iso)
			p, err := OpenPostgres(dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			mustClaim(t, p, 1, 0)
			const workers, rounds = 4, 25
			var landed, refused atomic.Int64
			var wg sync.WaitGroup
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range rounds {
						c, err := p.Claim(1, 0)
						if err != nil {
							t.Error(err)
							return
						}
						err = p.CommitVersioned([]VersionedWrite{{1, c.Balance + 1, c.Version}}, nil)
						switch {
						case err == nil:
							landed.Add(1)
						case errors.Is(err, ErrSuperseded):
							refused.Add(1)
						default:
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			got, err := p.Accounts()
			if err != nil || got[1] != landed.Load() {
				t.Fatalf("balance %v, %v; want %d, the writes that landed (%d refused)", got, err, landed.Load(), refused.Load())
			}
			if landed.Load() == 0 {
				t.Fatal("no write landed")
			}
		})
	}
}

func TestPostgresCommit(t *testing.T) {
	p, dsn := openPG(t)
	c := mustClaim(t, p, 1, 100)
	if err := p.Commit([]Write{{1, 40}, {2, 60}}, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := p.Accounts(); err != nil || !maps.Equal(got, map[int64]int64{1: 40, 2: 60}) {
		t.Fatalf("Accounts() = %v, %v", got, err)
	}
	// An unconditional write moves the version: an activation that loaded
	// the account before it cannot write over it.
	if err := p.CommitVersioned([]VersionedWrite{{1, 1, c.Version}}, nil); !errors.Is(err, ErrSuperseded) {
		t.Fatalf("write at the version before Commit: %v", err)
	}
	if r := rows(t, dsn)[2]; r.version != 1 || r.epoch != 0 {
		t.Errorf("account created by Commit: %+v; want version 1, epoch 0", r)
	}
	if c2 := mustClaim(t, p, 2, 0); c2.Balance != 60 || c2.Epoch != 1 {
		t.Errorf("claiming an account Commit created: %+v", c2)
	}
	if err := p.Commit([]Write{{1, 5}, {2, -1}}, nil); !errors.Is(err, ErrNegativeBalance) {
		t.Fatalf("negative write: %v", err)
	}
	if got, err := p.Accounts(); err != nil || got[1] != 40 {
		t.Fatalf("after a refused commit: %v, %v", got, err)
	}
	if err := p.Commit(nil, nil); err != nil {
		t.Fatalf("empty commit: %v", err)
	}
}

// TestPostgresCheckConstraint: the table refuses a negative balance on its
// own, whatever writes it.
func TestPostgresCheckConstraint(t *testing.T) {
	p, dsn := openPG(t)
	mustClaim(t, p, 1, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "UPDATE accounts SET balance = -1 WHERE id = 1")
	if sqlState(err) != "23514" {
		t.Fatalf("negative balance through SQL: %v; want a check violation (23514)", err)
	}
}

func TestPostgresRecords(t *testing.T) {
	p, _ := openPG(t)
	base := time.Date(2026, 3, 4, 5, 6, 7, 891011, time.UTC)
	recs := []Record{
		{Key: "old", Fingerprint: "saque/1/5", Status: 200, Body: []byte(`{"saldo":95}`), At: base},
		{Key: "pre-1970", Fingerprint: "f", Status: 500, Body: nil, At: time.Unix(-5, 0)},
		{Key: "new", Fingerprint: "deposito/2/5", Status: 409, Body: []byte{0, 1, 2}, At: base.Add(time.Hour)},
		{Key: strings.Repeat("k", 300) + "é", Fingerprint: "long key", Status: 200, At: base.Add(2 * time.Hour)},
	}
	for _, r := range recs {
		if err := p.Commit(nil, &r); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range recs {
		got, ok, err := p.Record(want.Key)
		if err != nil || !ok || got.Key != want.Key || got.Fingerprint != want.Fingerprint ||
			got.Status != want.Status || string(got.Body) != string(want.Body) || !got.At.Equal(want.At) {
			t.Errorf("Record(%.10q) = %+v, %v, %v; want %+v", want.Key, got, ok, err, want)
		}
	}
	if _, ok, err := p.Record("missing"); ok || err != nil {
		t.Errorf("missing record: %v, %v", ok, err)
	}
	// A second record under a key is refused, and the writes with it.
	dup := recs[0]
	dup.Fingerprint = "another request"
	if err := p.Commit([]Write{{9, 9}}, &dup); !errors.Is(err, ErrKeyTaken) {
		t.Fatalf("duplicate key: %v; want ErrKeyTaken", err)
	}
	if got, _, _ := p.Record("old"); got.Fingerprint != "saque/1/5" {
		t.Errorf("duplicate replaced the record: %+v", got)
	}
	if got, err := p.Accounts(); err != nil || len(got) != 0 {
		t.Errorf("writes of the refused commit applied: %v, %v", got, err)
	}

	expiries := []struct {
		cutoff time.Time
		n      int
		gone   []string
	}{
		{base, 1, []string{"pre-1970"}},                 // before base: only the pre-1970 one
		{base.Add(time.Nanosecond), 1, []string{"old"}}, // strictly before the cutoff
		{base.Add(90 * time.Minute), 1, []string{"new"}},
		{base.Add(90 * time.Minute), 0, nil},
	}
	for _, e := range expiries {
		n, err := p.ExpireRecords(e.cutoff)
		if err != nil || n != e.n {
			t.Fatalf("ExpireRecords(%v) = %d, %v; want %d", e.cutoff, n, err, e.n)
		}
		for _, k := range e.gone {
			if _, ok, _ := p.Record(k); ok {
				t.Errorf("%s survived expiry at %v", k, e.cutoff)
			}
		}
	}
	if _, ok, err := p.Record(recs[3].Key); !ok || err != nil {
		t.Errorf("the newest record expired: %v, %v", ok, err)
	}
}

func TestPostgresExpireMany(t *testing.T) {
	p, _ := openPG(t)
	at := time.Unix(1000, 0)
	// More than one slice of the DELETE.
	const n = 2500
	var wg sync.WaitGroup
	for w := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 5 {
				if err := p.Commit(nil, &Record{Key: fmt.Sprintf("k%d", i), At: at}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got, err := p.ExpireRecords(at.Add(time.Second)); err != nil || got != n {
		t.Fatalf("ExpireRecords = %d, %v; want %d", got, err, n)
	}
}

func TestPostgresClosed(t *testing.T) {
	p, _ := openPG(t)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	calls := map[string]func() error{
		"Claim":           func() error { _, err := p.Claim(1, 0); return err },
		"CommitVersioned": func() error { return p.CommitVersioned([]VersionedWrite{{1, 1, 1}}, nil) },
		"Commit":          func() error { return p.Commit([]Write{{1, 1}}, nil) },
		"Record":          func() error { _, _, err := p.Record("k"); return err },
		"Accounts":        func() error { _, err := p.Accounts(); return err },
		"ExpireRecords":   func() error { _, err := p.ExpireRecords(time.Now()); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v; want ErrClosed", name, err)
		}
	}
}

// TestOpenPostgresUnreachable: the error names the host, never the
// password, and is none of the refusals.
func TestOpenPostgresUnreachable(t *testing.T) {
	addr, err := freeport.Addr() // nothing listens there now
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, dsn, mention string }{
		{"URL", "postgres://bank:s3cr3t-pw@" + addr + "/bank?connect_timeout=2", addr},
		{"keywords", "host=127.0.0.1 port=" + addr[strings.LastIndex(addr, ":")+1:] + " user=bank password=s3cr3t-pw connect_timeout=2", addr},
		{"unparsable", "postgres://bank:s3cr3t-pw@host:notaport/x", "does not parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := OpenPostgres(tt.dsn, nil)
			if err == nil {
				p.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), tt.mention) || strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q: want it to mention %q and not the password", err, tt.mention)
			}
			if errors.Is(err, ErrSuperseded) || errors.Is(err, ErrKeyTaken) || errors.Is(err, ErrClosed) {
				t.Errorf("error %v reads as a refusal", err)
			}
		})
	}
}

// TestPostgresTimeout: a commit that cannot proceed (another session holds
// the row) fails within the store's timeout, as a store failure rather
// than a refusal.
func TestPostgresTimeout(t *testing.T) {
	p, dsn := openPG(t)
	c := mustClaim(t, p, 1, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// Holding the row's lock stalls the commit past its timeout.
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SELECT balance FROM accounts WHERE id = 1 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	p.Timeout = 300 * time.Millisecond
	start := time.Now()
	err = p.CommitVersioned([]VersionedWrite{{1, 5, c.Version}}, nil)
	if err == nil || errors.Is(err, ErrSuperseded) || errors.Is(err, ErrKeyTaken) {
		t.Fatalf("commit against a held lock: %v; want a store failure", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("commit against a held lock: %v; want it to wrap the deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v with a timeout of 300ms", d)
	}
	tx.Rollback(ctx)
	// The store is usable again, and the timed-out commit was not applied.
	p.Timeout = 0
	if err := p.CommitVersioned([]VersionedWrite{{1, 6, c.Version}}, nil); err != nil {
		t.Fatalf("commit after the lock went: %v", err)
	}
}

func TestRetry(t *testing.T) {
	serialization := &pgconn.PgError{Code: "40001"}
	deadlock := &pgconn.PgError{Code: "40P01"}
	other := errors.New("connection refused")
	tests := []struct {
		name      string
		errs      []error // returned by successive attempts; nil after them
		wantCalls int
		wantErr   error
	}{
		{"success", nil, 1, nil},
		{"serialization failures then success", []error{serialization, serialization}, 3, nil},
		{"deadlock then success", []error{deadlock}, 2, nil},
		{"always aborted", slices.Repeat([]error{serialization}, maxAttempts+1), maxAttempts, serialization},
		{"another error is not retried", []error{other, serialization}, 1, other},
		{"a check violation is not retried", []error{&pgconn.PgError{Code: "23514"}}, 1, &pgconn.PgError{Code: "23514"}},
	}
	p := &Postgres{logger: slog.New(slog.DiscardHandler)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := p.retry(context.Background(), func() error {
				calls++
				if calls <= len(tt.errs) {
					return tt.errs[calls-1]
				}
				return nil
			})
			if calls != tt.wantCalls || sqlState(err) != sqlState(tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("%d calls, %v; want %d, %v", calls, err, tt.wantCalls, tt.wantErr)
			}
		})
	}
}

// TestOpenPostgresTogether: members starting at once race to create the
// tables on a fresh database; every one of them opens.
func TestOpenPostgresTogether(t *testing.T) {
	dsn := pgtest.ForTest(t)
	const members = 6
	errs := make(chan error, members)
	var wg sync.WaitGroup
	for range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := OpenPostgres(dsn, nil)
			if err == nil {
				_, err = p.Claim(1, 10)
				p.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestPostgresSupersededNamesTheAccount: in a commit of two accounts of
// which one was claimed again, the refusal names that one, so that its
// writer retires only the stale activation.
func TestPostgresSupersededNamesTheAccount(t *testing.T) {
	p, _ := openPG(t)
	a1 := mustClaim(t, p, 1, 100)
	a2 := mustClaim(t, p, 2, 100)
	mustClaim(t, p, 2, 100) // another activation of account 2
	err := p.CommitVersioned([]VersionedWrite{{1, 50, a1.Version}, {2, 150, a2.Version}}, nil)
	var se *SupersededError
	if !errors.As(err, &se) || se.ID != 2 || !errors.Is(err, ErrSuperseded) {
		t.Fatalf("commit with account 2 superseded: %v; want a SupersededError for account 2", err)
	}
}

// TestPostgresCommitAnswerLost: a commit whose link to the server goes
// dark as its COMMIT goes out (a partition: the writes were sent, no answer
// comes back) is reported as an unknown outcome, ErrOutcomeUnknown, never
// as a failure that applied nothing; a commit the server refuses (a stale
// version) stays a plain refusal.
func TestPostgresCommitAnswerLost(t *testing.T) {
	dsn := pgtest.ForTest(t)
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	link, err := faultnet.New("store->pg", net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { link.Close() })
	viaLink := dsn
	if u, err := url.Parse(dsn); err == nil && u.Host != "" {
		u.Host = link.Addr()
		viaLink = u.String()
	} else {
		host, port, _ := net.SplitHostPort(link.Addr())
		viaLink = dsn + " host=" + host + " port=" + port
	}
	p, err := OpenPostgres(viaLink, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	c, err := p.Claim(1, 100)
	if err != nil {
		t.Fatal(err)
	}
	p.Timeout = time.Second
	p.beforeCommit = func(*pgx.Conn) {
		if err := link.Partition(); err != nil {
			t.Error(err)
		}
	}
	err = p.CommitVersioned([]VersionedWrite{{1, 60, c.Version}}, nil)
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("a commit whose answer was lost: %v, want ErrOutcomeUnknown", err)
	}
	p.beforeCommit = nil
	if err := link.Heal(); err != nil {
		t.Fatal(err)
	}
	p.Timeout = 0
	if err := p.CommitVersioned([]VersionedWrite{{1, 60, c.Version + 7}}, nil); err == nil || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("a stale write: %v, want a refusal that is not an unknown outcome", err)
	}
}
