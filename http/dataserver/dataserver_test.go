package dataserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/store"
	"github.com/bank/gobank/http/auth"
	"github.com/bank/gobank/http/dataserver"
	"github.com/bank/gobank/http/dataserver/dataservertest"
)

// answer is a decoded data-server response.
type answer struct {
	status int
	body   map[string]any
	raw    string
}

func (a answer) code() int {
	c, ok := a.body["error_code"].(float64)
	if !ok {
		return 0
	}
	return int(c)
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func call(t *testing.T, method, url, token string) answer {
	t.Helper()
	return callBody(t, method, url, token, "")
}

func callBody(t *testing.T, method, url, token, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("token", token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, raw: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			t.Fatalf("%s %s: invalid JSON %q: %v", method, url, raw, err)
		}
	}
	return a
}

// step is one request of a table and what it must answer: status, and
// either error_code or the exact JSON body.
type step struct {
	method string // default GET
	path   string
	token  string // "server", "client", "unknown" or ""
	status int
	code   int    // expected error_code, 0 for none
	body   string // expected exact body when code is 0 and status is 200; a final * matches any rest
}

func run(t *testing.T, s *dataservertest.Server, steps []step) {
	t.Helper()
	for i, st := range steps {
		tok := map[string]string{"server": s.ServerToken, "client": "ba0f", "unknown": "nope", "": ""}[st.token]
		method := st.method
		if method == "" {
			method = http.MethodGet
		}
		a := call(t, method, s.URL+st.path, tok)
		if a.status != st.status {
			t.Errorf("step %d %s %s (%s token): status %d, want %d; body %s", i, method, st.path, st.token, a.status, st.status, a.raw)
			continue
		}
		if got := a.code(); got != st.code {
			t.Errorf("step %d %s %s: error_code %d, want %d; body %s", i, method, st.path, got, st.code, a.raw)
		}
		if st.code == 0 && st.body != "" && a.raw != st.body && !(strings.HasSuffix(st.body, "*") && strings.HasPrefix(a.raw, strings.TrimSuffix(st.body, "*"))) {
			t.Errorf("step %d %s %s: body %s, want %s", i, method, st.path, a.raw, st.body)
		}
		if st.status != 200 || st.code != 0 {
			if msg, _ := a.body["error"].(string); msg == "" {
				t.Errorf("step %d %s: refusal without a readable error: %s", i, st.path, a.raw)
			}
		}
	}
}

