package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bank/gobank/http/client"
)

// opArgNames are the positional arguments of each client operation.
var opArgNames = map[string][]string{
	"deposito":      {"CONTA", "VALOR"},
	"saque":         {"CONTA", "VALOR"},
	"saldo":         {"CONTA"},
	"transferencia": {"ORIG", "DEST", "VALOR"},
}

var opDescriptions = map[string]string{
	"deposito":      "Deposits VALOR into account CONTA and prints the new balance.",
	"saque":         "Withdraws VALOR from account CONTA and prints the new balance; refused when\nthe balance would become negative.",
	"saldo":         "Prints the balance of account CONTA.",
	"transferencia": "Moves VALOR from account ORIG to account DEST and prints both new balances;\nrefused when ORIG's balance would become negative or ORIG equals DEST.",
}

var opExamples = map[string]string{
	"deposito":      "bank deposito 2 5000\n  bank deposito 2 5000 --server http://localhost:5002 --token 4c0e",
	"saque":         "bank saque 1 1000\n  bank saque --server http://localhost:5003 1 1000",
	"saldo":         "bank saldo 2\n  BANK_SERVER=http://localhost:5002 bank saldo 2",
	"transferencia": "bank transferencia 2 1 2000\n  bank transferencia 2 1 2000 --timeout 3s",
}

// opArgs is a parsed client operation.
type opArgs struct {
	op      string
	args    []int64 // CONTA [VALOR] or ORIG DEST VALOR
	server  string
	auth    string
	token   string
	timeout time.Duration
}

// opFlags defines the client flags on fs, with defaults from the
// environment.
func opFlags(fs *flag.FlagSet, getenv func(string) string, server, auth, token *string, timeout *time.Duration) {
	fs.StringVar(server, "server", envOr(getenv, envServer, defaultServer), "business server URL (env "+envServer+")")
	fs.StringVar(auth, "auth", envOr(getenv, envAuth, defaultAuth), "the data server's /autentica URL (env "+envAuth+")")
	fs.StringVar(token, "token", envOr(getenv, envToken, defaultToken), "client token (env "+envToken+")")
	fs.DurationVar(timeout, "timeout", client.DefaultTimeout, "bound of each HTTP call")
}

func newOpFlagSet(op string, getenv func(string) string, a *opArgs) *flag.FlagSet {
	fs := newFlagSet(op)
	opFlags(fs, getenv, &a.server, &a.auth, &a.token, &a.timeout)
	return fs
}

// opUsage is the help of one client operation.
func opUsage(op string) string {
	var a opArgs
	fs := newOpFlagSet(op, func(string) string { return "" }, &a)
	return fmt.Sprintf("usage: bank %s %s [flags]\n\n%s\n\nflags (before or after the arguments):\n%s\nexamples:\n  %s\n",
		op, strings.Join(opArgNames[op], " "), opDescriptions[op], describeFlags(fs), opExamples[op])
}

// parseOp parses the command line of a client operation.
func parseOp(op string, args []string, getenv func(string) string) (opArgs, error) {
	a := opArgs{op: op}
	names, ok := opArgNames[op]
	if !ok {
		return a, usagef("unknown operation %q", op)
	}
	fs := newOpFlagSet(op, getenv, &a)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return a, err
	}
	if a.args, err = parseInts(op, names, pos); err != nil {
		return a, err
	}
	if a.timeout < 0 {
		return a, usagef("--timeout %v: must not be negative", a.timeout)
	}
	return a, nil
}

// runOp runs deposito, saque, saldo or transferencia.
func runOp(ctx context.Context, op string, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	a, err := parseOp(op, args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, opUsage(op))
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "bank %s: %v\nusage: bank %s %s [--server URL] [--auth URL] [--token TOKEN] [--timeout D]\nrun \"bank help %s\" for more\n",
			op, err, op, strings.Join(opArgNames[op], " "), op)
		return exitUsage
	}
	c, err := client.New(a.server, a.auth, a.token, client.WithTimeout(a.timeout))
	if err != nil {
		fmt.Fprintf(stderr, "bank %s: %v\n", op, err)
		return exitUsage
	}
	line, err := doOp(ctx, c, a.op, a.args)
	if err != nil {
		fmt.Fprintf(stderr, "bank: %v\n", err)
		return exitFail
	}
	fmt.Fprintln(stdout, line)
	return exitOK
}

// doOp performs one operation and describes its answer in one line.
func doOp(ctx context.Context, c *client.Client, op string, args []int64) (string, error) {
	switch op {
	case "deposito", "saque":
		call := c.Deposito
		if op == "saque" {
			call = c.Saque
		}
		m, err := call(ctx, args[0], args[1])
		if err != nil {
			return "", err
		}
		return formatMovement(op, m), nil
	case "saldo":
		s, err := c.Saldo(ctx, args[0])
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("saldo conta=%d saldo=%d", args[0], s), nil
	case "transferencia":
		t, err := c.Transferencia(ctx, args[0], args[1], args[2])
		if err != nil {
			return "", err
		}
		return formatTransfer(t), nil
	}
	return "", fmt.Errorf("unknown operation %q", op)
}

func formatMovement(op string, m client.Movement) string {
	return fmt.Sprintf("%s conta=%d valor=%d saldo=%d", op, m.Conta, m.Valor, m.Saldo)
}

func formatTransfer(t client.Transfer) string {
	return fmt.Sprintf("transferencia conta_orig=%d conta_dest=%d valor=%d saldo_orig=%d saldo_dest=%d",
		t.ContaOrig, t.ContaDest, t.Valor, t.SaldoOrig, t.SaldoDest)
}
