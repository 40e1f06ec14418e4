package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/bank/gobank/cmd/internal/servercmd"
)

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
