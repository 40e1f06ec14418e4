package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/bank/gobank/benchmarks/loadgen"
	"github.com/bank/gobank/cmd/internal/servercmd"
)

// runBench runs "bank bench", the load generator.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := loadgen.Command(ctx, args, stdout, stderr)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, loadgen.ErrUsage):
		fmt.Fprintf(stderr, "bank %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "bank bench: %v\n", err)
	return exitFail
}

// runServer runs "bank dataserver" or "bank businessserver" until ctx is
// cancelled (SIGINT or SIGTERM in main), which shuts the server down
// gracefully.
func runServer(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) int {
	serve := servercmd.Data
	if cmd == "businessserver" {
		serve = servercmd.Business
	}
	err := serve(ctx, args, stdout, stderr)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, servercmd.ErrUsage):
		return exitUsage // the usage was already printed
	}
	fmt.Fprintf(stderr, "bank %s: %v\n", cmd, err)
	return exitFail
}
