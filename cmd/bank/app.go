package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Defaults of the client flags, and the environment variables that override
// them.
const (
	envServer = "BANK_SERVER"
	envAuth   = "BANK_AUTH"
	envToken  = "BANK_TOKEN"

	defaultServer = "http://localhost:5001"
	defaultAuth   = "http://localhost:5000/autentica"
	defaultToken  = "ba0f"
)

const mainUsage = `bank: the command line of the Go distributed bank.

usage:
  bank deposito CONTA VALOR            deposit VALOR into account CONTA
  bank saque CONTA VALOR               withdraw VALOR from account CONTA
  bank saldo CONTA                     print the balance of account CONTA
  bank transferencia ORIG DEST VALOR   move VALOR from account ORIG to account DEST
  bank up [flags]                      run a data server and three business servers here
  bank demo [flags]                    run the original's demonstration against running servers
  bank bench [flags]                   load-test business servers (or the data server), with a
                                       latency histogram and a conservation check
  bank check [flags] FILE              check a history of bank bench --history (conservation, linearizability)
  bank soak [flags]                    run a bank of its own under load and faults for a while,
                                       checking each round's history and the servers' growth
  bank experiment [flags]              run the lock-scheme grid (policy x order x skew x servers x
                                       workers), prove every cell correct, write a report, CSV, JSON
  bank dataserver [flags]              run a data server (port 5000)
  bank businessserver DATA_URL [PORT] [flags]
                                       run a business server (port 5001)
  bank help [COMMAND]                  print this help, or a command's

Flags of deposito, saque, saldo and transferencia (before or after the arguments):
  --server URL    business server (env BANK_SERVER; default http://localhost:5001);
                  several URLs, comma-separated, are tried in turn on retries
  --auth URL      the data server's /autentica URL, where the token is checked
                  (env BANK_AUTH; default http://localhost:5000/autentica)
  --token TOKEN   client token (env BANK_TOKEN; default ba0f)
  --timeout D     bound of each HTTP call (default 10s)
  --retries N     repeat an operation whose outcome is unknown (no answer, 502,
                  503, 504) up to N times (default 2), with the same
                  Idempotency-Key: the bank applies it at most once
  --key KEY       the Idempotency-Key of deposito, saque or transferencia
                  (default: a random one)

Examples:
  bank up                                     # in a terminal of its own; Ctrl-C stops it
  bank deposito 2 5000                        # deposito conta=2 valor=5000 saldo=6000
  bank transferencia 2 1 2000 --server http://localhost:5002
  bank saque 1 1000 --server http://localhost:5003
  bank saldo 2
  bank demo --seed 42
  bank bench --workers 64 --duration 10s      # against bank up's three business servers
  BANK_TOKEN=4c0e bank saldo 7

Exit status: 0 success; 1 the operation failed or was refused (the reason is
printed on stderr); 2 the command line is wrong; bank experiment: 130 interrupted.
Run "bank help COMMAND" for a command's flags.
`

// run is the whole command: it returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, mainUsage)
		return exitUsage
	}
	args = hoistOp(args)
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "-help", "--help":
		return runHelp(ctx, rest, stdout, stderr)
	case "deposito", "saque", "saldo", "transferencia":
		return runOp(ctx, cmd, rest, getenv, stdout, stderr)
	case "up":
		return runUp(ctx, rest, getenv, stdout, stderr)
	case "demo":
		return runDemo(ctx, rest, getenv, stdout, stderr)
	case "dataserver", "businessserver":
		return runServer(ctx, cmd, rest, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, stdout, stderr)
	case "check":
		return runCheck(ctx, rest, stdout, stderr)
	case "soak":
		return runSoak(ctx, rest, stdout, stderr)
	case "experiment":
		return runExperiment(ctx, rest, stdout, stderr)
	}
	fmt.Fprintf(stderr, "bank: unknown command %q\n\n%s", cmd, mainUsage)
	return exitUsage
}

// hoistOp moves a client operation given after its flags to the front:
// "bank --server URL saldo 2" is "bank saldo --server URL 2".
func hoistOp(args []string) []string {
	if len(args) == 0 || !strings.HasPrefix(args[0], "-") || len(args[0]) < 2 {
		return args
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if _, isOp := opArgNames[a]; isOp {
			out := append([]string{a}, args[:i]...)
			return append(out, args[i+1:]...)
		}
		if a == "--" || !strings.HasPrefix(a, "-") {
			return args
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		switch name {
		case "server", "auth", "token", "timeout", "retries", "key":
			i++ // skip the flag's value
		}
	}
	return args
}

// runHelp prints the main usage, or one command's.
func runHelp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stdout, mainUsage)
		return exitOK
	}
	if len(args) > 1 {
		fmt.Fprintf(stderr, "bank help: one command at a time\n\n%s", mainUsage)
		return exitUsage
	}
	switch cmd := args[0]; cmd {
	case "deposito", "saque", "saldo", "transferencia":
		fmt.Fprint(stdout, opUsage(cmd))
	case "up":
		fmt.Fprint(stdout, upUsage())
	case "demo":
		fmt.Fprint(stdout, demoUsage())
	case "dataserver", "businessserver":
		// The servers print their own usage, with every flag.
		return runServer(ctx, cmd, []string{"--help"}, stdout, stdout)
	case "bench":
		return runBench(ctx, []string{"--help"}, stdout, stdout)
	case "soak":
		return runSoak(ctx, []string{"--help"}, stdout, stdout)
	case "experiment":
		return runExperiment(ctx, []string{"--help"}, stdout, stdout)
	case "help":
		fmt.Fprint(stdout, mainUsage)
	default:
		fmt.Fprintf(stderr, "bank help: unknown command %q\n\n%s", cmd, mainUsage)
		return exitUsage
	}
	return exitOK
}

// describeFlags lists a FlagSet's flags, as flag.PrintDefaults does.
func describeFlags(fs *flag.FlagSet) string {
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	return b.String()
}
