package business

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/wire"
)

// TestDecodeBatch: the batch decoder accepts exactly a JSON array of 1 to
// MaxBatch transfers, in any JSON spelling, and refuses anything else
// with a message that names the element and what is wrong.
func TestDecodeBatch(t *testing.T) {
	const one = `{"conta_orig":1,"conta_dest":2,"valor":3}`
	for _, tt := range []struct {
		body string
		want []teller.BatchTransfer
	}{
		{`[` + one + `]`, []teller.BatchTransfer{{From: 1, To: 2, Amount: 3}}},
		{" \n[ {\"valor\" : 3 , \"conta_dest\":2,\"conta_orig\":1, \"linked\": true } ,\t{\"conta_orig\":-5,\"conta_dest\":0,\"valor\":-0,\"linked\":false} ]\r\n",
			[]teller.BatchTransfer{{From: 1, To: 2, Amount: 3, Linked: true}, {From: -5, To: 0, Amount: 0}}},
		{`[{"conta\u005forig":1,"\u0063onta_dest":2,"valor":3}]`, []teller.BatchTransfer{{From: 1, To: 2, Amount: 3}}},
		{`[{"conta_orig":9223372036854775807,"conta_dest":-9223372036854775808,"valor":0}]`,
			[]teller.BatchTransfer{{From: math.MaxInt64, To: math.MinInt64}}},
		{`[{"conta_orig":1,"conta_dest":1,"valor":-7,"linked":true}]`, []teller.BatchTransfer{{From: 1, To: 1, Amount: -7, Linked: true}}},
	} {
		got, err := decodeBatch([]byte(tt.body))
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("decodeBatch(%q) = %+v, %v; want %+v", tt.body, got, err, tt.want)
		}
	}

	for _, tt := range []struct {
		body, want string
	}{
		{``, "JSON array"},
		{`   `, "JSON array"},
		{`null`, "JSON array"},
		{`{}`, "JSON array"},
		{one, "JSON array"},
		{"\ufeff[" + one + "]", "JSON array"},
		{`"[]"`, "JSON array"},
		{`[]`, "empty array"},
		{` [ ] `, "empty array"},
		{`[`, "transfers[0]: want an object"},
		{`[1]`, "transfers[0]: want an object"},
		{`[null]`, "transfers[0]: want an object"},
		{`[[]]`, "transfers[0]: want an object"},
		{strings.Repeat("[", 100000), "transfers[0]: want an object"},
		{`[` + one, "transfers[0]: want ',' or ']'"},
		{`[` + one + ` ` + one + `]`, "transfers[0]: want ',' or ']'"},
		{`[` + one + `,]`, "transfers[1]: want an object"},
		{`[` + one + `,` + one + `,{"conta_orig":1,"conta_dest":2,"valor":3,"x":1}]`, `transfers[2]: unknown field "x"`},
		{`[{"Conta_orig":1,"conta_dest":2,"valor":3}]`, `transfers[0]: unknown field "Conta_orig"`},
		{`[{"conta_orig ":1,"conta_dest":2,"valor":3}]`, `unknown field "conta_orig "`},
		{`[{"` + strings.Repeat("k", 100) + `":1}]`, `unknown field "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"...`},
		{`[` + one + `,{"conta_orig":1,"conta_orig":1,"conta_dest":2,"valor":3}]`, `transfers[1]: "conta_orig" given twice`},
		{`[{"conta_orig":1,"conta_dest":2,"valor":3,"linked":true,"linked":true}]`, `"linked" given twice`},
		{`[{"conta_orig":1,"conta_dest":2,"valor":3,"conta\u005forig":1}]`, `"conta_orig" given twice`},
		{`[{"conta_orig":1,"conta_dest":2}]`, `transfers[0]: no "valor"`},
		{`[{"conta_dest":2,"valor":3}]`, `transfers[0]: no "conta_orig"`},
		{`[{"conta_orig":1,"valor":3,"linked":true}]`, `transfers[0]: no "conta_dest"`},
		{`[{}]`, `transfers[0]: no "conta_orig"`},
		{`[{"conta_orig":1.5,"conta_dest":2,"valor":3}]`, `transfers[0]: "conta_orig" must be an integer`},
		{`[{"conta_orig":1,"conta_dest":2,"valor":1e3}]`, `"valor" must be an integer`},
		{`[{"conta_orig":1,"conta_dest":2,"valor":1E3}]`, `"valor" must be an integer`},
		{`[{"conta_orig":1,"conta_dest":2,"valor":1.0}]`, `"valor" must be an integer`},
		{`[{"conta_orig":1,"conta_dest":2,"valor":9223372036854775808}]`, `"valor" must be an integer`},
		{`[{"conta_orig":-9223372036854775809,"conta_dest":2,"valor":3}]`, `"conta_orig" must be an integer`},
		{`[{"conta_orig":1,"conta_dest":2,"valor":` + strings.Repeat("9", 5000) + `}]`, `"valor" must be an integer`},
		{`[{"conta_orig":1,"conta_dest":02,"valor":3}]`, `"conta_dest" must be an integer`},
		{`[{"conta_orig":1,"conta_dest":-02,"valor":3}]`, `"conta_dest" must be an integer`},
		{`[{"conta_orig":1,"conta_dest":+2,"valor":3}]`, `"conta_dest" must be an integer`},
		{`[{"conta_orig":1,"conta_dest":-,"valor":3}]`, `"conta_dest" must be an integer`},
		{`[{"conta_orig":1,"conta_dest":0x10,"valor":3}]`, `want ',' or '}' after "conta_dest"`},
		{`[{"conta_orig":1,"conta_dest":"2","valor":3}]`, `"conta_dest" must be an integer`},
		{`[{"conta_orig":1,"conta_dest":null,"valor":3}]`, `"conta_dest" must be an integer`},
		{`[{"conta_orig":1,"conta_dest":true,"valor":3}]`, `"conta_dest" must be an integer`},
		{`[{"conta_orig":1,"conta_dest":NaN,"valor":3}]`, `"conta_dest" must be an integer`},
		{`[{"conta_orig":1,"conta_dest":2,"valor":3,"linked":1}]`, `"linked" must be true or false`},
		{`[{"conta_orig":1,"conta_dest":2,"valor":3,"linked":null}]`, `"linked" must be true or false`},
		{`[{"conta_orig":1,"conta_dest":2,"valor":3,"linked":"true"}]`, `"linked" must be true or false`},
		{`[{"conta_orig":1,"conta_dest":2,"valor":3,"linked":tru}]`, `"linked" must be true or false`},
		{`[{"conta_orig":1,"conta_dest":2,"valor":3,"linked":truex}]`, `want ',' or '}' after "linked"`},
		{`[{"conta_orig" 1,"conta_dest":2,"valor":3}]`, `want ':' after "conta_orig"`},
		{`[{"conta_orig":1 "conta_dest":2,"valor":3}]`, `want ',' or '}' after "conta_orig"`},
		{`[{,}]`, "transfers[0]: want a field name"},
		{`[{"conta_orig":1,}]`, "transfers[0]: want a field name"},
		{`[{conta_orig:1}]`, "transfers[0]: want a field name"},
		{`[{'conta_orig':1}]`, "transfers[0]: want a field name"},
		{`[{"conta_orig`, "transfers[0]: want a field name"},
		{"[{\"conta\norig\":1}]", "transfers[0]: want a field name"},
		{`[{"conta\xorig":1}]`, "transfers[0]: want a field name"},
		{`[{"conta\ud800orig":1}]`, `unknown field`},
		{`[` + one + `] x`, "data after the array, at offset 44"},
		{`[` + one + `][` + one + `]`, "data after the array"},
		{`[` + one + `]]`, "data after the array"},
		{`[` + one + "]\x00", "data after the array"},
	} {
		got, err := decodeBatch([]byte(tt.body))
		var bad *badBatchError
		if !errors.As(err, &bad) || !strings.Contains(bad.msg, tt.want) {
			t.Errorf("decodeBatch(%.80q) = %d transfers, %v; want an error containing %q", tt.body, len(got), err, tt.want)
		}
		if msg := wire.AppendError(nil, teller.BadRequest, fmt.Sprint(err)); !json.Valid(msg) {
			t.Errorf("decodeBatch(%.80q): the answer %q is not JSON", tt.body, msg)
		}
	}

	// Exactly MaxBatch transfers, then one more.
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range MaxBatch + 1 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(one)
	}
	b.WriteByte(']')
	all := b.Bytes()
	if got, err := decodeBatch(all); err == nil || !strings.Contains(err.Error(), "more than 8190 transfers") {
		t.Errorf("%d transfers: %d decoded, %v; want more than 8190 refused", MaxBatch+1, len(got), err)
	}
	max := append(all[:len(all)-len(one)-2:len(all)-len(one)-2], ']')
	if got, err := decodeBatch(max); err != nil || len(got) != MaxBatch {
		t.Errorf("%d transfers: %d decoded, %v", MaxBatch, len(got), err)
	}
	if n := len(prettyBatch(MaxBatch)); n > MaxBody*2/3 {
		t.Errorf("a pretty-printed batch of %d transfers is %d bytes: more than 2/3 of MaxBody", MaxBatch, n)
	}
}

