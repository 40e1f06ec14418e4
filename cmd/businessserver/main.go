// Command businessserver runs one of the bank's business servers: deposits,
// withdrawals, balances and transfers, over accounts kept by a data server.
// Usage: businessserver DATA_URL [PORT]; run it with --help.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/bank/gobank/cmd/internal/servercmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := servercmd.Business(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, servercmd.ErrUsage) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "businessserver:", err)
		os.Exit(1)
	}
}
