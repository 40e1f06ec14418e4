package wire

import (
	"strconv"

	"github.com/bank/gobank/actors/teller"
)

// AppendTransfers appends the body of a business server's POST
// /transferencias: a JSON array of the n transfers at(0..n-1), each
// {"conta_orig":A,"conta_dest":B,"valor":V} with "linked":true when it
// is linked. The Go client, the load generator and the benchmarks send
// batches with it; the business server decodes them (package business).
func AppendTransfers(dst []byte, n int, at func(i int) teller.BatchTransfer) []byte {
	dst = append(dst, '[')
	for i := range n {
		t := at(i)
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"conta_orig":`...)
		dst = strconv.AppendInt(dst, t.From, 10)
		dst = append(dst, `,"conta_dest":`...)
		dst = strconv.AppendInt(dst, t.To, 10)
		dst = append(dst, `,"valor":`...)
		dst = strconv.AppendInt(dst, t.Amount, 10)
		if t.Linked {
			dst = append(dst, `,"linked":true`...)
		}
		dst = append(dst, '}')
	}
	return append(dst, ']')
}
