package dataserver_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bank/gobank/http/auth"
	"github.com/bank/gobank/http/dataserver/dataservertest"
)

// originalBusiness replays, request by request, what the original
// implementation's business_server.py sends to its data server: the same
// routes, parameters, headers and order, and the same use of the answers
// (it reads error_code only after getLock, and ignores the answers of
// setSaldo and unLock). It is a port of its request sequence, not a
// business server: each operation returns the HTTP status the original
// would answer its client.
type originalBusiness struct {
	dataURL string
	ip      string // id_negoc: the original sends HOST_IP:PORT
}

// errAbort is an operation that the original aborts: urllib raises on a
// non-2xx answer, and a missing "saldo" raises KeyError; Flask answers 500.
type errAbort struct{ why string }

func (e errAbort) Error() string { return e.why }

// doRequest is the original's do_request: GET with the client's token in
// the header "token" and the query urlencoded in the order given. Like
// urllib.request.urlopen, it fails on any status but 2xx.
func (b *originalBusiness) doRequest(token, endpoint string, query ...string) (map[string]any, int, error) {
	q := make([]string, 0, len(query)/2)
	for i := 0; i < len(query); i += 2 {
		q = append(q, url.QueryEscape(query[i])+"="+url.QueryEscape(query[i+1]))
	}
	req, err := http.NewRequest(http.MethodGet, b.dataURL+endpoint+"?"+strings.Join(q, "&"), nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("token", token)
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, resp.StatusCode, errAbort{fmt.Sprintf("%s: HTTP %d", endpoint, resp.StatusCode)}
	}
	var body map[string]any
	_ = json.Unmarshal(raw, &body) // json.loads is only called where the original reads the answer
	return body, resp.StatusCode, nil
}

// checkToken is the original's check_token: the token must be one of its
// own list (the demo tokens) and accepted by /autentica.
func (b *originalBusiness) checkToken(token string) int {
	if !slices.Contains(auth.DefaultClientTokens, token) {
		return 401
	}
	if _, status, err := b.doRequest(token, "/autentica", "id_negoc", b.ip); err != nil || status != 200 {
		return 401
	}
	return 200
}

func (b *originalBusiness) lockAccount(token string, acnt int64) (map[string]any, error) {
	body, _, err := b.doRequest(token, "/getLock", "id_negoc", b.ip, "conta", strconv.FormatInt(acnt, 10))
	return body, err
}

func (b *originalBusiness) unlockAccount(token string, acnt int64) error {
	_, _, err := b.doRequest(token, "/unLock", "id_negoc", b.ip, "conta", strconv.FormatInt(acnt, 10))
	return err
}

func (b *originalBusiness) getSaldo(token string, acnt int64) (int64, error) {
	body, _, err := b.doRequest(token, "/getSaldo", "id_negoc", b.ip, "conta", strconv.FormatInt(acnt, 10))
	if err != nil {
		return 0, err
	}
	saldo, ok := body["saldo"].(float64)
	if !ok {
		return 0, errAbort{"KeyError: 'saldo'"}
	}
	return int64(saldo), nil
}

// setSaldo ignores the answer, as the original's set_saldo does.
func (b *originalBusiness) setSaldo(token string, acnt, saldo int64) error {
	_, _, err := b.doRequest(token, "/setSaldo", "id_negoc", b.ip, "conta", strconv.FormatInt(acnt, 10),
		"valor", strconv.FormatInt(saldo, 10))
	return err
}

func hasError(body map[string]any) bool { _, ok := body["error_code"]; return ok }

// checkErrors is the original's check_errors: NOT_FOUND is 404, any other
// error_code 403.
func checkErrors(body map[string]any) int {
	if hasError(body) {
		if c, _ := body["error_code"].(float64); c == -4 {
			return 404
		}
		return 403
	}
	return 200
}

// status runs the steps of one operation in order, stopping at the first
// abort (500) or refusal, as the original's straight-line code does.
func status(steps ...func() (int, error)) int {
	for _, step := range steps {
		if st, err := step(); err != nil {
			return 500
		} else if st != 200 {
			return st
		}
	}
	return 200
}

func ok(err error) (int, error) { return 200, err }

// movement is the original's deposito (delta = valor) and saque (delta =
// -valor), whose code differs only in that sign.
func (b *originalBusiness) movement(token string, acnt, delta int64) int {
	var saldo int64
	return status(
		func() (int, error) { return b.checkToken(token), nil },
		func() (int, error) { r, err := b.lockAccount(token, acnt); return checkErrors(r), err },
		func() (st int, err error) { saldo, err = b.getSaldo(token, acnt); return 200, err },
		func() (int, error) { return ok(b.setSaldo(token, acnt, saldo+delta)) },
		func() (int, error) { return ok(b.unlockAccount(token, acnt)) },
	)
}

