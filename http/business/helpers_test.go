package business_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/wire"
)

// token is a client token the test data servers accept.
const token = "ba0f"

// httpClient is shared by the tests; its timeout turns a hung request into
// a test failure instead of a hung test.
var httpClient = &http.Client{
	Timeout: 20 * time.Second,
	Transport: &http.Transport{
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     30 * time.Second,
	},
}

// answer is any JSON body of the business server.
type answer struct {
	Conta     *int64 `json:"conta"`
	Valor     *int64 `json:"valor"`
	Saldo     *int64 `json:"saldo"`
	ContaOrig *int64 `json:"conta_orig"`
	ContaDest *int64 `json:"conta_dest"`
	SaldoOrig *int64 `json:"saldo_orig"`
	SaldoDest *int64 `json:"saldo_dest"`
	ErrorCode *int64 `json:"error_code"`
	Error     string `json:"error"`
}

type result struct {
	status      int
	contentType string
	body        string
	ans         answer
	elapsed     time.Duration
	replayed    bool // the header Idempotent-Replayed: true
}

// do sends one request; tok "" sends no token header.
func do(t testing.TB, method, url, tok string) result {
	t.Helper()
	r, err := tryDo(method, url, tok)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

func tryDo(method, url, tok string) (result, error) {
	return tryDoKey(method, url, tok, "")
}

// doKey sends one GET with the token and, when key is not empty, the
// header Idempotency-Key.
func doKey(t testing.TB, url, tok, key string) result {
	t.Helper()
	r, err := tryDoKey(http.MethodGet, url, tok, key)
	if err != nil {
		t.Fatalf("GET %s (key %q): %v", url, key, err)
	}
	return r
}

func tryDoKey(method, url, tok, key string) (result, error) {
	start := time.Now()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return result{}, err
	}
	if tok != "" {
		req.Header.Set("token", tok)
	}
	if key != "" {
		req.Header.Set(wire.HeaderIdempotencyKey, key)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{}, err
	}
	r := result{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: string(b), elapsed: time.Since(start),
		replayed: resp.Header.Get(wire.HeaderReplayed) == "true"}
	if strings.HasPrefix(r.contentType, "application/json") {
		if err := json.Unmarshal(b, &r.ans); err != nil {
			return r, err
		}
	}
	return r, nil
}

func get(t testing.TB, url string) result { t.Helper(); return do(t, http.MethodGet, url, token) }

// wantError checks a refusal: status, JSON error_code and a message.
func wantError(t testing.TB, r result, status int, code int64) {
	t.Helper()
	if r.status != status {
		t.Errorf("status = %d, want %d (body %s)", r.status, status, r.body)
	}
	if !strings.HasPrefix(r.contentType, "application/json") {
		t.Errorf("content type = %q, want JSON (body %q)", r.contentType, r.body)
	}
	if r.ans.ErrorCode == nil || *r.ans.ErrorCode != code {
		t.Errorf("error_code in %s, want %d", r.body, code)
	}
	if r.ans.Error == "" {
		t.Errorf("no error message in %s", r.body)
	}
}

func eq(t testing.TB, name string, got *int64, want int64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s missing, want %d", name, want)
	} else if *got != want {
		t.Errorf("%s = %d, want %d", name, *got, want)
	}
}

// checkBank checks the data server's balances and that no lock is held.
func checkBank(t testing.TB, data *dataservertest.Server, want []int64) {
	t.Helper()
	balances, holders := data.Balances(t)
	for i, h := range holders {
		if h != "" {
			t.Errorf("account %d still locked by %q", i+1, h)
		}
	}
	if want == nil {
		return
	}
	for i := range want {
		if balances[i] != want[i] {
			t.Errorf("balances = %v, want %v", balances, want)
			return
		}
	}
}

// checkTotal checks that the data server's balances sum to want, none
// negative, and that no lock is held; it returns the balances.
func checkTotal(t testing.TB, data *dataservertest.Server, want int64) []int64 {
	t.Helper()
	balances, holders := data.Balances(t)
	var total int64
	for i, b := range balances {
		total += b
		if b < 0 {
			t.Errorf("account %d has a negative balance %d", i+1, b)
		}
		if holders[i] != "" {
			t.Errorf("account %d still locked by %q", i+1, holders[i])
		}
	}
	if total != want {
		t.Errorf("balances sum to %d, want %d: %v", total, want, balances)
	}
	return balances
}

// uniform returns n balances of v.
func uniform(n int, v int64) []int64 {
	b := make([]int64, n)
	for i := range b {
		b[i] = v
	}
	return b
}

// with returns a copy of b with the given account (1-based) set.
func with(b []int64, kv ...int64) []int64 {
	c := append([]int64(nil), b...)
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i]-1] = kv[i+1]
	}
	return c
}

// startBusiness starts a business server whose test ends by closing the
// test client's idle connections first: fasthttp counts a connection that
// never carried a request as busy for its first 5s, and the Go client
// leaves such spare connections behind, which would stall Shutdown.
func startBusiness(t testing.TB, data *dataservertest.Server, opt businesstest.Options) *businesstest.Server {
	t.Helper()
	s := businesstest.Start(t, data, opt)
	t.Cleanup(httpClient.CloseIdleConnections)
	return s
}
