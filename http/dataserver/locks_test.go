package dataserver_test

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/http/dataserver/dataservertest"
)

func TestFencing(t *testing.T) {
	s := dataservertest.Start(t, dataservertest.Options{})
	// Fences start at the store's epoch (1 for a fresh store) times 2^32.
	f1, f2 := strconv.FormatUint(1<<32+1, 10), strconv.FormatUint(1<<32+2, 10)
	run(t, s, []step{
		{path: "/getLock?id_negoc=A&conta=3", token: "server", status: 200, body: `{"fence":` + f1 + `,"saldo":1000,"expires_at":"*`},
		{path: "/getLock?id_negoc=A&conta=3&fence=" + f1, token: "server", status: 200, body: `{"fence":` + f1 + `,*`}, // renewal
		{path: "/setSaldo?id_negoc=A&conta=3&valor=900&fence=" + f1, token: "server", status: 200, body: "{}"},
		{path: "/setSaldo?id_negoc=A&conta=3&valor=900&fence=" + f2, token: "server", status: 200, code: -5},
		{path: "/unLock?id_negoc=A&conta=3&fence=" + f1, token: "server", status: 200, body: "{}"},
		{path: "/getLock?id_negoc=B&conta=3", token: "server", status: 200, body: `{"fence":` + f2 + `,"saldo":900,*`},
		// A's grant is gone: every fenced request of A is refused.
		{path: "/setSaldo?id_negoc=A&conta=3&valor=1&fence=" + f1, token: "server", status: 200, code: -5},
		{path: "/unLock?id_negoc=A&conta=3&fence=" + f1, token: "server", status: 200, code: -5},
		{path: "/setLock?id_negoc=A&conta=3&fence=" + f1, token: "server", status: 200, code: -5},
		{path: "/getLock?id_negoc=A&conta=3&fence=" + f1, token: "server", status: 200, code: -5},
		// Without a fence, the original's rules.
		{path: "/setSaldo?id_negoc=A&conta=3&valor=1", token: "server", status: 200, code: -1},
		{path: "/getSaldo?id_negoc=A&conta=3", token: "server", status: 200, body: `{"saldo":900}`},
		{path: "/unLock?id_negoc=B&conta=3&fence=" + f2, token: "server", status: 200, body: "{}"},
	})
}

func TestLockParamsRefused(t *testing.T) {
	s := dataservertest.Start(t, dataservertest.Options{})
	var steps []step
	for _, q := range []string{
		"wait=abc", "wait=-1s", "wait=0s", "wait=2h", "wait=1s&wait=2s",
		"ttl=abc", "ttl=0", "ttl=1h", "ttl=1s&ttl=1s",
		"fence=x", "fence=0", "fence=-1", "fence=1&fence=1", "fence=99999999999999999999",
	} {
		steps = append(steps, step{path: "/getLock?id_negoc=A&conta=1&" + q, token: "server", status: 400, code: -12})
	}
	steps = append(steps, step{path: "/setSaldo?id_negoc=A&conta=1&valor=1&fence=x", token: "server", status: 400, code: -12})
	run(t, s, steps)
	if _, holders := s.Balances(t); holders[0] != "" {
		t.Fatalf("a refused request took the lock: %q", holders[0])
	}
}

var grant = regexp.MustCompile(`^\{"fence":(\d+),"saldo":(\d+),"expires_at":"([^"]+)","ttl_ms":(\d+)\}$`)

// TestWaitAndLease goes through real HTTP: a getLock with wait is answered
// when the holder unlocks; one whose wait runs out is refused; a lease
// ends on its own and passes the lock to a waiter.
func TestWaitAndLease(t *testing.T) {
	s := dataservertest.Start(t, dataservertest.Options{})
	tok := s.ServerToken
	if a := call(t, "GET", s.URL+"/getLock?id_negoc=A&conta=1&ttl=1m", tok); a.status != 200 || !grant.MatchString(a.raw) {
		t.Fatalf("grant: %d %s", a.status, a.raw)
	}
	waiter := make(chan answer, 1)
	go func() { waiter <- call(t, "GET", s.URL+"/getLock?id_negoc=B&conta=1&wait=30s", tok) }()
	waitFor(t, func() bool { return s.Waiting(t, 1) == 1 })

	if a := call(t, "GET", s.URL+"/getLock?id_negoc=C&conta=1&wait=20ms", tok); a.code() != -1 {
		t.Fatalf("short wait: %s, want LOCKED_ACCOUNT", a.raw)
	}
	if a := call(t, "GET", s.URL+"/unLock?id_negoc=A&conta=1", tok); a.status != 200 || a.raw != "{}" {
		t.Fatalf("unlock: %s", a.raw)
	}
	a := <-waiter
	// C's wait ran out before any grant, so it took no fence: B's is 2.
	if m := grant.FindStringSubmatch(a.raw); m == nil || m[1] != strconv.FormatUint(1<<32+2, 10) {
		t.Fatalf("waiter's grant: %s, want the second fence of epoch 1", a.raw)
	}

	// A lease that runs out frees the lock for the next waiter.
	if a := call(t, "GET", s.URL+"/getLock?id_negoc=D&conta=2&ttl=50ms", tok); !grant.MatchString(a.raw) {
		t.Fatalf("short lease: %s", a.raw)
	}
	start := time.Now()
	a = call(t, "GET", s.URL+"/getLock?id_negoc=E&conta=2&wait=30s", tok)
	if !grant.MatchString(a.raw) || time.Since(start) > 20*time.Second {
		t.Fatalf("waiter behind an expiring lease: %s after %v", a.raw, time.Since(start))
	}
	if a := call(t, "GET", s.URL+"/setSaldo?id_negoc=D&conta=2&valor=1&fence="+strconv.FormatUint(1<<32+1, 10), tok); a.code() != -5 {
		t.Fatalf("expired holder's fenced write: %s, want STALE_FENCE", a.raw)
	}
	if !strings.Contains(s.LogText(), "E, getLock, 2") {
		t.Error("the waiter's grant is not in the log")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(time.Millisecond) // polling interval
	}
}

