package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"testing"

	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/client"
	"github.com/bank/gobank/http/dataserver/dataservertest"
)

// The seed README's example, against a data server and a business server
// started here (with "bank up", they would be http://localhost:5000 and
// http://localhost:5001).
func Example() {
	businessURL, authURL, stop := startExampleBank()
	defer stop()

	c, err := client.New(businessURL, authURL, "ba0f")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	// Deposit 5000 into account 2.
	m, err := c.Deposito(ctx, 2, 5000)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("deposito: account %d, balance %d\n", m.Conta, m.Saldo)

	// Transfer 2000 from account 2 to account 1.
	t, err := c.Transferencia(ctx, 2, 1, 2000)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("transferencia: account %d balance %d, account %d balance %d\n", t.ContaOrig, t.SaldoOrig, t.ContaDest, t.SaldoDest)

	// Withdraw 1000 from account 1.
	m, err = c.Saque(ctx, 1, 1000)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("saque: account %d, balance %d\n", m.Conta, m.Saldo)

	// The balance of account 2.
	saldo, err := c.Saldo(ctx, 2)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("saldo: account 2, balance %d\n", saldo)

	// Output:
	// deposito: account 2, balance 6000
	// transferencia: account 2 balance 4000, account 1 balance 3000
	// saque: account 1, balance 2000
	// saldo: account 2, balance 4000
}

// A batch of transfers in one request: each transfer has its own result,
// and a linked chain is applied whole or not at all.
func ExampleClient_Transferencias() {
	businessURL, authURL, stop := startExampleBank()
	defer stop()

	c, err := client.New(businessURL, authURL, "ba0f")
	if err != nil {
		log.Fatal(err)
	}
	ans, err := c.Transferencias(context.Background(), []client.TransferItem{
		{ContaOrig: 1, ContaDest: 2, Valor: 300},
		{ContaOrig: 3, ContaDest: 4, Valor: 500, Linked: true}, // a chain of two:
		{ContaOrig: 4, ContaDest: 5, Valor: 9000},              // refused, so the chain is
		{ContaOrig: 2, ContaDest: 6, Valor: 1300},
	})
	if err != nil {
		log.Fatal(err) // the whole batch failed: no results
	}
	fmt.Printf("applied %d of %d\n", ans.Applied, len(ans.Results))
	for i, r := range ans.Results {
		switch {
		case r.Err == nil:
			fmt.Printf("%d: balances %d and %d\n", i, r.SaldoOrig, r.SaldoDest)
		case errors.Is(r.Err, client.ErrLinkedFailed):
			fmt.Printf("%d: not applied: another transfer of its chain was refused\n", i)
		case errors.Is(r.Err, client.ErrInsufficientFunds):
			fmt.Printf("%d: not applied: insufficient funds\n", i)
		default:
			fmt.Printf("%d: not applied: %v\n", i, r.Err)
		}
	}

	// Output:
	// applied 2 of 4
	// 0: balances 700 and 1300
	// 1: not applied: another transfer of its chain was refused
	// 2: not applied: insufficient funds
	// 3: balances 0 and 2300
}

// startExampleBank starts the original's demo bank (accounts 1..10 holding
// 1000 each) with the test helpers, which want a testing.TB: examples have
// none, so exampleTB stands in for one.
func startExampleBank() (businessURL, authURL string, stop func()) {
	tb := &exampleTB{}
	data := dataservertest.Start(tb, dataservertest.Options{})
	bs := businesstest.Start(tb, data, businesstest.Options{})
	return bs.URL, data.URL + "/autentica", tb.cleanup
}

// exampleTB implements the part of testing.TB that the test servers use.
// The embedded interface is nil: any other method would panic.
type exampleTB struct {
	testing.TB
	cleanups []func()
}

func (*exampleTB) Helper()                           {}
func (*exampleTB) Fatal(args ...any)                 { log.Fatal(args...) }
func (*exampleTB) Fatalf(format string, args ...any) { log.Fatalf(format, args...) }
func (*exampleTB) Logf(format string, args ...any)   { log.Printf(format, args...) }
func (tb *exampleTB) Cleanup(f func())               { tb.cleanups = append(tb.cleanups, f) }

func (tb *exampleTB) cleanup() {
	for i := len(tb.cleanups) - 1; i >= 0; i-- {
		tb.cleanups[i]()
	}
}