func TestContractRows(t *testing.T) {
	s := dataservertest.Start(t, dataservertest.Options{})
	run(t, s, []step{
		{path: "/status", status: 200},
		{path: "/autentica?id_negoc=c", token: "client", status: 200, body: "{}"},
		{path: "/autentica?id_negoc=c", token: "server", status: 200, body: "{}"},
		{path: "/autentica?id_negoc=c", token: "", status: 401, code: -8},
		{path: "/autentica?id_negoc=c", token: "unknown", status: 401, code: -8},
		{path: "/autentica", token: "client", status: 200, body: "{}"},

		{path: "/getSaldo?id_negoc=A&conta=5", token: "server", status: 200, body: `{"saldo":1000}`},
		{path: "/getSaldo?id_negoc=A", token: "server", status: 200, code: -2},
		{path: "/getSaldo?id_negoc=A&conta=", token: "server", status: 200, code: -2},
		{path: "/getSaldo?id_negoc=A&conta=abc", token: "server", status: 200, code: -2},
		{path: "/getSaldo?id_negoc=A&conta=11", token: "server", status: 200, code: -4},
		{path: "/getSaldo?id_negoc=A&conta=0", token: "server", status: 200, code: -4},
		{path: "/getSaldo?id_negoc=A&conta=-3", token: "server", status: 200, code: -4},

		{path: "/setSaldo?id_negoc=A&conta=5", token: "server", status: 200, code: -3},
		{path: "/setSaldo?id_negoc=A&conta=5&valor=abc", token: "server", status: 200, code: -3},
		{path: "/setSaldo?id_negoc=A&conta=5&valor=1.5", token: "server", status: 200, code: -3},
		{path: "/setSaldo?id_negoc=A&conta=5&valor=-1", token: "server", status: 200, code: -3},
		{path: "/setSaldo?id_negoc=A&conta=5&valor=99999999999999999999", token: "server", status: 200, code: -3},
		{path: "/setSaldo?id_negoc=A&valor=5", token: "server", status: 200, code: -2},
		{path: "/setSaldo?id_negoc=A&conta=42&valor=5", token: "server", status: 200, code: -4},
		{path: "/setSaldo?id_negoc=A&conta=5&valor=1500", token: "server", status: 200, body: "{}"},
		{path: "/getSaldo?id_negoc=B&conta=5", token: "server", status: 200, body: `{"saldo":1500}`},

		// Locks: re-entrant for the same id_negoc, fail-fast for another,
		// reads allowed while locked, writes refused.
		{path: "/getLock?id_negoc=A&conta=5", token: "server", status: 200, body: `{"fence":*`},
		{path: "/getLock?id_negoc=A&conta=5", token: "server", status: 200, body: `{"fence":*`},
		{path: "/getLock?id_negoc=B&conta=5", token: "server", status: 200, code: -1},
		{path: "/setSaldo?id_negoc=B&conta=5&valor=1", token: "server", status: 200, code: -1},
		{path: "/getSaldo?id_negoc=B&conta=5", token: "server", status: 200, body: `{"saldo":1500}`},
		{path: "/unLock?id_negoc=B&conta=5", token: "server", status: 200, code: -1},
		{path: "/setSaldo?id_negoc=A&conta=5&valor=1200", token: "server", status: 200, body: "{}"},
		{path: "/setLock?id_negoc=A&conta=5", token: "server", status: 200, body: "{}"},
		{path: "/getLock?id_negoc=B&conta=5", token: "server", status: 200, body: `{"fence":*`},
		{path: "/unLock?id_negoc=B&conta=5", token: "server", status: 200, body: "{}"},
		{path: "/unLock?id_negoc=B&conta=5", token: "server", status: 200, body: "{}"}, // already free: harmless
		{path: "/getLock?id_negoc=A&conta=77", token: "server", status: 200, code: -4},
		{path: "/getLock?id_negoc=A&conta=x", token: "server", status: 200, code: -2},

		// POST is served like GET.
		{method: "POST", path: "/getSaldo?id_negoc=A&conta=5", token: "server", status: 200, body: `{"saldo":1200}`},
		{method: "POST", path: "/status", status: 200},
	})
}

// TestCredentials checks every data route against every kind of token:
// only the server credential opens them.
func TestCredentials(t *testing.T) {
	s := dataservertest.Start(t, dataservertest.Options{})
	routes := []string{"/getSaldo", "/setSaldo", "/getLock", "/setLock", "/unLock"}
	var steps []step
	for _, r := range routes {
		p := r + "?id_negoc=A&conta=1&valor=0"
		steps = append(steps,
			step{path: p, token: "", status: 401, code: -8},
			step{path: p, token: "unknown", status: 401, code: -8},
			step{path: p, token: "client", status: 403, code: -8},
		)
	}
	run(t, s, steps)
	balances, holders := s.Balances(t)
	if balances[0] != 1000 || holders[0] != "" {
		t.Fatalf("refused requests changed account 1: balance %d, holder %q", balances[0], holders[0])
	}

	compat := dataservertest.Start(t, dataservertest.Options{AllowClientTokens: true})
	run(t, compat, []step{
		{path: "/getLock?id_negoc=A&conta=1", token: "client", status: 200, body: `{"fence":*`},
		{path: "/setSaldo?id_negoc=A&conta=1&valor=3", token: "client", status: 200, body: "{}"},
		{path: "/unLock?id_negoc=A&conta=1", token: "client", status: 200, body: "{}"},
		{path: "/getSaldo?id_negoc=A&conta=1", token: "unknown", status: 401, code: -8},
	})
}

