package business_test

import (
	"slices"
	"testing"

	"github.com/bank/gobank/http/business"
)

// TestParseGrants: a /getLocks answer is accepted only when it names the
// accounts asked for, in order, each with a positive fence and a balance.
func TestParseGrants(t *testing.T) {
	contas := []int64{3, 7}
	tests := []struct {
		name string
		body string
		want []business.Grant // nil: refused
	}{
		{"ours", `{"contas":[3,7],"fences":[5,9],"saldos":[100,0]}`,
			[]business.Grant{{Fence: 5, Saldo: 100, HasSaldo: true}, {Fence: 9, Saldo: 0, HasSaldo: true}}},
		{"spaces and another order of keys", `{ "saldos" : [ 1 , 2 ] , "fences":[1,2], "contas":[3, 7] }`,
			[]business.Grant{{Fence: 1, Saldo: 1, HasSaldo: true}, {Fence: 2, Saldo: 2, HasSaldo: true}}},
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
			got, ok := business.ParseGrants([]byte(tt.body), contas)
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
