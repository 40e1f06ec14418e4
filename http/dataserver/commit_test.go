package dataserver_test

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bank/gobank/actors/store"
	"github.com/bank/gobank/http/dataserver/dataservertest"
)

// lockFence takes account conta's lock for holder and returns its fence.
func lockFence(t *testing.T, s *dataservertest.Server, holder string, conta int) string {
	t.Helper()
	a := call(t, "GET", s.URL+"/getLock?id_negoc="+holder+"&conta="+strconv.Itoa(conta), s.ServerToken)
	f, ok := a.body["fence"].(float64)
	if a.status != 200 || !ok {
		t.Fatalf("lock %d: %s", conta, a.raw)
	}
	return strconv.FormatUint(uint64(f), 10)
}

func TestCommit(t *testing.T) {
	s := dataservertest.Start(t, dataservertest.Options{})
	f1, f2 := lockFence(t, s, "H", 1), lockFence(t, s, "H", 2)
	both := "&conta=1&valor=900&fence=" + f1 + "&conta=2&valor=1100&fence=" + f2
	run(t, s, []step{
		{path: "/commit?id_negoc=H&conta=1&valor=900", token: "server", status: 400, code: -12},
		{path: "/commit?id_negoc=H&conta=1&valor=900&fence=0", token: "server", status: 400, code: -12},
		{path: "/commit?id_negoc=H&conta=1&conta=2&valor=1&fence=" + f1, token: "server", status: 400, code: -12},
		{path: "/commit?conta=1&valor=900&fence=" + f1, token: "server", status: 400, code: -12},
		{path: "/commit?id_negoc=H" + both, token: "client", status: 403, code: -8},
		{path: "/commit?id_negoc=H&conta=x&valor=1&fence=" + f1, token: "server", status: 200, code: -2},
		{path: "/commit?id_negoc=H&conta=1&valor=-1&fence=" + f1, token: "server", status: 200, code: -3},
		{path: "/commit?id_negoc=H&conta=1&valor=1&fence=" + f1 + "&conta=99&valor=1&fence=" + f1, token: "server", status: 200, code: -4},
		{path: "/commit?id_negoc=H&conta=1&valor=900&fence=" + f1 + "&conta=2&valor=1100&fence=1", token: "server", status: 200, code: -5},
		{path: "/commit?id_negoc=other" + both, token: "server", status: 200, code: -5},
		{path: "/commit?id_negoc=H&unlock=1" + both, token: "server", status: 200, body: "{}"},
		// Applied together, and the locks were released.
		{path: "/getSaldo?conta=1", token: "server", status: 200, body: `{"saldo":900}`},
		{path: "/getSaldo?conta=2", token: "server", status: 200, body: `{"saldo":1100}`},
		{path: "/commit?id_negoc=H" + both, token: "server", status: 200, code: -5},
	})
	balances, holders := s.Balances(t)
	if balances[0] != 900 || balances[1] != 1100 || holders[0] != "" || holders[1] != "" {
		t.Fatalf("after commit: %v %q", balances, holders)
	}
	if !strings.Contains(s.LogText(), "H, commit, 1, 900, 2, 1100\n") {
		t.Errorf("commit missing from the log:\n%s", s.LogText())
	}
}

