package check_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/bank/gobank/benchmarks/check"
)

// benchHistory is a version 1 history (which every version of Read
// reads) of ops operations over 10 accounts, and a snapshot every
// ops/snaps of them.
func benchHistory(ops, snaps int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"type":"header","version":1,"start":"x","target":"business","accounts":10,"groups":0,"initial":[1000,1000,1000,1000,1000,1000,1000,1000,1000,1000]}` + "\n")
	for i := range ops {
		t := int64(i) * 100
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, `{"type":"op","client":%d,"op":"deposito","a":%d,"amount":10,"call":%d,"ret":%d,"result":"ok","saldo":1010}`+"\n", i%8, 1+i%10, t, t+50)
		case 1:
			fmt.Fprintf(&b, `{"type":"op","client":%d,"op":"transferencia","a":%d,"b":%d,"amount":10,"call":%d,"ret":%d,"result":"ok","saldo":990,"saldo_b":1010}`+"\n", i%8, 1+i%10, 1+(i+1)%10, t, t+50)
		case 2:
			fmt.Fprintf(&b, `{"type":"op","client":%d,"op":"saque","a":%d,"amount":10,"call":%d,"ret":%d,"result":"unknown","status":0,"error":"timeout"}`+"\n", i%8, 1+i%10, t, t+50)
		default:
			fmt.Fprintf(&b, `{"type":"op","client":%d,"op":"saldo","a":%d,"call":%d,"ret":%d,"result":"ok","saldo":1000}`+"\n", i%8, 1+i%10, t, t+50)
		}
		if i%(ops/snaps) == 0 {
			fmt.Fprintf(&b, `{"type":"snapshot","client":-1,"call":%d,"ret":%d,"result":"ok","saldos":[1000,1000,1000,1000,1000,1000,1000,1000,1000,1000]}`+"\n", t, t+60)
		}
	}
	return b.Bytes()
}

func BenchmarkRead(b *testing.B) {
	data := benchHistory(100_000, 100)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := check.Read(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBank(b *testing.B) {
	h, err := check.Read(bytes.NewReader(benchHistory(100_000, 100)))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		check.Bank(h)
	}
}
