package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bank/gobank/cmd/internal/servercmd"
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
	"saque":         "bank saque 1 1000\n  bank saque --server http://localhost:5003 1 1000\n  bank saque 1 1000 --key payroll-2026-11-1 --retries 5",
	"saldo":         "bank saldo 2\n  BANK_SERVER=http://localhost:5002 bank saldo 2",
	"transferencia": "bank transferencia 2 1 2000\n  bank transferencia 2 1 2000 --timeout 3s\n  bank transferencia 2 1 2000 --server http://localhost:5001,http://localhost:5002",
}

// opRetryNote explains retries and keys in the help of the operations that
// write.
const opRetryNote = `
When the outcome is unknown (no answer, a broken connection, HTTP 502, 503
or 504), the operation is repeated up to --retries times, going round the
servers of --server, each time with the same Idempotency-Key: the bank
applies it at most once and answers every repetition with the first
outcome. The key is random unless --key gives one; when every attempt
failed, the key is printed, so that the operation can be repeated safely
with --key (the bank keeps outcomes for a day by default).`

// opArgs is a parsed client operation.
type opArgs struct {
	op      string
	args    []int64 // CONTA [VALOR] or ORIG DEST VALOR
	server  string  // one URL, or several comma-separated: the first, then the failovers
	auth    string
	token   string
	timeout time.Duration
	retries int
	key     string // "" for a random one
}

// opFlags defines the client flags on fs, with defaults from the
// environment.
func opFlags(fs *flag.FlagSet, getenv func(string) string, server, auth, token *string, timeout *time.Duration) {
	fs.StringVar(server, "server", envOr(getenv, envServer, defaultServer),
		"business server URL; several, comma-separated, are tried in turn on retries (env "+envServer+")")
	fs.StringVar(auth, "auth", envOr(getenv, envAuth, defaultAuth), "the data server's /autentica URL (env "+envAuth+")")
	fs.StringVar(token, "token", envOr(getenv, envToken, defaultToken), "client token (env "+envToken+")")
	fs.DurationVar(timeout, "timeout", client.DefaultTimeout, "bound of each HTTP call")
}

func newOpFlagSet(op string, getenv func(string) string, a *opArgs) *flag.FlagSet {
	fs := newFlagSet(op)
	opFlags(fs, getenv, &a.server, &a.auth, &a.token, &a.timeout)
	fs.IntVar(&a.retries, "retries", client.DefaultRetries, "how many times to repeat the operation when its outcome is unknown (0: never)")
	if op != "saldo" {
		fs.StringVar(&a.key, "key", "", "Idempotency-Key of the operation, 1 to 128 printable ASCII characters (default: a random one)")
	}
	return fs
}

// opUsage is the help of one client operation.
func opUsage(op string) string {
	var a opArgs
	fs := newOpFlagSet(op, func(string) string { return "" }, &a)
	desc := opDescriptions[op]
	if op != "saldo" {
		desc += "\n" + opRetryNote
	}
	return fmt.Sprintf("usage: bank %s %s [flags]\n\n%s\n\nflags (before or after the arguments):\n%s\nexamples:\n  %s\n",
		op, strings.Join(opArgNames[op], " "), desc, describeFlags(fs), opExamples[op])
}

// serverList splits --server into the business server and the failovers.
func serverList(server string) (first string, others []string) {
	for _, s := range strings.Split(server, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if first == "" {
			first = s
		} else {
			others = append(others, s)
		}
	}
	return first, others
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
	if a.retries < 0 {
		return a, usagef("--retries %d: must not be negative", a.retries)
	}
	if first, _ := serverList(a.server); first == "" {
		return a, usagef("--server: empty")
	}
	if a.key != "" {
		if len(a.key) > client.MaxKeyLength || strings.IndexFunc(a.key, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
			return a, usagef("--key: want 1 to %d printable ASCII characters", client.MaxKeyLength)
		}
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
		keyFlag := " [--key KEY]"
		if op == "saldo" {
			keyFlag = ""
		}
		fmt.Fprintf(stderr, "bank %s: %v\nusage: bank %s %s [--server URL[,URL...]] [--auth URL] [--token TOKEN] [--timeout D] [--retries N]%s\nrun \"bank help %s\" for more\n",
			op, err, op, strings.Join(opArgNames[op], " "), keyFlag, op)
		return exitUsage
	}
	// OTEL_TRACES_EXPORTER=console|otlp traces the operation, as the
	// servers do: its spans are flushed (console: on stdout) before exiting.
	tp, stopTracing, err := servercmd.SetupTracing(ctx, "gobank-client")
	if err != nil {
		fmt.Fprintf(stderr, "bank %s: %v\n", op, err)
		return exitUsage
	}
	defer func() { _ = servercmd.FlushTracing(ctx, stopTracing) }()
	first, failover := serverList(a.server)
	c, err := client.New(first, a.auth, a.token, client.WithTimeout(a.timeout),
		client.WithRetries(a.retries), client.WithFailover(failover...), client.WithTracerProvider(tp))
	if err != nil {
		fmt.Fprintf(stderr, "bank %s: %v\n", op, err)
		return exitUsage
	}
	var opts []client.CallOption
	if a.key != "" {
		opts = append(opts, client.Key(a.key))
	}
	line, err := doOp(ctx, c, a.op, a.args, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "bank: %v\n", err)
		if e := (*client.Error)(nil); errors.As(err, &e) && e.Key != "" && errors.Is(err, client.ErrUnavailable) {
			fmt.Fprintf(stderr, "bank: the operation may or may not have been applied; repeat it with --key %s "+
				"to apply it at most once and learn its outcome\n", e.Key)
		}
		return exitFail
	}
	fmt.Fprintln(stdout, line)
	return exitOK
}

// doOp performs one operation and describes its answer in one line.
func doOp(ctx context.Context, c *client.Client, op string, args []int64, opts ...client.CallOption) (string, error) {
	switch op {
	case "deposito", "saque":
		call := c.Deposito
		if op == "saque" {
			call = c.Saque
		}
		m, err := call(ctx, args[0], args[1], opts...)
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
		t, err := c.Transferencia(ctx, args[0], args[1], args[2], opts...)
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