// TestGetLocks: /getLocks takes every lock asked for, in the order given,
// or none: a refusal releases the locks it took. Fences start at 2^32+1 on
// a fresh store and grow per account.
func TestGetLocks(t *testing.T) {
	f := func(n uint64) string { return strconv.FormatUint(1<<32+n, 10) }
	tests := []struct {
		name    string
		steps   []step
		holders map[int]string // account -> holder afterwards; others free
	}{
		{"two accounts", []step{
			{path: "/getLocks?id_negoc=A&conta=3&conta=4", token: "server", status: 200,
				body: `{"contas":[3,4],"fences":[` + f(1) + `,` + f(1) + `],"saldos":[1000,1000]}`},
		}, map[int]string{3: "A", 4: "A"}},
		{"request order kept", []step{
			{path: "/getLocks?id_negoc=A&conta=9&conta=2&ttl=2s&wait=1s", token: "server", status: 200,
				body: `{"contas":[9,2],"fences":[` + f(1) + `,` + f(1) + `],"saldos":[1000,1000]}`},
		}, map[int]string{2: "A", 9: "A"}},
		{"one held by another: none taken", []step{
			{path: "/getLock?id_negoc=B&conta=4", token: "server", status: 200, body: `{"fence":*`},
			{path: "/getLocks?id_negoc=A&conta=3&conta=4", token: "server", status: 200, code: -1},
			{path: "/getLocks?id_negoc=A&conta=3&conta=4&wait=20ms", token: "server", status: 200, code: -1},
		}, map[int]string{4: "B"}},
		{"no such account: none taken", []step{
			{path: "/getLocks?id_negoc=A&conta=1&conta=99", token: "server", status: 200, code: -4},
		}, nil},
		{"refused before locking", []step{
			{path: "/getLocks?id_negoc=A&conta=1&conta=1", token: "server", status: 400, code: -12},
			{path: "/getLocks?id_negoc=A&conta=1&fence=" + f(1), token: "server", status: 400, code: -12},
			{path: "/getLocks?id_negoc=A&conta=1&wait=abc", token: "server", status: 400, code: -12},
			{path: "/getLocks?id_negoc=A&conta=1&ttl=1h", token: "server", status: 400, code: -12},
			{path: "/getLocks?id_negoc=A&conta=x", token: "server", status: 200, code: -2},
			{path: "/getLocks?id_negoc=A", token: "server", status: 200, code: -2},
			{path: "/getLocks?conta=1", token: "server", status: 400, code: -12},
			{path: "/getLocks?id_negoc=A&conta=1", token: "client", status: 403, code: -8},
			{path: "/getLocks?id_negoc=A&conta=1", token: "", status: 401, code: -8},
			{path: "/getLocks?id_negoc=A" + strings.Repeat("&conta=1", 17), token: "server", status: 400, code: -12},
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := dataservertest.Start(t, dataservertest.Options{})
			run(t, s, tt.steps)
			_, holders := s.Balances(t)
			for i, h := range holders {
				if want := tt.holders[i+1]; h != want {
					t.Errorf("account %d held by %q, want %q", i+1, h, want)
				}
			}
		})
	}
}

// TestGetLocksWaits: a /getLocks with wait queues behind the holder of
// one of its accounts and is granted all of them once it unlocks.
func TestGetLocksWaits(t *testing.T) {
	s := dataservertest.Start(t, dataservertest.Options{})
	run(t, s, []step{{path: "/getLock?id_negoc=B&conta=4", token: "server", status: 200, body: `{"fence":*`}})
	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		req, err := http.NewRequest(http.MethodGet, s.URL+"/getLocks?id_negoc=A&conta=3&conta=4&wait=30s", nil)
		if err != nil {
			done <- result{err: err}
			return
		}
		req.Header.Set("token", s.ServerToken)
		resp, err := httpClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{status: resp.StatusCode, body: string(b), err: err}
	}()
	// Unlock once A is queued on account 4 (the actor reports its waiters).
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := s.Bank.Do(4, actors.Request{Op: actors.OpRead})
		if err != nil {
			t.Fatal(err)
		}
		if r.Waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the getLocks never queued on account 4")
		}
		time.Sleep(time.Millisecond)
	}
	run(t, s, []step{{path: "/unLock?id_negoc=B&conta=4", token: "server", status: 200, body: `{}`}})
	a := <-done
	if a.err != nil || a.status != 200 || !strings.HasPrefix(a.body, `{"contas":[3,4],`) {
		t.Fatalf("getLocks: %d %s %v", a.status, a.body, a.err)
	}
	if _, holders := s.Balances(t); holders[2] != "A" || holders[3] != "A" {
		t.Fatalf("holders %q, want A on 3 and 4", holders[:4])
	}
}
