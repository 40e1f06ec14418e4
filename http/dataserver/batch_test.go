package dataserver_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/wire"
)

// postForm POSTs form as a form body to url and decodes the JSON answer.
func postForm(t *testing.T, url, token, form string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("token", token)
	req.Header.Set("Content-Type", wire.FormType)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("POST %s: %d %q: %v", url, resp.StatusCode, raw, err)
	}
	return resp.StatusCode, body
}

// TestBatchForms: a batch's /getLocks and /commit carry their many
// accounts in a form body, which a request line could not hold; a
// refusal names the account; the limits are teller.MaxAccounts and one
// place per parameter.
func TestBatchForms(t *testing.T) {
	const n = 300 // beyond what an 8 KiB request line holds with fences
	s := dataservertest.Start(t, dataservertest.Options{Accounts: n})
	tok := s.ServerToken
	var contas strings.Builder
	for id := 1; id <= n; id++ {
		contas.WriteString("&conta=" + strconv.Itoa(id))
	}
	form := contas.String()[1:]

	status, body := postForm(t, s.URL+"/getLocks?id_negoc=A", tok, form+"&wait=1s")
	fences, _ := body["fences"].([]any)
	if status != 200 || len(fences) != n {
		t.Fatalf("getLocks of %d accounts in a form: %d %v", n, status, body)
	}
	var commit strings.Builder
	for i, f := range fences {
		fence := strconv.FormatFloat(f.(float64), 'f', -1, 64)
		// Account 1 pays one to each of the others.
		valor := 1001
		if i == 0 {
			valor = 1000 - (n - 1)
		}
		commit.WriteString("conta=" + strconv.Itoa(i+1) + "&valor=" + strconv.Itoa(valor) + "&fence=" + fence + "&")
	}
	if status, body := postForm(t, s.URL+"/commit?id_negoc=A", tok, commit.String()+"unlock=1"); status != 200 || len(body) != 0 {
		t.Fatalf("commit of %d accounts in a form: %d %v", n, status, body)
	}
	balances, holders := s.Balances(t)
	var sum int64
	for i, b := range balances {
		sum += b
		if holders[i] != "" {
			t.Fatalf("account %d still held by %q after the commit released it", i+1, holders[i])
		}
	}
	if balances[0] != 1000-(n-1) || balances[n-1] != 1001 || sum != n*1000 {
		t.Fatalf("balances %d ... %d, sum %d: want %d ... 1001, sum %d", balances[0], balances[n-1], sum, 1000-(n-1), n*1000)
	}

	tooMany := strings.Repeat("conta=1&", teller.MaxAccounts+1)
	for _, tc := range []struct {
		name, url, form string
		status, code    int
		conta           float64
	}{
		{"an unknown account is named", "/getLocks?id_negoc=B", form + "&conta=" + strconv.Itoa(n+5), 200, int(teller.NotFound), n + 5},
		{"a held account is named", "/getLocks?id_negoc=B", "conta=7", 200, int(teller.LockedAccount), 0},
		{"a parameter in the query beside the form", "/getLocks?id_negoc=B&wait=1s", form, 400, int(teller.BadRequest), 0},
		{"a commit's parameter in the query beside the form", "/commit?id_negoc=B&unlock=1", "conta=1&valor=1&fence=1", 400, int(teller.BadRequest), 0},
		{"too many accounts", "/getLocks?id_negoc=B", tooMany, 400, int(teller.BadRequest), 0},
		{"an account twice", "/getLocks?id_negoc=B", form + "&conta=1", 400, int(teller.BadRequest), 0},
	} {
		if tc.name == "a held account is named" {
			if a := call(t, "GET", s.URL+"/getLock?id_negoc=A&conta=7", tok); a.status != 200 {
				t.Fatalf("getLock: %s", a.raw)
			}
			tc.conta = 7
		}
		status, body := postForm(t, s.URL+tc.url, tok, tc.form)
		code, _ := body["error_code"].(float64)
		conta, _ := body["conta"].(float64)
		if status != tc.status || int(code) != tc.code || conta != tc.conta {
			t.Errorf("%s: %d %v, want %d, error_code %d, conta %v", tc.name, status, body, tc.status, tc.code, tc.conta)
		}
	}
	if _, holders := s.Balances(t); holders[0] != "" || holders[6] != "A" {
		t.Fatalf("holders after the refusals: %q, want only account 7 held (by A)", holders[:10])
	}
}