func TestBadInput(t *testing.T) {
	s := dataservertest.Start(t, dataservertest.Options{})
	long := strings.Repeat("x", 300)
	run(t, s, []step{
		{path: "/getSaldo?id_negoc=A&conta=1&conta=2", token: "server", status: 400, code: -12},
		{path: "/setSaldo?id_negoc=A&conta=1&valor=5&valor=6", token: "server", status: 400, code: -12},
		{path: "/getLock?id_negoc=A&id_negoc=B&conta=1", token: "server", status: 400, code: -12},
		{path: "/getLock?conta=1", token: "server", status: 400, code: -12},
		{path: "/setSaldo?conta=1&valor=5", token: "server", status: 400, code: -12},
		{path: "/unLock?conta=1", token: "server", status: 400, code: -12},
		{path: "/getLock?conta=1&id_negoc=" + long, token: "server", status: 400, code: -12},
		{path: "/nope", token: "server", status: 404, code: -12},
		{path: "/status/", status: 404, code: -12},
		{path: "/GETSALDO?conta=1", token: "server", status: 404, code: -12},
		{path: "/getSaldo/1", token: "server", status: 404, code: -12},
		{method: "PUT", path: "/getSaldo?conta=1", token: "server", status: 405, code: -12},
		{method: "DELETE", path: "/status", status: 405, code: -12},
		{path: "/getSaldo?id_negoc=A&conta=%00", token: "server", status: 200, code: -2},
		{path: "/getSaldo?id_negoc=A&conta=1%0a", token: "server", status: 200, code: -2},
	})

	// Oversized headers and request lines are refused before any handler.
	// The server answers 431 and closes while the client may still be
	// writing the rest, so the kernel can reset the connection before the
	// client reads the answer: a reset is a refusal too. That nothing ran is
	// proven below by the balances and /status.
	for name, mutate := range map[string]func(*http.Request){
		"header": func(r *http.Request) { r.Header.Set("X-Big", strings.Repeat("a", 64<<10)) },
		"query":  func(r *http.Request) { r.URL.RawQuery = "conta=1&id_negoc=" + strings.Repeat("b", 64<<10) },
	} {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/setSaldo?conta=1&valor=1&id_negoc=A", nil)
		req.Header.Set("token", s.ServerToken)
		mutate(req)
		resp, err := httpClient.Do(req)
		if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
			continue
		}
		if err != nil {
			t.Fatalf("oversized %s: %v", name, err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("oversized %s: status %d, want a 4xx", name, resp.StatusCode)
		}
	}
	balances, holders := s.Balances(t)
	for i := range balances {
		if balances[i] != 1000 || holders[i] != "" {
			t.Fatalf("bad input changed account %d: %d, %q", i+1, balances[i], holders[i])
		}
	}
	if got := call(t, "GET", s.URL+"/status", ""); got.status != 200 {
		t.Fatalf("server unwell after bad input: %d", got.status)
	}
}

var logLine = regexp.MustCompile(`^(\d\d)/(\d\d)/(\d{4}) (\d\d):(\d\d):(\d\d), (\d+), ([^,]*), (\w+)((, [^,]*)*)$`)

