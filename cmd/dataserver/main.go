// Command dataserver runs the bank's data server: the accounts, each one an
// actor, behind the original bank's HTTP routes. Run it with --help.
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
	if err := servercmd.Data(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, servercmd.ErrUsage) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "dataserver:", err)
		os.Exit(1)
	}
}