func (b *originalBusiness) transferencia(token string, orig, dest, amt int64) int {
	var saldo int64
	return status(
		func() (int, error) { return b.checkToken(token), nil },
		func() (int, error) { r, err := b.lockAccount(token, orig); return checkErrors(r), err },
		func() (int, error) {
			r, err := b.lockAccount(token, dest)
			if err == nil && hasError(r) { // the destination is locked: release the origin, 403
				if err := b.unlockAccount(token, orig); err != nil {
					return 500, err
				}
				return 403, nil
			}
			return 200, err
		},
		func() (st int, err error) { saldo, err = b.getSaldo(token, orig); return 200, err },
		func() (int, error) { return ok(b.setSaldo(token, orig, saldo-amt)) },
		func() (st int, err error) { saldo, err = b.getSaldo(token, dest); return 200, err },
		func() (int, error) { return ok(b.setSaldo(token, dest, saldo+amt)) },
		func() (int, error) { return ok(b.unlockAccount(token, orig)) },
		func() (int, error) { return ok(b.unlockAccount(token, dest)) },
	)
}

// TestOriginalBusinessServerConserves runs the original business server's
// exact request sequence against the data server in compatibility mode:
// an overdrawing transfer, a transfer to the same account and an
// overdrawing withdrawal must change the total only by deposits and
// withdrawals, as they did on the original data server (which let a
// balance go negative). Before the fix the data server refused the
// negative setSaldo, which the original ignores: the transfer credited the
// destination and left the origin untouched.
func TestOriginalBusinessServerConserves(t *testing.T) {
	s := dataservertest.Start(t, dataservertest.Options{AllowClientTokens: true})
	b := &originalBusiness{dataURL: s.URL, ip: "127.0.0.1:5001"}
	const token = "ba0f" // the original client's default
	sum := func() (total int64) {
		balances, holders := s.Balances(t)
		for i, v := range balances {
			if holders[i] != "" {
				t.Fatalf("account %d left locked by %q", i+1, holders[i])
			}
			total += v
		}
		return total
	}
	want := sum()
	for _, tc := range []struct {
		name     string
		run      func() int
		status   int             // as the original answers its client
		delta    int64           // deposits minus withdrawals
		balances map[int64]int64 // after, as on the original
	}{
		{"deposit", func() int { return b.movement(token, 1, 500) }, 200, 500, map[int64]int64{1: 1500}},
		{"overdrawing transfer", func() int { return b.transferencia(token, 2, 3, 5000) }, 200, 0, map[int64]int64{2: -4000, 3: 6000}},
		{"transfer to the same account", func() int { return b.transferencia(token, 4, 4, 5000) }, 200, 0, map[int64]int64{4: 1000}},
		{"overdrawing withdrawal", func() int { return b.movement(token, 5, -3000) }, 200, -3000, map[int64]int64{5: -2000}},
		{"transfer from an overdrawn account", func() int { return b.transferencia(token, 2, 6, 100) }, 200, 0, map[int64]int64{2: -4100, 6: 1100}},
		{"unknown origin", func() int { return b.transferencia(token, 99, 1, 10) }, 404, 0, map[int64]int64{1: 1500}},
		{"unknown destination", func() int { return b.transferencia(token, 1, 99, 10) }, 403, 0, map[int64]int64{1: 1500}},
	} {
		if got := tc.run(); got != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.status)
		}
		want += tc.delta
		if total := sum(); total != want {
			t.Errorf("%s: total %d, want %d: money was created or destroyed", tc.name, total, want)
			want = total
		}
		for id, wantBal := range tc.balances {
			if bal, err := b.getSaldo(token, id); err != nil || bal != wantBal {
				t.Errorf("%s: account %d holds %d (%v), want %d as on the original", tc.name, id, bal, err, wantBal)
			}
		}
	}
}

// TestDefaultModeRefusesNegativeBalances pins that the overdrafts of the
// compatibility mode stay there: by default a negative setSaldo is
// refused with INVALID_VALUE and changes nothing.
func TestDefaultModeRefusesNegativeBalances(t *testing.T) {
	s := dataservertest.Start(t, dataservertest.Options{})
	run(t, s, []step{
		{path: "/getLock?id_negoc=A&conta=1", token: "server", status: 200, body: `{"fence":*`},
		{path: "/setSaldo?id_negoc=A&conta=1&valor=-1", token: "server", status: 200, code: -3},
		{path: "/setSaldo?id_negoc=B&conta=2&valor=-1", token: "server", status: 200, code: -3},
		{path: "/unLock?id_negoc=A&conta=1", token: "server", status: 200, body: "{}"},
	})
	if balances, _ := s.Balances(t); balances[0] != 1000 || balances[1] != 1000 {
		t.Fatalf("refused negative writes changed balances: %v", balances[:2])
	}
}
