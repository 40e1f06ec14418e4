// Command bank is the command line of the Go distributed bank: client
// operations (deposito, saque, saldo, transferencia), the servers
// (dataserver, businessserver), a one-command local cluster (up) and the
// original's demonstration (demo). Run "bank help".
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
