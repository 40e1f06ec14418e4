package dataserver_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

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
