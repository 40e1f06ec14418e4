package business_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/business"
	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/wire"
)

// xfer is one transfer of a test's batch.
type xfer struct {
	ContaOrig int64 `json:"conta_orig"`
	ContaDest int64 `json:"conta_dest"`
	Valor     int64 `json:"valor"`
	Linked    bool  `json:"linked,omitempty"`
}

// batchResult is one element of a batch answer's results: exactly these
// fields, no other.
type batchResult struct {
	SaldoOrig *int64 `json:"saldo_orig"`
	SaldoDest *int64 `json:"saldo_dest"`
	ErrorCode *int64 `json:"error_code"`
	Error     string `json:"error"`
}

// batchAnswer is an answer of POST /transferencias: a batch's results, or
// the refusal of the whole request.
type batchAnswer struct {
	Applied   *int64        `json:"applied"`
	Results   []batchResult `json:"results"`
	ErrorCode *int64        `json:"error_code"`
	Error     string        `json:"error"`
}

type batchReply struct {
	status int
	body   string
	ans    batchAnswer
	res    result // the same, for wantError
}

// postBatch POSTs body to url's /transferencias with token tok ("" none)
// and extra header lines "Name: value"; it decodes the answer strictly.
func postBatch(t testing.TB, url, tok string, body []byte, headers ...string) batchReply {
	t.Helper()
	r, err := tryPostBatch(url, tok, body, headers...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tryPostBatch is postBatch, for goroutines other than the test's.
func tryPostBatch(url, tok string, body []byte, headers ...string) (batchReply, error) {
	req, err := http.NewRequest(http.MethodPost, url+business.RouteBatch, bytes.NewReader(body))
	if err != nil {
		return batchReply{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set(wire.HeaderToken, tok)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return batchReply{}, fmt.Errorf("POST %s: %w", business.RouteBatch, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return batchReply{}, err
	}
	r := batchReply{status: resp.StatusCode, body: string(b)}
	r.res = result{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: string(b)}
	if r.res.contentType != "application/json" {
		return r, fmt.Errorf("content type %q: %.200s", r.res.contentType, b)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&r.ans); err != nil {
		return r, fmt.Errorf("answer %.300s: %w", b, err)
	}
	if d.More() {
		return r, fmt.Errorf("answer %.300s: more than one JSON value", b)
	}
	r.res.ans.ErrorCode, r.res.ans.Error = r.ans.ErrorCode, r.ans.Error
	return r, nil
}

// encodeBatch writes a batch as a JSON array.
func encodeBatch(_ testing.TB, batch []xfer) []byte {
	b, err := json.Marshal(batch)
	if err != nil {
		panic(err) // plain integers and booleans
	}
	return b
}

// applied and refused are the expected results of a batch.
func applied(orig, dest int64) batchResult { return batchResult{SaldoOrig: &orig, SaldoDest: &dest} }
func refused(code teller.Code) batchResult {
	c := int64(code)
	return batchResult{ErrorCode: &c}
}

// wantBatch checks a 200 answer: its applied count and every result.
func wantBatch(t testing.TB, r batchReply, want ...batchResult) {
	t.Helper()
	if r.status != 200 || r.ans.Applied == nil || r.ans.ErrorCode != nil {
		t.Fatalf("status %d, want 200 with results: %.500s", r.status, r.body)
	}
	if len(r.ans.Results) != len(want) {
		t.Fatalf("%d results, want %d: %.500s", len(r.ans.Results), len(want), r.body)
	}
	n := int64(0)
	for i, w := range want {
		g := r.ans.Results[i]
		switch {
		case w.ErrorCode == nil:
			n++
			if g.ErrorCode != nil || g.SaldoOrig == nil || g.SaldoDest == nil || *g.SaldoOrig != *w.SaldoOrig || *g.SaldoDest != *w.SaldoDest {
				t.Errorf("results[%d] = %s, want applied with saldo_orig %d, saldo_dest %d", i, fmtResult(g), *w.SaldoOrig, *w.SaldoDest)
			}
		default:
			if g.ErrorCode == nil || *g.ErrorCode != *w.ErrorCode || g.Error == "" || g.SaldoOrig != nil || g.SaldoDest != nil {
				t.Errorf("results[%d] = %s, want refused with error_code %d (%v) and a message", i, fmtResult(g), *w.ErrorCode, teller.Code(*w.ErrorCode))
			}
		}
	}
	if *r.ans.Applied != n {
		t.Errorf("applied = %d, want %d", *r.ans.Applied, n)
	}
}

func fmtResult(r batchResult) string {
	b, _ := json.Marshal(r)
	return string(b)
}

func TestBatchSuccess(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	bs := startBusiness(t, data, businesstest.Options{})
	r := postBatch(t, bs.URL, token, encodeBatch(t, []xfer{
		{1, 2, 100, false},
		{2, 3, 1100, false}, // all of 2's balance, the 100 just received included
		{3, 1, 50, false},
		{4, 5, 1, true},
		{5, 4, 1, false},
	}))
	wantBatch(t, r, applied(900, 1100), applied(0, 2100), applied(2050, 950), applied(999, 1001), applied(1000, 1000))
	checkBank(t, data, with(uniform(10, 1000), 1, 950, 2, 0, 3, 2050))

	// A batch of one, written with whitespace and fields in any order.
	r = postBatch(t, bs.URL, token, []byte(" [\n  {\"valor\": 50, \"conta_dest\": 2, \"conta_orig\": 1, \"linked\": false}\n]\n"))
	wantBatch(t, r, applied(900, 50))
	checkBank(t, data, with(uniform(10, 1000), 1, 900, 2, 50, 3, 2050))
}

// TestBatchRules: a transfer that breaks a rule is refused in its result
// with the single route's code, and the batch goes on.
func TestBatchRules(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	bs := startBusiness(t, data, businesstest.Options{})
	r := postBatch(t, bs.URL, token, encodeBatch(t, []xfer{
		{0, 2, 10, false},
		{1, -3, 10, false},
		{1, 2, 0, false},
		{1, 2, -5, false},
		{3, 3, 10, false},
		{1, 2, 10, false},
	}))
	wantBatch(t, r, refused(teller.InvalidAccount), refused(teller.InvalidAccount), refused(teller.InvalidValue),
		refused(teller.InvalidValue), refused(teller.SameAccount), applied(990, 1010))
	checkBank(t, data, with(uniform(10, 1000), 1, 990, 2, 1010))

	// Every transfer refused by a rule: 200, nothing applied.
	r = postBatch(t, bs.URL, token, encodeBatch(t, []xfer{{2, 2, 1, false}}))
	wantBatch(t, r, refused(teller.SameAccount))
	checkBank(t, data, with(uniform(10, 1000), 1, 990, 2, 1010))
}

// TestBatchLinkedChainFailsWhole: a chain with a refused transfer is
// refused whole (the others LINKED_EVENT_FAILED), the balances as if it
// had not been there; the transfers around it are applied.
func TestBatchLinkedChainFailsWhole(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	bs := startBusiness(t, data, businesstest.Options{})
	r := postBatch(t, bs.URL, token, encodeBatch(t, []xfer{
		{1, 2, 100, false},  // applied
		{3, 4, 500, true},   // chain: applied, then taken back
		{4, 5, 1500, true},  // applied (4 holds 1500), then taken back
		{5, 6, 9999, false}, // 5 holds 2500: refused, and so its chain
		{6, 7, 10, false},   // applied, on the balances without the chain
	}))
	wantBatch(t, r, applied(900, 1100), refused(teller.LinkedFailed), refused(teller.LinkedFailed),
		refused(teller.InsufficientFunds), applied(990, 1010))
	checkBank(t, data, with(uniform(10, 1000), 1, 900, 2, 1100, 6, 990, 7, 1010))

	// A chain refused before any balance (a rule) is refused whole too.
	r = postBatch(t, bs.URL, token, encodeBatch(t, []xfer{{8, 9, 1, true}, {9, 9, 1, true}, {9, 10, 1, false}, {10, 8, 5, false}}))
	wantBatch(t, r, refused(teller.LinkedFailed), refused(teller.SameAccount), refused(teller.LinkedFailed), applied(995, 1005))
	checkBank(t, data, with(uniform(10, 1000), 1, 900, 2, 1100, 6, 990, 7, 1010, 10, 995, 8, 1005))

	// A chain that succeeds is applied whole.
	r = postBatch(t, bs.URL, token, encodeBatch(t, []xfer{{3, 4, 1000, true}, {4, 5, 2000, true}, {5, 3, 3000, false}}))
	wantBatch(t, r, applied(0, 2000), applied(0, 3000), applied(0, 3000))
	checkBank(t, data, with(uniform(10, 1000), 1, 900, 2, 1100, 6, 990, 7, 1010, 10, 995, 8, 1005, 3, 3000, 4, 0, 5, 0))
}

// TestBatchOpenChain: a batch whose last transfer is linked: that
// transfer is LINKED_CHAIN_OPEN and the rest of its chain
// LINKED_EVENT_FAILED; what came before the chain is applied.
func TestBatchOpenChain(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	bs := startBusiness(t, data, businesstest.Options{})
	r := postBatch(t, bs.URL, token, encodeBatch(t, []xfer{{1, 2, 10, false}, {2, 3, 20, true}, {3, 4, 30, true}}))
	wantBatch(t, r, applied(990, 1010), refused(teller.LinkedFailed), refused(teller.LinkedOpen))
	checkBank(t, data, with(uniform(10, 1000), 1, 990, 2, 1010))

	r = postBatch(t, bs.URL, token, encodeBatch(t, []xfer{{1, 2, 10, true}}))
	wantBatch(t, r, refused(teller.LinkedOpen))
	checkBank(t, data, with(uniform(10, 1000), 1, 990, 2, 1010))
}

// TestBatchInsufficientFundsMidBatch: a transfer refused for want of
// funds changes nothing, and the later transfers are applied on the
// balances it left.
func TestBatchInsufficientFundsMidBatch(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	bs := startBusiness(t, data, businesstest.Options{})
	r := postBatch(t, bs.URL, token, encodeBatch(t, []xfer{
		{1, 2, 600, false},
		{1, 3, 600, false}, // 1 holds 400
		{1, 3, 400, false},
		{2, 1, 1600, false},
		{2, 1, 1, false}, // 2 holds 0
	}))
	wantBatch(t, r, applied(400, 1600), refused(teller.InsufficientFunds), applied(0, 1400), applied(0, 1600),
		refused(teller.InsufficientFunds))
	checkBank(t, data, with(uniform(10, 1000), 1, 1600, 2, 0, 3, 1400))
}

// TestBatchOverflow: a credit past int64 refuses its transfer only.
func TestBatchOverflow(t *testing.T) {
	const big = 1<<63 - 1 - 5
	data := dataservertest.Start(t, dataservertest.Options{Accounts: 3, InitialBalance: big})
	bs := startBusiness(t, data, businesstest.Options{})
	r := postBatch(t, bs.URL, token, encodeBatch(t, []xfer{{1, 2, 6, false}, {1, 2, 5, false}}))
	wantBatch(t, r, refused(teller.Overflow), applied(big-5, big+5))
	checkBank(t, data, []int64{big - 5, big + 5, big})
}

// TestBatchNotFound: an account the data server does not know refuses the
// transfers that name it (and their chains), not the batch.
//
// It needs the data server to name the missing account in its refusal
// of /getLocks (the teller's accountOf), which is the data server's part
// of batches.
func TestBatchNotFound(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	bs := startBusiness(t, data, businesstest.Options{})
	r := postBatch(t, bs.URL, token, encodeBatch(t, []xfer{
		{1, 2, 10, false},
		{1, 11, 10, false},
		{3, 4, 10, true},
		{4, 99, 10, false},
		{99, 5, 10, false},
		{5, 6, 10, false},
	}))
	wantBatch(t, r, applied(990, 1010), refused(teller.NotFound), refused(teller.LinkedFailed), refused(teller.NotFound),
		refused(teller.NotFound), applied(990, 1010))
	checkBank(t, data, with(uniform(10, 1000), 1, 990, 2, 1010, 5, 990, 6, 1010))

	// Only missing accounts: every transfer refused, 200.
	r = postBatch(t, bs.URL, token, encodeBatch(t, []xfer{{11, 12, 1, false}}))
	wantBatch(t, r, refused(teller.NotFound))
}

func TestBatchBadBodies(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	bs := startBusiness(t, data, businesstest.Options{})
	const one = `{"conta_orig":1,"conta_dest":2,"valor":3}`
	for _, tt := range []struct {
		name, body, want string
	}{
		{"no body", ``, "JSON array"},
		{"an object", one, "JSON array"},
		{"a number", `5`, "JSON array"},
		{"empty", `[]`, "empty array"},
		{"not objects", `[1,2]`, "transfers[0]: want an object"},
		{"unknown field", `[` + one + `,{"conta_orig":1,"conta_dest":2,"valor":3,"memo":"x"}]`, `transfers[1]: unknown field "memo"`},
		{"duplicate field", `[{"conta_orig":1,"conta_dest":2,"valor":3,"valor":1000}]`, `transfers[0]: "valor" given twice`},
		{"missing field", `[` + one + `,` + one + `,{"conta_orig":1,"valor":3}]`, `transfers[2]: no "conta_dest"`},
		{"fraction", `[{"conta_orig":1,"conta_dest":2,"valor":2.5}]`, `transfers[0]: "valor" must be an integer`},
		{"exponent", `[{"conta_orig":1,"conta_dest":2,"valor":1e2}]`, `"valor" must be an integer`},
		{"beyond int64", `[{"conta_orig":1,"conta_dest":2,"valor":9223372036854775808}]`, `"valor" must be an integer`},
		{"a string", `[{"conta_orig":"1","conta_dest":2,"valor":3}]`, `"conta_orig" must be an integer`},
		{"null", `[{"conta_orig":1,"conta_dest":null,"valor":3}]`, `"conta_dest" must be an integer`},
		{"linked not a bool", `[{"conta_orig":1,"conta_dest":2,"valor":3,"linked":1}]`, `"linked" must be true or false`},
		{"trailing data", `[` + one + `]{}`, "data after the array"},
		{"two arrays", `[` + one + `] [` + one + `]`, "data after the array"},
		{"trailing comma", `[` + one + `,]`, "transfers[1]: want an object"},
		{"unterminated", `[` + one, "transfers[0]: want ',' or ']'"},
		{"deep nesting", strings.Repeat("[", 10000), "transfers[0]: want an object"},
		{"invalid UTF-8 field", "[{\"\xff\xfe\":1}]", "unknown field"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := postBatch(t, bs.URL, token, []byte(tt.body))
			wantError(t, r.res, 400, int64(teller.BadRequest))
			if !strings.Contains(r.ans.Error, tt.want) {
				t.Errorf("message %q does not say %q", r.ans.Error, tt.want)
			}
		})
	}
	checkBank(t, data, uniform(10, 1000))
}

// TestBatchLimits: 8190 transfers are one batch, 8191 are refused; a body
// over business.MaxBody is refused 413 before it is read.
func TestBatchLimits(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	bs := startBusiness(t, data, businesstest.Options{})
	batch := make([]xfer, business.MaxBatch+1)
	for i := range batch {
		a := int64(i%10) + 1
		batch[i] = xfer{a, a%10 + 1, 1, false} // round the ten accounts: every balance unchanged
	}
	r := postBatch(t, bs.URL, token, encodeBatch(t, batch))
	wantError(t, r.res, 400, int64(teller.BadRequest))
	if !strings.Contains(r.ans.Error, "more than 8190") {
		t.Errorf("message %q", r.ans.Error)
	}
	checkBank(t, data, uniform(10, 1000))

	r = postBatch(t, bs.URL, token, encodeBatch(t, batch[:business.MaxBatch]))
	if r.status != 200 || r.ans.Applied == nil || *r.ans.Applied != business.MaxBatch || len(r.ans.Results) != business.MaxBatch {
		t.Fatalf("a batch of %d: %d, applied %v, %d results: %.300s", business.MaxBatch, r.status, r.ans.Applied, len(r.ans.Results), r.body)
	}
	// 8190 = 819 rounds of the ten accounts: each ends where it began.
	checkBank(t, data, uniform(10, 1000))

	big := append([]byte("["+strings.Repeat(" ", business.MaxBody)), []byte(`{"conta_orig":1,"conta_dest":2,"valor":3}]`)...)
	status, body := raw(t, bs.Addr, "POST "+business.RouteBatch+" HTTP/1.1\r\nHost: a\r\ntoken: ba0f\r\nContent-Type: application/json\r\n"+
		fmt.Sprintf("Content-Length: %d\r\n\r\n", len(big))+string(big))
	var e answer
	if status != 413 || json.Unmarshal([]byte(body), &e) != nil || e.ErrorCode == nil || *e.ErrorCode != int64(teller.BadRequest) {
		t.Errorf("a body of %d bytes: %d %s, want 413 BAD_REQUEST", len(big), status, body)
	}
	checkBank(t, data, uniform(10, 1000))
}

// TestBatchAuth: the token is checked as on the other routes, before the
// body; GET is not the batch route's method.
func TestBatchAuth(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	bs := startBusiness(t, data, businesstest.Options{})
	good := encodeBatch(t, []xfer{{1, 2, 10, false}})
	for _, tok := range []string{"", "nope", "BA0F"} {
		for _, body := range [][]byte{good, []byte(`not json`)} {
			r := postBatch(t, bs.URL, tok, body)
			wantError(t, r.res, 401, int64(teller.Unauthorized))
		}
	}
	r := postBatch(t, bs.URL, token, good, "token: "+token)
	wantError(t, r.res, 400, int64(teller.BadRequest))
	if !strings.Contains(r.ans.Error, "token") {
		t.Errorf("repeated token: message %q", r.ans.Error)
	}
	for _, method := range []string{http.MethodGet, http.MethodPut} {
		wantError(t, do(t, method, bs.URL+business.RouteBatch, token), 405, int64(teller.BadRequest))
	}
	checkBank(t, data, uniform(10, 1000))
}

// TestBatchIdempotencyKeyRefused: batches are not kept under keys, so a
// key is refused, valid or not, and nothing is applied.
func TestBatchIdempotencyKeyRefused(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	bs := startBusiness(t, data, businesstest.Options{})
	good := encodeBatch(t, []xfer{{1, 2, 10, false}})
	for _, key := range []string{"k1", "", strings.Repeat("k", 200)} {
		r := postBatch(t, bs.URL, token, good, wire.HeaderIdempotencyKey+": "+key)
		wantError(t, r.res, 400, int64(teller.BadRequest))
		if !strings.Contains(r.ans.Error, "Idempotency-Key") {
			t.Errorf("key %q: message %q does not name the header", key, r.ans.Error)
		}
	}
	checkBank(t, data, uniform(10, 1000))
}

func TestBatchOperationLog(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	clock := time.Date(2022, 5, 22, 2, 40, 5, 0, time.Local)
	bs := startBusiness(t, data, businesstest.Options{Now: func() time.Time { return clock }})
	three := encodeBatch(t, []xfer{{1, 2, 10, false}, {2, 2, 1, false}, {3, 4, 5000, false}})
	postBatch(t, bs.URL, token, three)
	postBatch(t, bs.URL, "nope", three)
	postBatch(t, bs.URL, token, []byte(`[{"conta_orig":1,"conta_dest":2,"valor":1},{"x":1}]`))
	postBatch(t, bs.URL, token, three, wire.HeaderIdempotencyKey+": k")
	want := []string{
		"transferencias, 3",
		"transferencias, 0, UNAUTHORIZED", // refused before the body is read
		"transferencias, 1, BAD_REQUEST",
		"transferencias, 0, BAD_REQUEST",
	}
	lines := bs.LogLines()
	if len(lines) != len(want) {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i, w := range want {
		if w = fmt.Sprintf("05/22/2022 02:40:05, %d, 127.0.0.1, %s", i+1, w); lines[i] != w {
			t.Errorf("line %d = %q, want %q", i+1, lines[i], w)
		}
	}
}

// TestBatchConservation: batches (linked chains and refusals among them)
// and single transfers from concurrent clients on three business servers
// over six accounts: the total never changes, no balance is negative, no
// lock is left held, and every batch answer's balances are consistent
// with its own transfers.
func TestBatchConservation(t *testing.T) {
	const (
		accounts = 6
		initial  = 1000
		clients  = 12
	)
	duration := 2 * time.Second
	if testing.Short() {
		duration = 500 * time.Millisecond
	}
	data := dataservertest.Start(t, dataservertest.Options{Accounts: accounts, InitialBalance: initial})
	var servers []*businesstest.Server
	for range 3 {
		servers = append(servers, startBusiness(t, data, businesstest.Options{LockWait: 5 * time.Second}))
	}
	var (
		wg                 sync.WaitGroup
		batches, transfers atomic.Int64
		failures           = make(chan string, 100)
	)
	fail := func(format string, args ...any) {
		select {
		case failures <- fmt.Sprintf(format, args...):
		default:
		}
	}
	deadline := time.Now().Add(duration)
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for time.Now().Before(deadline) {
				url := servers[rng.IntN(len(servers))].URL
				if rng.IntN(4) == 0 {
					a := 1 + rng.Int64N(accounts)
					b := 1 + (a+rng.Int64N(accounts-1))%accounts
					r, err := tryDo(http.MethodPost, fmt.Sprintf("%s/transferencia/%d/%d/%d", url, a, b, 1+rng.Int64N(300)), token)
					if err != nil || (r.status != 200 && r.status != 409 && r.status != 403) {
						fail("transferencia: %v %d %s", err, r.status, r.body)
					}
					continue
				}
				batch := make([]xfer, 1+rng.IntN(12))
				for i := range batch {
					a := 1 + rng.Int64N(accounts)
					b := 1 + (a+rng.Int64N(accounts-1))%accounts
					batch[i] = xfer{a, b, 1 + rng.Int64N(400), rng.IntN(3) == 0 && i < len(batch)-1}
				}
				r, err := tryPostBatch(url, token, encodeBatch(t, batch))
				switch {
				case err != nil:
					fail("batch: %v", err)
					continue
				case r.status == 403:
					continue // locks not had in time
				case r.status != 200:
					fail("batch: %d %s", r.status, r.body)
					continue
				}
				batches.Add(1)
				transfers.Add(*r.ans.Applied)
				if msg := checkBatchAnswer(batch, r.ans); msg != "" {
					fail("batch %+v: %s: %s", batch, msg, r.body)
				}
			}
		})
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	if batches.Load() < 10 {
		t.Errorf("only %d batches answered 200", batches.Load())
	}
	t.Logf("%d batches, %d transfers applied", batches.Load(), transfers.Load())
	checkTotal(t, data, accounts*initial)
}

// checkBatchAnswer checks a batch's answer against its transfers, without
// the balances before it (other clients run between batches): every
// linked chain is applied whole or refused whole, and within the batch,
// each applied transfer's balances follow from the previous applied
// transfer's on the same accounts.
func checkBatchAnswer(batch []xfer, a batchAnswer) string {
	if len(a.Results) != len(batch) {
		return fmt.Sprintf("%d results for %d transfers", len(a.Results), len(batch))
	}
	last := map[int64]int64{} // account -> balance after the last applied transfer naming it
	var n int64
	start := 0
	for i, tr := range batch {
		r := a.Results[i]
		if r.ErrorCode == nil {
			n++
			if r.SaldoOrig == nil || r.SaldoDest == nil || *r.SaldoOrig < 0 || *r.SaldoDest < 0 {
				return fmt.Sprintf("results[%d]: applied without balances, or negative", i)
			}
			if b, ok := last[tr.ContaOrig]; ok && b-tr.Valor != *r.SaldoOrig {
				return fmt.Sprintf("results[%d]: saldo_orig %d, but account %d held %d", i, *r.SaldoOrig, tr.ContaOrig, b)
			}
			if b, ok := last[tr.ContaDest]; ok && b+tr.Valor != *r.SaldoDest {
				return fmt.Sprintf("results[%d]: saldo_dest %d, but account %d held %d", i, *r.SaldoDest, tr.ContaDest, b)
			}
			last[tr.ContaOrig], last[tr.ContaDest] = *r.SaldoOrig, *r.SaldoDest
		}
		if tr.Linked && i < len(batch)-1 {
			continue
		}
		// The chain [start, i]: all applied or none.
		ok := a.Results[start].ErrorCode == nil
		for j := start; j <= i; j++ {
			if (a.Results[j].ErrorCode == nil) != ok {
				return fmt.Sprintf("the chain %d..%d applied in part", start, i)
			}
		}
		start = i + 1
	}
	if a.Applied == nil || *a.Applied != n {
		return fmt.Sprintf("applied %v, but %d results applied", a.Applied, n)
	}
	return ""
}

// TestBatchManyAccounts: a batch may name more accounts than one lock of
// a single operation (teller.MaxLegs, 16) takes: here 1000, in a batch of
// MaxBatch transfers round them, with one account missing.
//
// It needs the data server's part of batches: /getLocks and /commit of up
// to teller.MaxAccounts accounts.
func TestBatchManyAccounts(t *testing.T) {
	const accounts = 1000
	data := dataservertest.Start(t, dataservertest.Options{Accounts: accounts})
	bs := startBusiness(t, data, businesstest.Options{})
	batch := make([]xfer, business.MaxBatch)
	want := make([]batchResult, len(batch))
	bal := uniform(accounts, 1000)
	for i := range batch {
		a := int64(i%accounts) + 1
		b := a%accounts + 1
		batch[i] = xfer{a, b, 7, false}
		if a == 500 || b == 500 {
			batch[i].ContaDest = accounts + 1 // no such account
			want[i] = refused(teller.NotFound)
			continue
		}
		bal[a-1] -= 7
		bal[b-1] += 7
		want[i] = applied(bal[a-1], bal[b-1])
	}
	r := postBatch(t, bs.URL, token, encodeBatch(t, batch))
	wantBatch(t, r, want...)
	checkBank(t, data, bal)
}