// TestIdempotencyRecords: a commit with a key keeps its outcome in the
// same batch; the same key again is not applied but answered with the
// record; /idem reads and keeps records.
func TestIdempotencyRecords(t *testing.T) {
	s := dataservertest.Start(t, dataservertest.Options{})
	tok := s.ServerToken
	f1, f2 := lockFence(t, s, "H", 1), lockFence(t, s, "H", 2)
	q := "/commit?id_negoc=H&unlock=1&key=k-1&fingerprint=transferencia/1/2/100&status=200" +
		"&conta=1&valor=900&fence=" + f1 + "&conta=2&valor=1100&fence=" + f2
	outcome := `{"conta_orig":1,"conta_dest":2,"valor":100}`
	if a := callBody(t, "POST", s.URL+q, tok, outcome); a.status != 200 || a.raw != "{}" {
		t.Fatalf("first commit: %d %s", a.status, a.raw)
	}
	// The retry holds new grants, but the key is known: nothing applied.
	f1, f2 = lockFence(t, s, "H", 1), lockFence(t, s, "H", 2)
	q = "/commit?id_negoc=H&unlock=1&key=k-1&fingerprint=transferencia/1/2/100&status=200" +
		"&conta=1&valor=800&fence=" + f1 + "&conta=2&valor=1200&fence=" + f2
	a := callBody(t, "POST", s.URL+q, tok, outcome)
	if a.body["replayed"] != true || a.body["body"] != outcome || a.body["status"] != float64(200) || a.body["fingerprint"] != "transferencia/1/2/100" {
		t.Fatalf("retry: %s", a.raw)
	}
	if balances, _ := s.Balances(t); balances[0] != 900 || balances[1] != 1100 {
		t.Fatalf("the retry was applied: %v", balances)
	}
	for _, c := range []string{"1", "2"} { // the replay did not unlock: the caller does
		call(t, "GET", s.URL+"/unLock?id_negoc=H&conta="+c, tok)
	}
	run(t, s, []step{
		{path: "/idem?key=k-1", token: "server", status: 200, body: `{"found":true,"replayed":false,"status":200,*`},
		{path: "/idem?key=nope", token: "server", status: 200, body: `{"found":false}`},
		{path: "/idem", token: "server", status: 400, code: -12},
		{path: "/idem?key=" + strings.Repeat("k", 129), token: "server", status: 400, code: -12},
		{path: "/idem?key=a&key=b", token: "server", status: 400, code: -12},
		{path: "/idem?key=k-1", token: "client", status: 403, code: -8},
		{method: "POST", path: "/idem?key=k-2&fingerprint=saque/1/5000", token: "server", status: 400, code: -12},
	})
	refusal := `{"error_code":-6,"error":"insufficient funds"}`
	if a := callBody(t, "POST", s.URL+"/idem?key=k-2&fingerprint=saque/1/5000&status=409", tok, refusal); a.raw != `{"found":false,"stored":true}` {
		t.Fatalf("keeping a refusal: %s", a.raw)
	}
	a = callBody(t, "POST", s.URL+"/idem?key=k-2&fingerprint=saque/1/1&status=200", tok, "{}")
	if a.body["found"] != true || a.body["body"] != refusal || a.body["fingerprint"] != "saque/1/5000" {
		t.Fatalf("second keep of k-2 did not answer the first: %s", a.raw)
	}
}

// TestCommitDurable commits through a data server on a pebble store,
// stops it, and starts another on the same directory.
func TestCommitDurable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	st, err := store.OpenPebble(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := dataservertest.Start(t, dataservertest.Options{Store: st})
	f3, f4 := lockFence(t, s, "H", 3), lockFence(t, s, "H", 4)
	a := call(t, "GET", s.URL+"/commit?id_negoc=H&unlock=true&conta=3&valor=1&fence="+f3+"&conta=4&valor=1999&fence="+f4, s.ServerToken)
	if a.raw != "{}" {
		t.Fatalf("commit: %s", a.raw)
	}
	call(t, "GET", s.URL+"/setSaldo?id_negoc=x&conta=5&valor=5", s.ServerToken)
	s.Stop()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = store.OpenPebble(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s = dataservertest.Start(t, dataservertest.Options{Store: st})
	balances, _ := s.Balances(t)
	if balances[2] != 1 || balances[3] != 1999 || balances[4] != 5 || balances[0] != 1000 {
		t.Fatalf("after restart: %v", balances)
	}
	if f := lockFence(t, s, "H", 3); f <= f3 && len(f) <= len(f3) {
		t.Fatalf("fence after restart %s, before %s", f, f3)
	}
}

func TestCommitNamesAnAccountOnce(t *testing.T) {
	s := dataservertest.Start(t, dataservertest.Options{})
	f := lockFence(t, s, "H", 2)
	run(t, s, []step{
		{path: "/commit?id_negoc=H&conta=2&valor=1&fence=" + f + "&conta=2&valor=2&fence=" + f, token: "server", status: 400, code: -12},
	})
	if balances, holders := s.Balances(t); balances[1] != 1000 || holders[1] != "H" {
		t.Fatalf("a refused commit changed account 2: %d %q", balances[1], holders[1])
	}
}
