package check

import (
	"slices"
	"strings"
	"testing"
)

// The headers the rows of TestParseRecord are read under.
var (
	hdrV1 = &Header{Type: TypeHeader, Version: 1, Target: "business", Accounts: 4, Groups: 2, Initial: []int64{10, 10, 10, 10}}
	hdrV2 = &Header{Type: TypeHeader, Version: 2, Target: "business", Accounts: 4, Groups: 2, Initial: []int64{10, 10, 10, 10}, Covers: []int64{11, 14}}
	// hdrV3's groups are accounts 11..12 and 13..14.
	hdrV3 = &Header{Type: TypeHeader, Version: 3, Target: "business", Accounts: 4, Groups: 2, Initial: []int64{10, 10, 10, 10}, Covers: []int64{11, 14}}
)

// TestParseRecord: one row per rule of parseRecord, each malformation
// named by the error it must give; the valid rows say what they parse to.
func TestParseRecord(t *testing.T) {
	const (
		op   = `"type":"op","client":0,"call":5,"ret":9,`
		snap = `"type":"snapshot","client":-1,"call":5,"ret":9,`
		hdr1 = `"type":"header","version":1,"start":"s","target":"business","accounts":4,"groups":2,`
		hdr2 = `"type":"header","version":2,"start":"s","target":"business","accounts":4,"groups":2,`
		hdr3 = `"type":"header","version":3,"start":"s","target":"business","accounts":4,"groups":2,`
		move = `"type":"op","client":0,"call":5,"ret":9,"op":"move",`
	)
	for _, c := range []struct {
		name string
		hdr  *Header // the header read before the line (nil: none)
		line string
		want string // a part of the error; "" for a valid line
		// check, for a valid line, what it parsed to
		check func(t *testing.T, r record)
	}{
		// The line.
		{"not JSON", nil, `{"type":`, "not JSON", nil},
		{"garbage", nil, `hello`, "not JSON", nil},
		{"an array", nil, `[1,2]`, "a JSON array, not an object", nil},
		{"a number", nil, `42`, "a JSON number, not an object", nil},
		{"two values", hdrV2, `{` + op + `"op":"saldo","a":11,"result":"ok","saldo":1}{}`, "something follows the JSON object", nil},
		{"unknown key", hdrV2, `{` + op + `"op":"saldo","a":11,"result":"ok","saldo":1,"x":1}`, `"x": not a key of any record`, nil},
		{"repeated key", hdrV2, `{` + op + `"op":"saldo","a":11,"a":12,"result":"ok","saldo":1}`, "a: given 2 times", nil},
		{"no type", hdrV2, `{"client":0}`, "type: missing", nil},
		{"null type", hdrV2, `{"type":null}`, "type: null", nil},
		{"type not a string", hdrV2, `{"type":1}`, "type: 1 is not a string", nil},
		{"unknown type", hdrV2, `{"type":"deposit"}`, `unknown record type "deposit"`, nil},
		{"key of another type", hdrV2, `{` + op + `"op":"saldo","a":11,"result":"ok","saldo":1,"saldos":[1]}`, "saldos: not a key of a record of type op", nil},
		{"header key in an op", hdrV2, `{` + op + `"op":"saldo","a":11,"result":"ok","saldo":1,"version":2}`, "version: not a key of a record of type op", nil},

		// Order of the records.
		{"missing header", nil, `{` + op + `"op":"saldo","a":1,"result":"ok","saldo":1}`, "before the header", nil},
		{"duplicate header", hdrV2, `{` + hdr2 + `"initial":[1,1,1,1],"covers":[11,14]}`, "a second header", nil},

		// The header.
		{"valid v1 header", nil, `{` + hdr1 + `"initial":[1,2,3,4]}`, "", func(t *testing.T, r record) {
			if r.header == nil || r.header.Version != 1 || !slices.Equal(r.header.Initial, []int64{1, 2, 3, 4}) {
				t.Fatalf("%+v", r.header)
			}
			if f, l := r.header.Span(); f != 1 || l != 4 {
				t.Fatalf("span %d..%d", f, l)
			}
		}},
		{"valid v2 header", nil, `{` + hdr2 + `"initial":[1,2,3,4],"covers":[11,14]}`, "", func(t *testing.T, r record) {
			if f, l := r.header.Span(); f != 11 || l != 14 {
				t.Fatalf("span %d..%d", f, l)
			}
		}},
		{"initial null", nil, `{` + hdr1 + `"initial":null}`, "", func(t *testing.T, r record) {
			if r.header.Initial != nil {
				t.Fatalf("%+v", r.header)
			}
		}},
		{"negative initial balance (the bank's fault)", nil, `{` + hdr1 + `"initial":[-1,2,3,4]}`, "", nil},
		{"no version", nil, `{"type":"header","start":"s","target":"business","accounts":1,"groups":0,"initial":[1]}`, "version: missing", nil},
		{"version 0", nil, `{"type":"header","version":0}`, "version 0: this checker reads versions 1 to 3", nil},
		{"version 4", nil, `{"type":"header","version":4}`, "version 4", nil},
		{"valid v3 header", nil, `{` + hdr3 + `"initial":[1,2,3,4],"covers":[11,14]}`, "", func(t *testing.T, r record) {
			if r.header.Version != 3 {
				t.Fatalf("%+v", r.header)
			}
			if f, l := r.header.Span(); f != 11 || l != 14 {
				t.Fatalf("span %d..%d", f, l)
			}
		}},
		{"no covers in version 3", nil, `{` + hdr3 + `"initial":[1,1,1,1]}`, "covers: missing", nil},
		{"legs in a header", nil, `{` + hdr3 + `"initial":[1,1,1,1],"covers":[11,14],"legs":[[11,1]]}`, "legs: not a key of a record of type header", nil},
		{"version a string", nil, `{"type":"header","version":"1"}`, `version: "1" is not an integer`, nil},
		{"version a float", nil, `{"type":"header","version":1.0}`, "version: 1.0 is not an integer", nil},
		{"no start", nil, `{"type":"header","version":1,"target":"business","accounts":1,"groups":0,"initial":[1]}`, "start: missing", nil},
		{"start null", nil, `{"type":"header","version":1,"start":null}`, "start: null", nil},
		{"target data", nil, `{"type":"header","version":1,"start":"s","target":"data"}`, `target: "data"`, nil},
		{"no accounts", nil, `{"type":"header","version":1,"start":"s","target":"business","groups":0,"initial":[]}`, "accounts: missing", nil},
		{"zero accounts", nil, `{"type":"header","version":1,"start":"s","target":"business","accounts":0}`, "accounts: 0 is out of range 1..", nil},
		{"too many accounts", nil, `{"type":"header","version":1,"start":"s","target":"business","accounts":99999999999}`, "accounts: 99999999999 is out of range", nil},
		{"accounts over int64", nil, `{"type":"header","version":1,"start":"s","target":"business","accounts":99999999999999999999}`, "not an integer within 64 bits", nil},
		{"no groups", nil, `{"type":"header","version":1,"start":"s","target":"business","accounts":4,"initial":[1,1,1,1]}`, "groups: missing", nil},
		{"negative groups", nil, `{` + strings.Replace(hdr1, `"groups":2`, `"groups":-1`, 1) + `"initial":[1,1,1,1]}`, "groups: -1 is out of range 0..4", nil},
		{"more groups than accounts", nil, `{` + strings.Replace(hdr1, `"groups":2`, `"groups":5`, 1) + `"initial":[1,1,1,1]}`, "no more groups than the 4 accounts", nil},
		{"no initial", nil, `{` + strings.TrimSuffix(hdr1, ",") + `}`, "initial: missing", nil},
		{"initial too short", nil, `{` + hdr1 + `"initial":[1,1,1]}`, "initial: 3 balances for 4 accounts", nil},
		{"initial too long", nil, `{` + hdr1 + `"initial":[1,1,1,1,1]}`, "initial: 5 balances for 4 accounts", nil},
		{"initial empty", nil, `{` + hdr1 + `"initial":[]}`, "initial: 0 balances", nil},
		{"initial with a null", nil, `{` + hdr1 + `"initial":[1,null,1,1]}`, "initial[1]: null is null", nil},
		{"initial with a float", nil, `{` + hdr1 + `"initial":[1,1.5,1,1]}`, "initial[1]: 1.5 is not an integer", nil},
		{"initial with a string", nil, `{` + hdr1 + `"initial":[1,"1",1,1]}`, `initial[1]: "1" is not an integer`, nil},
		{"initial nested", nil, `{` + hdr1 + `"initial":[[1],1,1,1]}`, "initial[0]: [1] is not an integer", nil},
		{"initial over int64", nil, `{` + hdr1 + `"initial":[9223372036854775808,1,1,1]}`, "initial[0]: 9223372036854775808 is not an integer within 64 bits", nil},
		{"initial an object", nil, `{` + hdr1 + `"initial":{}}`, "initial: {} is not an array", nil},
		{"covers in version 1", nil, `{` + hdr1 + `"initial":[1,1,1,1],"covers":[1,4]}`, "covers: not a key of a version 1 header", nil},
		{"no covers in version 2", nil, `{` + hdr2 + `"initial":[1,1,1,1]}`, "covers: missing", nil},
		{"covers null", nil, `{` + hdr2 + `"initial":[1,1,1,1],"covers":null}`, "covers: null", nil},
		{"covers of one number", nil, `{` + hdr2 + `"initial":[1,1,1,1],"covers":[4]}`, "covers: 1 numbers, want [first, last]", nil},
		{"covers of three", nil, `{` + hdr2 + `"initial":[1,1,1,1],"covers":[1,2,4]}`, "covers: 3 numbers", nil},
		{"covers from 0", nil, `{` + hdr2 + `"initial":[1,1,1,1],"covers":[0,3]}`, "covers: [0, 3] is not 4 accounts", nil},
		{"covers backwards", nil, `{` + hdr2 + `"initial":[1,1,1,1],"covers":[4,1]}`, "covers: [4, 1]", nil},
		{"covers not the account count", nil, `{` + hdr2 + `"initial":[1,1,1,1],"covers":[1,20]}`, "covers: [1, 20] is not 4 accounts", nil},
		{"covers the widest", nil, `{"type":"header","version":2,"start":"s","target":"business","accounts":2,"groups":0,"initial":[1,1],"covers":[-9223372036854775807,9223372036854775807]}`, "is not 2 accounts", nil},
		{"an op key in a header", nil, `{` + hdr1 + `"initial":[1,1,1,1],"call":1}`, "call: not a key of a record of type header", nil},

		// Times and results, of any entry.
		{"valid op", hdrV2, `{` + op + `"op":"deposito","a":11,"amount":3,"result":"ok","saldo":13}`, "", func(t *testing.T, r record) {
			want := Entry{Type: TypeOp, Op: OpDeposito, A: 11, Amount: 3, Call: 5, Ret: 9, Result: ResultOK, Saldo: 13}
			if r.header != nil || !equalEntries(r.entry, want) {
				t.Fatalf("%+v, want %+v", r.entry, want)
			}
		}},
		{"ret before call", hdrV2, `{"type":"op","client":0,"call":50,"ret":20,"op":"saldo","a":11,"result":"ok","saldo":1}`, "ret 20 is before call 50", nil},
		{"ret equal to call", hdrV2, `{"type":"op","client":0,"call":50,"ret":50,"op":"saldo","a":11,"result":"ok","saldo":1}`, "", nil},
		{"no call", hdrV2, `{"type":"op","client":0,"ret":20,"op":"saldo","a":11,"result":"ok","saldo":1}`, "call: missing", nil},
		{"null call", hdrV2, `{"type":"op","client":0,"call":null,"ret":20,"op":"saldo","a":11,"result":"ok","saldo":1}`, "call: null, want an integer", nil},
		{"negative call", hdrV2, `{"type":"op","client":0,"call":-1,"ret":20,"op":"saldo","a":11,"result":"ok","saldo":1}`, "call: -1 is out of range 0..", nil},
		{"no ret", hdrV2, `{"type":"op","client":0,"call":1,"op":"saldo","a":11,"result":"ok","saldo":1}`, "ret: missing", nil},
		{"ret at the end of time", hdrV2, `{"type":"op","client":0,"call":1,"ret":9223372036854775807,"op":"saldo","a":11,"result":"ok","saldo":1}`, "ret: 9223372036854775807 is out of range", nil},
		{"time a float", hdrV2, `{"type":"op","client":0,"call":1.5,"ret":2,"op":"saldo","a":11,"result":"ok","saldo":1}`, "call: 1.5 is not an integer", nil},
		{"time in exponent form", hdrV2, `{"type":"op","client":0,"call":1e3,"ret":2000,"op":"saldo","a":11,"result":"ok","saldo":1}`, "call: 1e3 is not an integer", nil},
		{"no result", hdrV2, `{` + op + `"op":"saldo","a":11,"saldo":1}`, "result: missing", nil},
		{"unknown result", hdrV2, `{` + op + `"op":"saldo","a":11,"result":"maybe","saldo":1}`, `result: "maybe" (want ok, fail or unknown)`, nil},
		{"status on an ok", hdrV2, `{` + op + `"op":"saldo","a":11,"result":"ok","saldo":1,"status":200}`, "status: not a key of a record with an ok result", nil},
		{"error on an ok", hdrV2, `{` + op + `"op":"saldo","a":11,"result":"ok","saldo":1,"error":""}`, "error: not a key of a record with an ok result", nil},
		{"fail without status", hdrV2, `{` + op + `"op":"saldo","a":11,"result":"fail","error":"NOT_FOUND"}`, "status: missing", nil},
		{"fail without error", hdrV2, `{` + op + `"op":"saldo","a":11,"result":"fail","status":404}`, "error: missing", nil},
		{"status out of range", hdrV2, `{` + op + `"op":"saldo","a":11,"result":"unknown","status":1000,"error":"x"}`, "status: 1000 is out of range 0..999", nil},
		{"error not a string", hdrV2, `{` + op + `"op":"saldo","a":11,"result":"unknown","status":0,"error":3}`, "error: 3 is not a string", nil},
		{"valid refusal", hdrV2, `{` + op + `"op":"saque","a":12,"amount":5,"result":"fail","status":409,"error":"INSUFFICIENT_FUNDS"}`, "", func(t *testing.T, r record) {
			if r.entry.Status != 409 || r.entry.Error != "INSUFFICIENT_FUNDS" {
				t.Fatalf("%+v", r.entry)
			}
		}},

		// Operations.
		{"no client", hdrV2, `{"type":"op","call":5,"ret":9,"op":"saldo","a":11,"result":"ok","saldo":1}`, "client: missing", nil},
		{"negative client", hdrV2, `{"type":"op","client":-1,"call":5,"ret":9,"op":"saldo","a":11,"result":"ok","saldo":1}`, "client: -1 is out of range 0..", nil},
		{"huge client", hdrV2, `{"type":"op","client":9223372036854775807,"call":5,"ret":9,"op":"saldo","a":11,"result":"ok","saldo":1}`, "client: 9223372036854775807 is out of range", nil},
		{"no op", hdrV2, `{` + op + `"a":11,"result":"ok","saldo":1}`, "op: missing", nil},
		{"unknown op", hdrV2, `{` + op + `"op":"pix","a":11,"result":"ok","saldo":1}`, `op: "pix"`, nil},
		{"no account", hdrV2, `{` + op + `"op":"saldo","result":"ok","saldo":1}`, "a: missing", nil},
		{"null account", hdrV2, `{` + op + `"op":"saldo","a":null,"result":"ok","saldo":1}`, "a: null", nil},
		{"account below the covered ones", hdrV2, `{` + op + `"op":"saldo","a":10,"result":"ok","saldo":1}`, "a: 10 is out of range 11..14 (the history covers accounts 11..14)", nil},
		{"account above the covered ones", hdrV2, `{` + op + `"op":"saldo","a":15,"result":"ok","saldo":1}`, "a: 15 is out of range 11..14", nil},
		{"account 0 of version 1", hdrV1, `{` + op + `"op":"saldo","a":0,"result":"ok","saldo":1}`, "a: 0 is out of range 1..4", nil},
		{"version 1 covers 1..accounts", hdrV1, `{` + op + `"op":"saldo","a":4,"result":"ok","saldo":1}`, "", nil},
		{"no amount", hdrV2, `{` + op + `"op":"deposito","a":11,"result":"ok","saldo":1}`, "amount: missing", nil},
		{"zero amount", hdrV2, `{` + op + `"op":"deposito","a":11,"amount":0,"result":"ok","saldo":1}`, "amount: 0 is out of range 1..", nil},
		{"negative amount", hdrV2, `{` + op + `"op":"saque","a":11,"amount":-5,"result":"ok","saldo":1}`, "amount: -5 is out of range 1..", nil},
		{"null amount", hdrV2, `{` + op + `"op":"saque","a":11,"amount":null,"result":"ok","saldo":1}`, "amount: null", nil},
		{"amount of a read", hdrV2, `{` + op + `"op":"saldo","a":11,"amount":1,"result":"ok","saldo":1}`, "amount: not a key of a record with a saldo", nil},
		{"b of a deposit", hdrV2, `{` + op + `"op":"deposito","a":11,"b":12,"amount":1,"result":"ok","saldo":1}`, "b: not a key of a record with a deposito", nil},
		{"transfer without b", hdrV2, `{` + op + `"op":"transferencia","a":11,"amount":1,"result":"ok","saldo":1,"saldo_b":1}`, "b: missing", nil},
		{"transfer with a null b", hdrV2, `{` + op + `"op":"transferencia","a":11,"b":null,"amount":1,"result":"ok","saldo":1,"saldo_b":1}`, "b: null", nil},
		{"transfer to an uncovered account", hdrV2, `{` + op + `"op":"transferencia","a":11,"b":15,"amount":1,"result":"ok","saldo":1,"saldo_b":1}`, "b: 15 is out of range 11..14", nil},
		{"transfer to itself", hdrV2, `{` + op + `"op":"transferencia","a":11,"b":11,"amount":1,"result":"ok","saldo":1,"saldo_b":1}`, "b: 11, the same account as a", nil},
		{"transfer across groups", hdrV2, `{` + op + `"op":"transferencia","a":12,"b":13,"amount":1,"result":"ok","saldo":1,"saldo_b":1}`, "from account 12 (group 0) to 13 (group 1)", nil},
		{"valid transfer", hdrV2, `{` + op + `"op":"transferencia","a":14,"b":13,"amount":1,"result":"ok","saldo":1,"saldo_b":2}`, "", func(t *testing.T, r record) {
			if r.entry.A != 14 || r.entry.B != 13 || r.entry.SaldoB != 2 {
				t.Fatalf("%+v", r.entry)
			}
		}},
		{"ok without saldo", hdrV2, `{` + op + `"op":"deposito","a":11,"amount":1,"result":"ok"}`, "saldo: missing", nil},
		{"null saldo", hdrV2, `{` + op + `"op":"deposito","a":11,"amount":1,"result":"ok","saldo":null}`, "saldo: null", nil},
		{"saldo a string", hdrV2, `{` + op + `"op":"deposito","a":11,"amount":1,"result":"ok","saldo":"1"}`, `saldo: "1" is not an integer`, nil},
		{"negative saldo (the bank's fault)", hdrV2, `{` + op + `"op":"deposito","a":11,"amount":1,"result":"ok","saldo":-1}`, "", nil},
		{"transfer without saldo_b", hdrV2, `{` + op + `"op":"transferencia","a":11,"b":12,"amount":1,"result":"ok","saldo":1}`, "saldo_b: missing", nil},
		{"saldo_b of a deposit", hdrV2, `{` + op + `"op":"deposito","a":11,"amount":1,"result":"ok","saldo":1,"saldo_b":1}`, "saldo_b: not a key of a record with a deposito", nil},
		{"saldo of a refusal", hdrV2, `{` + op + `"op":"deposito","a":11,"amount":1,"result":"fail","status":404,"error":"NOT_FOUND","saldo":1}`, "saldo: not a key of a record with a fail result", nil},
		{"saldo_b of an unknown", hdrV2, `{` + op + `"op":"transferencia","a":11,"b":12,"amount":1,"result":"unknown","status":0,"error":"timeout","saldo_b":1}`, "saldo_b: not a key of a record with an unknown result", nil},

		// Moves (version 3).
		{"valid move", hdrV3, `{` + move + `"legs":[[11,-30],[12,30]],"result":"ok","leg_saldos":[0,40]}`, "", func(t *testing.T, r record) {
			want := Entry{Type: TypeOp, Op: OpMove, Call: 5, Ret: 9, Result: ResultOK,
				Legs: []Leg{{11, -30}, {12, 30}}, LegSaldos: []int64{0, 40}}
			if !equalEntries(r.entry, want) {
				t.Fatalf("%+v, want %+v", r.entry, want)
			}
		}},
		{"valid move with spaces", hdrV3, `{` + move + `"legs":[ [ 11 , -30 ] ,[12,30 ] ],"result":"ok","leg_saldos":[ 0 , 40 ]}`, "", func(t *testing.T, r record) {
			if !slices.Equal(r.entry.Legs, []Leg{{11, -30}, {12, 30}}) {
				t.Fatalf("%+v", r.entry)
			}
		}},
		{"valid move of one leg, the largest delta", hdrV3, `{` + move + `"legs":[[14,9223372036854775807]],"result":"ok","leg_saldos":[9223372036854775807]}`, "", nil},
		{"valid move of the most legs", &Header{Type: TypeHeader, Version: 3, Target: "business", Accounts: 16, Covers: []int64{1, 16}},
			`{` + move + `"legs":[[1,-15],[2,1],[3,1],[4,1],[5,1],[6,1],[7,1],[8,1],[9,1],[10,1],[11,1],[12,1],[13,1],[14,1],[15,1],[16,1]],"result":"unknown","status":0,"error":"timeout"}`, "", func(t *testing.T, r record) {
				if len(r.entry.Legs) != MaxLegs || r.entry.Legs[15] != (Leg{16, 1}) {
					t.Fatalf("%+v", r.entry)
				}
			}},
		{"valid refused move", hdrV3, `{` + move + `"legs":[[13,-300],[14,300]],"result":"fail","status":409,"error":"INSUFFICIENT_FUNDS"}`, "", func(t *testing.T, r record) {
			if len(r.entry.Legs) != 2 || r.entry.LegSaldos != nil {
				t.Fatalf("%+v", r.entry)
			}
		}},
		{"negative leg balance (the bank's fault)", hdrV3, `{` + move + `"legs":[[11,-30]],"result":"ok","leg_saldos":[-20]}`, "", nil},
		{"move in version 2", hdrV2, `{` + move + `"legs":[[11,-30],[12,30]],"result":"ok","leg_saldos":[0,40]}`, `op: "move" is not an op of a version 2 history (moves came with version 3)`, nil},
		{"move in version 1", hdrV1, `{` + move + `"legs":[[1,-3]],"result":"ok","leg_saldos":[7]}`, `op: "move" is not an op of a version 1 history`, nil},
		{"move without legs", hdrV3, `{` + move + `"result":"ok","leg_saldos":[1]}`, "legs: missing", nil},
		{"null legs", hdrV3, `{` + move + `"legs":null,"result":"ok","leg_saldos":[1]}`, "legs: null, want an array of [conta, delta] pairs", nil},
		{"legs an object", hdrV3, `{` + move + `"legs":{},"result":"ok","leg_saldos":[1]}`, "legs: {} is not an array", nil},
		{"legs a number", hdrV3, `{` + move + `"legs":11,"result":"ok","leg_saldos":[1]}`, "legs: 11 is not an array", nil},
		{"no legs", hdrV3, `{` + move + `"legs":[ ],"result":"ok","leg_saldos":[]}`, "legs: 0 legs, want 1 to 16", nil},
		{"17 legs", hdrV3, `{` + move + `"legs":[` + strings.Repeat(`[11,1],`, 16) + `[11,1]],"result":"unknown","status":0,"error":"x"}`, "legs: 17 legs, want 1 to 16", nil},
		{"a leg of one number", hdrV3, `{` + move + `"legs":[[11]],"result":"unknown","status":0,"error":"x"}`, "legs[0]: [11] is not a pair [conta, delta]", nil},
		{"a leg of three numbers", hdrV3, `{` + move + `"legs":[[11,1,2]],"result":"unknown","status":0,"error":"x"}`, "legs[0]: [11,1,2] is not a pair", nil},
		{"an empty leg", hdrV3, `{` + move + `"legs":[[11,1],[]],"result":"unknown","status":0,"error":"x"}`, "legs[1]: [] is not a pair", nil},
		{"flat legs", hdrV3, `{` + move + `"legs":[11,-1],"result":"unknown","status":0,"error":"x"}`, "legs[0]: 11 is not a pair", nil},
		{"a leg a number", hdrV3, `{` + move + `"legs":[[11,1],12],"result":"unknown","status":0,"error":"x"}`, "legs[1]: 12 is not a pair", nil},
		{"a leg an object", hdrV3, `{` + move + `"legs":[[11,1],{"a":[12,1]}],"result":"unknown","status":0,"error":"x"}`, "legs[1]: {\"a\":[12 is not a pair", nil},
		{"a leg with a string", hdrV3, `{` + move + `"legs":[[11,"1]"]],"result":"unknown","status":0,"error":"x"}`, `legs[0]: [11,"1] is not a pair [conta, delta] of integers`, nil},
		{"a leg with a float", hdrV3, `{` + move + `"legs":[[11,1.5]],"result":"unknown","status":0,"error":"x"}`, "legs[0]: [11,1.5] is not a pair [conta, delta] of integers within 64 bits", nil},
		{"a leg with a null", hdrV3, `{` + move + `"legs":[[null,1]],"result":"unknown","status":0,"error":"x"}`, "legs[0]: [null,1] is not a pair", nil},
		{"a nested leg", hdrV3, `{` + move + `"legs":[[[11],1]],"result":"unknown","status":0,"error":"x"}`, "legs[0]: [[11] is not a pair", nil},
		{"a delta over int64", hdrV3, `{` + move + `"legs":[[11,9223372036854775808]],"result":"unknown","status":0,"error":"x"}`, "legs[0]: [11,9223372036854775808] is not a pair [conta, delta] of integers within 64 bits", nil},
		{"a leg below the covered accounts", hdrV3, `{` + move + `"legs":[[10,1]],"result":"unknown","status":0,"error":"x"}`, "legs[0]: account 10 is out of range 11..14 (the history covers accounts 11..14)", nil},
		{"a leg above the covered accounts", hdrV3, `{` + move + `"legs":[[11,1],[15,-1]],"result":"unknown","status":0,"error":"x"}`, "legs[1]: account 15 is out of range 11..14", nil},
		{"a zero delta", hdrV3, `{` + move + `"legs":[[11,1],[12,0]],"result":"unknown","status":0,"error":"x"}`, "legs[1]: delta 0", nil},
		{"a MinInt64 delta", hdrV3, `{` + move + `"legs":[[11,-9223372036854775808]],"result":"unknown","status":0,"error":"x"}`, "legs[0]: delta -9223372036854775808 is out of range", nil},
		{"an account named twice", hdrV3, `{` + move + `"legs":[[11,1],[12,1],[11,-2]],"result":"unknown","status":0,"error":"x"}`, "legs[2]: account 11 again (legs[0] names it", nil},
		{"a move across groups", hdrV3, `{` + move + `"legs":[[11,1],[13,-1]],"result":"unknown","status":0,"error":"x"}`, "legs[1]: account 13 (group 1) in a move of account 11 (group 0): the header's 2 groups are disjoint", nil},
		{"ok move without leg_saldos", hdrV3, `{` + move + `"legs":[[11,1]],"result":"ok"}`, "leg_saldos: missing", nil},
		{"null leg_saldos", hdrV3, `{` + move + `"legs":[[11,1]],"result":"ok","leg_saldos":null}`, "leg_saldos: null", nil},
		{"too few leg_saldos", hdrV3, `{` + move + `"legs":[[11,1],[12,-1]],"result":"ok","leg_saldos":[11]}`, "leg_saldos: 1 balances for 2 legs", nil},
		{"too many leg_saldos", hdrV3, `{` + move + `"legs":[[11,1]],"result":"ok","leg_saldos":[11,9]}`, "leg_saldos: 2 balances for 1 legs", nil},
		{"a leg_saldo a string", hdrV3, `{` + move + `"legs":[[11,1],[12,-1]],"result":"ok","leg_saldos":[11,"9"]}`, `leg_saldos[1]: "9" is not an integer`, nil},
		{"leg_saldos of a refusal", hdrV3, `{` + move + `"legs":[[11,1]],"result":"fail","status":409,"error":"INSUFFICIENT_FUNDS","leg_saldos":[11]}`, "leg_saldos: not a key of a record with a fail result", nil},
		{"leg_saldos of an unknown", hdrV3, `{` + move + `"legs":[[11,1]],"result":"unknown","status":0,"error":"x","leg_saldos":[11]}`, "leg_saldos: not a key of a record with an unknown result", nil},
		{"a of a move", hdrV3, `{` + move + `"a":11,"legs":[[11,1]],"result":"ok","leg_saldos":[11]}`, "a: not a key of a record with a move", nil},
		{"b of a move", hdrV3, `{` + move + `"b":12,"legs":[[11,1]],"result":"ok","leg_saldos":[11]}`, "b: not a key of a record with a move", nil},
		{"amount of a move", hdrV3, `{` + move + `"amount":1,"legs":[[11,1]],"result":"ok","leg_saldos":[11]}`, "amount: not a key of a record with a move", nil},
		{"saldo of a move", hdrV3, `{` + move + `"legs":[[11,1]],"result":"ok","leg_saldos":[11],"saldo":11}`, "saldo: not a key of a record with a move", nil},
		{"saldo_b of a move", hdrV3, `{` + move + `"legs":[[11,1]],"result":"ok","leg_saldos":[11],"saldo_b":11}`, "saldo_b: not a key of a record with a move", nil},
		{"legs given twice", hdrV3, `{` + move + `"legs":[[11,1]],"legs":[[12,1]],"result":"ok","leg_saldos":[11]}`, "legs: given 2 times", nil},
		{"legs of a deposit", hdrV3, `{` + op + `"op":"deposito","a":11,"amount":1,"legs":[[11,1]],"result":"ok","saldo":11}`, "legs: not a key of a record with a deposito", nil},
		{"leg_saldos of a read", hdrV3, `{` + op + `"op":"saldo","a":11,"result":"ok","saldo":11,"leg_saldos":[11]}`, "leg_saldos: not a key of a record with a saldo", nil},
		{"legs in a snapshot", hdrV3, `{` + snap + `"result":"ok","saldos":[1,2,3,4],"legs":[[11,1]]}`, "legs: not a key of a record of type snapshot", nil},
		{"a version 3 transfer", hdrV3, `{` + op + `"op":"transferencia","a":14,"b":13,"amount":1,"result":"ok","saldo":1,"saldo_b":2}`, "", nil},

		// Snapshots.
		{"valid snapshot", hdrV2, `{` + snap + `"result":"ok","saldos":[1,2,3,4]}`, "", func(t *testing.T, r record) {
			if !slices.Equal(r.entry.Saldos, []int64{1, 2, 3, 4}) || r.trimmed {
				t.Fatalf("%+v", r)
			}
		}},
		{"snapshot of an op's client", hdrV2, `{"type":"snapshot","client":0,"call":5,"ret":9,"result":"ok","saldos":[1,2,3,4]}`, "client: 0 (a snapshot's is -1)", nil},
		{"snapshot without client", hdrV2, `{"type":"snapshot","call":5,"ret":9,"result":"ok","saldos":[1,2,3,4]}`, "client: missing", nil},
		{"snapshot ret before call", hdrV2, `{"type":"snapshot","client":-1,"call":60,"ret":7,"result":"ok","saldos":[1,2,3,4]}`, "ret 7 is before call 60", nil},
		{"ok snapshot without saldos", hdrV2, `{` + snap + `"result":"ok"}`, "saldos: missing", nil},
		{"null saldos", hdrV2, `{` + snap + `"result":"ok","saldos":null}`, "saldos: null", nil},
		{"a null balance", hdrV2, `{` + snap + `"result":"ok","saldos":[1,2,null,4]}`, "saldos[2]: null is null", nil},
		{"short snapshot", hdrV2, `{` + snap + `"result":"ok","saldos":[1,2,3]}`, "saldos: 3 balances for the 4 accounts the history covers", nil},
		{"long snapshot of version 2", hdrV2, `{` + snap + `"result":"ok","saldos":[1,2,3,4,5]}`, "saldos: 5 balances for the 4 accounts", nil},
		{"long snapshot of version 1 is trimmed", hdrV1, `{` + snap + `"result":"ok","saldos":[1,2,3,4,5,6]}`, "", func(t *testing.T, r record) {
			if !slices.Equal(r.entry.Saldos, []int64{1, 2, 3, 4}) || !r.trimmed {
				t.Fatalf("%+v", r)
			}
		}},
		{"short snapshot of version 1", hdrV1, `{` + snap + `"result":"ok","saldos":[1,2,3]}`, "saldos: 3 balances for the 4 accounts", nil},
		{"saldos of a failed snapshot", hdrV2, `{` + snap + `"result":"fail","status":200,"error":"LOCKED_ACCOUNT","saldos":[1,2,3,4]}`, "saldos: not a key of a record with a fail result", nil},
		{"valid failed snapshot", hdrV2, `{` + snap + `"result":"unknown","status":503,"error":"UNAVAILABLE"}`, "", nil},
		{"op key in a snapshot", hdrV2, `{` + snap + `"result":"ok","saldos":[1,2,3,4],"a":1}`, "a: not a key of a record of type snapshot", nil},
		{"balances with spaces", hdrV2, `{` + snap + `"result":"ok","saldos":[ 1 , 2,3 ,4 ]}`, "", nil},
		{"empty balances", hdrV2, `{` + snap + `"result":"ok","saldos":[ ]}`, "saldos: 0 balances", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := parseRecord(c.hdr, []byte(c.line))
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("%s: %v, want it valid", c.line, err)
			case c.want != "" && err == nil:
				t.Fatalf("%s: valid, want an error with %q", c.line, c.want)
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Fatalf("%s:\n%v\nwant an error with %q", c.line, err, c.want)
			}
			if c.check != nil {
				c.check(t, r)
			}
		})
	}
}

func equalEntries(a, b Entry) bool {
	return a.Type == b.Type && a.Client == b.Client && a.Op == b.Op && a.A == b.A && a.B == b.B &&
		a.Amount == b.Amount && a.Call == b.Call && a.Ret == b.Ret && a.Result == b.Result &&
		a.Status == b.Status && a.Error == b.Error && a.Saldo == b.Saldo && a.SaldoB == b.SaldoB &&
		slices.Equal(a.Saldos, b.Saldos) && slices.Equal(a.Legs, b.Legs) && slices.Equal(a.LegSaldos, b.LegSaldos)
}
