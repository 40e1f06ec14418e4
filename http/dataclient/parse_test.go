package dataclient_test

import (
	"slices"
	"testing"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/dataclient"
)

func TestParseAnswer(t *testing.T) {
	type A = dataclient.Answer
	tests := []struct {
		body string
		ok   bool
		want A
	}{
		{body: "{}", ok: true},
		{body: " {}\n", ok: true},
		{body: `{"saldo":1000}`, ok: true, want: A{Saldo: 1000, HasSaldo: true}},
		{body: `{"saldo":0}`, ok: true, want: A{HasSaldo: true}},
		{body: `{"saldo":-0}`, ok: true, want: A{HasSaldo: true}},
		{body: `{"saldo":9223372036854775807}`, ok: true, want: A{Saldo: 1<<63 - 1, HasSaldo: true}},
		{body: `{"saldo": 1000}` + "\n", ok: true, want: A{Saldo: 1000, HasSaldo: true}},
		{body: "{\n  \"saldo\": 5\n}\n", ok: true, want: A{Saldo: 5, HasSaldo: true}},
		{body: `{"fence":7,"saldo":1000,"expires_at":"2026-01-01T00:00:00Z","ttl_ms":9999}`, ok: true,
			want: A{Fence: 7, Saldo: 1000, HasSaldo: true}},
		{body: `{"error_code":-1,"error":"locked"}`, ok: true, want: A{Code: -1, HasCode: true}},
		{body: `{"error": "x \"quoted\" \\ ç", "error_code": -4}`, ok: true, want: A{Code: -4, HasCode: true}},
		{body: `{"saldo":5,"error_code":-1}`, ok: true, want: A{Saldo: 5, HasSaldo: true, Code: -1, HasCode: true}},
		{body: `{"other":true,"nested":{"a":[1,2]}}`, ok: true},
		{body: `{"saldo":1,"saldo":2}`, ok: true, want: A{Saldo: 2, HasSaldo: true}},
		{body: `{"saldo":9223372036854775808}`},
		{body: `{"saldo":1.5}`},
		{body: `{"saldo":1e3}`},
		{body: `{"saldo":"5"}`},
		{body: `{"saldo":01}`},
		{body: `{"saldo":-}`},
		{body: `{"saldo":null}`},
		{body: `{"fence":0}`},
		{body: `{"fence":-3}`},
		{body: `{"saldo":`},
		{body: `{"error_code":"x"}`},
		{body: `null`},
		{body: `[1]`},
		{body: ``},
		{body: `<html>`},
		{body: `{}{}`},
		{body: `{"saldo":5}x`},
	}
	for _, tt := range tests {
		got, ok := dataclient.ParseAnswer([]byte(tt.body))
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parseAnswer(%q) = %+v, %v; want %+v, %v", tt.body, got, ok, tt.want, tt.ok)
		}
		slow, slowOK := dataclient.ParseAnswerJSON([]byte(tt.body))
		if slowOK != ok || (ok && slow != got) {
			t.Errorf("parseAnswer(%q) = %+v, %v but encoding/json says %+v, %v", tt.body, got, ok, slow, slowOK)
		}
	}
	grant := []byte(`{"fence":7,"saldo":1000,"expires_at":"2026-01-01T00:00:00Z","ttl_ms":9999}`)
	if n := testing.AllocsPerRun(100, func() { dataclient.ParseAnswer(grant) }); n != 0 {
		t.Errorf("parsing a grant allocates %v times", n)
	}
}

// FuzzParseAnswer: the hand scanner never panics and agrees with
// encoding/json.
func FuzzParseAnswer(f *testing.F) {
	for _, s := range []string{"{}", `{"saldo":1}`, `{"error_code":-1,"error":"x"}`, `{"saldo":-0}`, "x",
		`{"fence":1,"saldo":2,"expires_at":"t","ttl_ms":3}`, `{"a":"\u00e7"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := dataclient.ParseAnswer(b)
		slow, slowOK := dataclient.ParseAnswerJSON(b)
		if ok != slowOK || (ok && got != slow) {
			t.Errorf("parseAnswer(%q) = %+v, %v but encoding/json says %+v, %v", b, got, ok, slow, slowOK)
		}
	})
}

// TestParseGrants: a /getLocks answer is accepted only when it names the
// accounts asked for, in order, each with a positive fence and a balance.
func TestParseGrants(t *testing.T) {
	contas := []int64{3, 7}
	tests := []struct {
		name string
		body string
		want []teller.Grant // nil: refused
	}{
		{"ours", `{"contas":[3,7],"fences":[5,9],"saldos":[100,0]}`,
			[]teller.Grant{{Fence: 5, Saldo: 100, HasSaldo: true}, {Fence: 9, Saldo: 0, HasSaldo: true}}},
		{"spaces and another order of keys", `{ "saldos" : [ 1 , 2 ] , "fences":[1,2], "contas":[3, 7] }`,
			[]teller.Grant{{Fence: 1, Saldo: 1, HasSaldo: true}, {Fence: 2, Saldo: 2, HasSaldo: true}}},
		{"other accounts", `{"contas":[7,3],"fences":[5,9],"saldos":[1,1]}`, nil},
		{"one account short", `{"contas":[3],"fences":[5],"saldos":[1]}`, nil},
		{"a fence missing", `{"contas":[3,7],"fences":[5],"saldos":[1,1]}`, nil},
		{"a zero fence", `{"contas":[3,7],"fences":[5,0],"saldos":[1,1]}`, nil},
		{"no balances", `{"contas":[3,7],"fences":[5,9]}`, nil},
		{"a balance not a number", `{"contas":[3,7],"fences":[5,9],"saldos":[1,"x"]}`, nil},
		{"a grant of /getLock", `{"fence":5,"saldo":100}`, nil},
		{"empty", `{}`, nil},
		{"not JSON", `<html>`, nil},
		{"unterminated list", `{"contas":[3,7`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := dataclient.ParseGrants([]byte(tt.body), contas)
			switch {
			case tt.want == nil && ok:
				t.Fatalf("accepted: %+v", got)
			case tt.want != nil && !ok:
				t.Fatal("refused")
			case tt.want != nil && !slices.Equal(got, tt.want):
				t.Fatalf("grants %+v, want %+v", got, tt.want)
			}
		})
	}
}