// prettyBatch is a batch of n transfers of the largest numbers, linked,
// indented as json.MarshalIndent would.
func prettyBatch(n int) []byte {
	type tr struct {
		ContaOrig int64 `json:"conta_orig"`
		ContaDest int64 `json:"conta_dest"`
		Valor     int64 `json:"valor"`
		Linked    bool  `json:"linked"`
	}
	batch := make([]tr, n)
	for i := range batch {
		batch[i] = tr{math.MinInt64, math.MinInt64, math.MinInt64, true}
	}
	b, err := json.MarshalIndent(batch, "", "    ")
	if err != nil {
		panic(err)
	}
	return b
}

func TestAppendBatchAnswer(t *testing.T) {
	got := appendBatchAnswer(nil, []teller.BatchResult{
		{FromSaldo: 900, ToSaldo: 1100},
		{Err: teller.ErrInsufficientFunds},
		{Err: teller.ErrLinkedFailed},
		{Err: teller.ErrLinkedOpen},
		{FromSaldo: 0, ToSaldo: math.MaxInt64},
	})
	want := `{"applied":2,"results":[{"saldo_orig":900,"saldo_dest":1100},` +
		`{"error_code":-6,"error":"insufficient funds; nothing changed"},` +
		`{"error_code":-17,"error":"another transfer of its linked chain was refused; nothing changed"},` +
		`{"error_code":-18,"error":"the batch's last transfer is linked, and no transfer follows it; its chain was not applied"},` +
		`{"saldo_orig":0,"saldo_dest":9223372036854775807}]}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// FuzzBatchBody: the decoder never panics; what it accepts is JSON that
// encoding/json, strictly, reads as the same transfers (it refuses more:
// duplicate fields); what it refuses, it refuses with a message that
// names an element or the body, which makes valid JSON in an answer.
func FuzzBatchBody(f *testing.F) {
	for _, s := range []string{
		`[{"conta_orig":1,"conta_dest":2,"valor":3}]`,
		`[{"conta_orig":1,"conta_dest":2,"valor":3,"linked":true},{"conta_orig":2,"conta_dest":1,"valor":3}]`,
		` [ {"valor" : -0 , "conta_dest":0,"conta_orig":-9223372036854775808, "linked": false } ] `,
		`[{"conta\u005forig":1,"conta_dest":2,"valor":3}]`,
		`[{"conta_orig":1,"conta_orig":1,"conta_dest":2,"valor":3}]`,
		`[{"conta_orig":1.5,"conta_dest":2,"valor":1e3}]`,
		`[]`, `{}`, `[1]`, `[{}]`, `[{"x":1}]`, `[{"conta_orig":1,"conta_dest":2,"valor":3}] x`,
		`[{"conta_orig":1,"conta_dest":2,"valor":3,"linked":null}]`,
	} {
		f.Add([]byte(s))
	}
	type strict struct {
		ContaOrig *int64 `json:"conta_orig"`
		ContaDest *int64 `json:"conta_dest"`
		Valor     *int64 `json:"valor"`
		Linked    *bool  `json:"linked"`
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		batch, err := decodeBatch(body)
		if err != nil {
			var bad *badBatchError
			if !errors.As(err, &bad) {
				t.Fatalf("%q: an error that is not a refusal: %v", body, err)
			}
			if !strings.HasPrefix(bad.msg, "transfers[") && !strings.Contains(bad.msg, "array") && !strings.Contains(bad.msg, "8190") {
				t.Fatalf("%q: the message %q names neither an element nor the body", body, bad.msg)
			}
			if !json.Valid(wire.AppendError(nil, teller.BadRequest, bad.msg)) {
				t.Fatalf("%q: the refusal's answer is not JSON", body)
			}
			return
		}
		if len(batch) < 1 || len(batch) > MaxBatch {
			t.Fatalf("%q: accepted %d transfers", body, len(batch))
		}
		if !json.Valid(body) {
			t.Fatalf("%q: accepted, but not JSON", body)
		}
		var std []strict
		d := json.NewDecoder(bytes.NewReader(body))
		d.DisallowUnknownFields()
		if err := d.Decode(&std); err != nil {
			t.Fatalf("%q: accepted, but encoding/json refuses it: %v", body, err)
		}
		if len(std) != len(batch) {
			t.Fatalf("%q: %d transfers, encoding/json reads %d", body, len(batch), len(std))
		}
		for i, s := range std {
			if s.ContaOrig == nil || s.ContaDest == nil || s.Valor == nil {
				t.Fatalf("%q: transfers[%d] accepted without every field", body, i)
			}
			want := teller.BatchTransfer{From: *s.ContaOrig, To: *s.ContaDest, Amount: *s.Valor, Linked: s.Linked != nil && *s.Linked}
			if batch[i] != want {
				t.Fatalf("%q: transfers[%d] = %+v, encoding/json reads %+v", body, i, batch[i], want)
			}
		}
		// And back: the transfers, written compactly, decode the same.
		b := wire.AppendTransfers(nil, len(batch), func(i int) teller.BatchTransfer { return batch[i] })
		again, err := decodeBatch(b)
		if err != nil || !slices.Equal(again, batch) {
			t.Fatalf("%q: written back as %q, decoded %+v, %v", body, b, again, err)
		}
	})
}