func TestOperationLog(t *testing.T) {
	s := dataservertest.Start(t, dataservertest.Options{})
	run(t, s, []step{
		{path: "/getLock?id_negoc=10.0.0.7:5000&conta=5", token: "server", status: 200, body: `{"fence":*`},
		{path: "/getSaldo?id_negoc=10.0.0.7:5000&conta=5", token: "server", status: 200, body: `{"saldo":1000}`},
		{path: "/setSaldo?id_negoc=10.0.0.7:5000&conta=5&valor=500", token: "server", status: 200, body: "{}"},
		{path: "/setSaldo?id_negoc=other&conta=5&valor=1", token: "server", status: 200, code: -1},
		{path: "/unLock?id_negoc=10.0.0.7:5000&conta=5", token: "server", status: 200, body: "{}"},
		{path: "/getSaldo?id_negoc=x&conta=99", token: "server", status: 200, code: -4},
		{path: "/getSaldo?id_negoc=x&conta=1", token: "client", status: 403, code: -8},
	})
	want := []string{
		"10.0.0.7:5000, getLock, 5",
		"10.0.0.7:5000, getSaldo, 5, 1000",
		"10.0.0.7:5000, setSaldo, 5, 500",
		"other, setSaldo, 5, 1, LOCKED_ACCOUNT",
		"10.0.0.7:5000, unLock, 5",
		"x, getSaldo, 99, NOT_FOUND",
		"x, getSaldo, UNAUTHORIZED",
	}
	lines := strings.Split(strings.TrimSuffix(s.LogText(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i, line := range lines {
		m := logLine.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("line %q does not match the contract's format", line)
			continue
		}
		if n, _ := strconv.Atoi(m[7]); n != i+1 {
			t.Errorf("line %q: operation number %d, want %d", line, n, i+1)
		}
		if _, err := time.ParseInLocation("01/02/2006 15:04:05", line[:19], time.Local); err != nil {
			t.Errorf("line %q: timestamp: %v", line, err)
		}
		if rest := line[strings.Index(line, ", ")+2:]; !strings.HasSuffix(rest, want[i]) || !strings.HasPrefix(rest, m[7]+", ") {
			t.Errorf("line %q, want number %d then %q", line, i+1, want[i])
		}
	}
	if strings.Contains(s.LogText(), s.ServerToken) || strings.Contains(s.LogText(), "ba0f") {
		t.Error("a token reached the operation log")
	}
}

// faulty is an Accounts that fails in a chosen way; it stands in for the
// actors only where the real ones cannot be made to fail on demand.
type faulty struct{ err error }

func (f faulty) Do(int64, actors.Request) (actors.Reply, error) {
	if f.err == nil {
		panic("injected panic")
	}
	return actors.Reply{}, f.err
}

func (f faulty) Apply(context.Context, string, []actors.Change, bool, *store.Record) error {
	_, err := f.Do(0, actors.Request{})
	return err
}

func TestActorFailures(t *testing.T) {
	tokens, err := auth.NewTokens(auth.DefaultClientTokens...)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		err    error
		status int
	}{
		{"timeout", actors.ErrTimeout, 503},
		{"closed", actors.ErrClosed, 503},
		{"internal", actors.ErrInternal, 500},
		{"unexpected", errors.New("boom"), 500},
		{"panic", nil, 500},
	} {
		srv, err := dataserver.New(dataserver.Config{Accounts: faulty{tc.err}, ClientTokens: tokens, ServerToken: "secret"})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		url := "http://" + ln.Addr().String()
		a := call(t, "GET", url+"/getSaldo?id_negoc=A&conta=1", "secret")
		if a.status != tc.status || a.body["error"] == nil {
			t.Errorf("%s: status %d body %s, want %d with an error", tc.name, a.status, a.raw, tc.status)
		}
		if a := call(t, "GET", url+"/status", ""); a.status != 200 {
			t.Errorf("%s: server down afterwards: %d", tc.name, a.status)
		}
		_ = srv.Shutdown(t.Context())
	}
}

func TestNewValidates(t *testing.T) {
	tokens, _ := auth.NewTokens("a")
	bank, err := actors.New(actors.Config{Accounts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer bank.Close()
	for name, cfg := range map[string]dataserver.Config{
		"no accounts":          {ClientTokens: tokens, ServerToken: "s"},
		"no tokens":            {Accounts: bank, ServerToken: "s"},
		"no server credential": {Accounts: bank, ClientTokens: tokens},
		"blank credential":     {Accounts: bank, ClientTokens: tokens, ServerToken: " "},
	} {
		if _, err := dataserver.New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	if _, err := dataserver.New(dataserver.Config{Accounts: bank, ClientTokens: tokens, AllowClientTokens: true}); err == nil {
		t.Error("compatibility mode on accounts that cannot go negative: New succeeded")
	}
	overdraft, err := actors.New(actors.Config{Accounts: 1, Overdraft: true})
	if err != nil {
		t.Fatal(err)
	}
	defer overdraft.Close()
	if _, err := dataserver.New(dataserver.Config{Accounts: overdraft, ClientTokens: tokens, AllowClientTokens: true}); err != nil {
		t.Errorf("compatibility mode without a server credential: %v", err)
	}
}

// TestRepeatedToken sends the token header twice, with every pair of
// credentials and in either spelling of its name, to /autentica and to
// every data route: each is refused 400 BAD_REQUEST, as a repeated
// parameter is, whichever value comes first, and nothing is applied.
func TestRepeatedToken(t *testing.T) {
	s := dataservertest.Start(t, dataservertest.Options{})
	paths := []string{
		"/autentica?id_negoc=A",
		"/getSaldo?id_negoc=A&conta=1",
		"/setSaldo?id_negoc=A&conta=1&valor=5",
		"/getLock?id_negoc=A&conta=1",
		"/setLock?id_negoc=A&conta=1",
		"/unLock?id_negoc=A&conta=1",
		"/getLocks?id_negoc=A&conta=1&conta=2",
		"/commit?id_negoc=A&unlock=1&conta=1&valor=5&fence=1",
		"/idem?id_negoc=A&key=k",
		"/snapshot?id_negoc=A",
	}
	pairs := []struct {
		name  string
		lines map[string][]string // header name as sent -> values
	}{
		{"server, server", map[string][]string{"token": {s.ServerToken, s.ServerToken}}},
		{"server, client", map[string][]string{"token": {s.ServerToken, "ba0f"}}},
		{"client, server", map[string][]string{"token": {"ba0f", s.ServerToken}}},
		{"client, client", map[string][]string{"token": {"ba0f", "ba0f"}}},
		{"server, unknown", map[string][]string{"token": {s.ServerToken, "nope"}}},
		{"server, empty", map[string][]string{"token": {s.ServerToken, ""}}},
		{"token and Token", map[string][]string{"token": {s.ServerToken}, "Token": {s.ServerToken}}},
	}
	for _, p := range paths {
		for _, pair := range pairs {
			req, err := http.NewRequest(http.MethodGet, s.URL+p, nil)
			if err != nil {
				t.Fatal(err)
			}
			for name, values := range pair.lines {
				req.Header[name] = values // sent as given: one line per value
			}
			resp, err := httpClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var body map[string]any
			_ = json.Unmarshal(raw, &body)
			if resp.StatusCode != 400 || body["error_code"] != float64(-12) {
				t.Errorf("%s with the token twice (%s): %d %s, want 400 and error_code -12", p, pair.name, resp.StatusCode, raw)
			}
		}
	}
	balances, holders := s.Balances(t)
	for i := range balances {
		if balances[i] != 1000 || holders[i] != "" {
			t.Errorf("a request with the token twice changed account %d: %d, holder %q", i+1, balances[i], holders[i])
		}
	}
	// One token still works, and the refusals are in the operation log.
	run(t, s, []step{
		{path: "/autentica?id_negoc=A", token: "client", status: 200, body: "{}"},
		{path: "/getSaldo?id_negoc=A&conta=1", token: "server", status: 200, body: `{"saldo":1000}`},
	})
	if n := strings.Count(s.LogText(), "BAD_REQUEST"); n != len(paths)*len(pairs) {
		t.Errorf("%d refusals in the operation log, want %d:\n%s", n, len(paths)*len(pairs), s.LogText())
	}
}

// TestUnsyncedParam: a lock may say that a grant not yet durable will do
// (unsynced, for a business server; see wire.ParamUnsynced), once.
func TestUnsyncedParam(t *testing.T) {
	s := dataservertest.Start(t, dataservertest.Options{})
	run(t, s, []step{
		{path: "/getLock?id_negoc=A&conta=1&unsynced=1", token: "server", status: 200, body: `{"fence":*`},
		{path: "/getLocks?id_negoc=A&conta=1&conta=2&unsynced=true", token: "server", status: 200, body: `{"contas":[1,2],*`},
		{path: "/getLock?id_negoc=B&conta=3&unsynced=1&unsynced=0", token: "server", status: 400, code: -12},
		{path: "/getLocks?id_negoc=B&conta=3&unsynced=1&unsynced=1", token: "server", status: 400, code: -12},
	})
}
