package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/bank/gobank/http/auth"
	"github.com/bank/gobank/http/client"
)

const demoDescription = `Runs the original bank's demonstration against running servers (start them
with "bank up"): --clients clients at once, spread over the business servers,
some with a valid token and some with an invalid one, each making --ops
random calls (deposits, withdrawals, transfers and balances) on existing and
missing accounts, with valid and invalid amounts. Every call and its answer
is printed, with whether the answer was of the expected kind: success, or
INSUFFICIENT_FUNDS or LOCKED_ACCOUNT (accounts are shared by concurrent
clients), for a valid call; UNAUTHORIZED for an invalid token; NOT_FOUND for
a missing account; INVALID_VALUE for a negative amount; SAME_ACCOUNT for a
transfer to itself. Then it checks that no money appeared or vanished: the
total of the accounts must have moved by exactly the deposits minus the
withdrawals that succeeded (other clients using the bank at the same time
would upset this check: turn it off with --check-total=false).

The exit status is 0 when every answer was of the expected kind and the
total checks out, 1 otherwise. The same --seed gives the same calls.`

// demoConfig is a parsed "bank demo" command line.
type demoConfig struct {
	servers    []string
	auth       string
	clients    int
	ops        int
	accounts   int
	seed       uint64
	seedSet    bool
	timeout    time.Duration
	checkTotal bool
}

const defaultDemoServers = "http://localhost:5001,http://localhost:5002,http://localhost:5003"

func newDemoFlagSet(c *demoConfig, servers *string, seed *int64, getenv func(string) string) *flag.FlagSet {
	fs := newFlagSet("demo")
	fs.StringVar(servers, "servers", defaultDemoServers, "business server URLs, comma-separated; clients are spread over them")
	fs.StringVar(&c.auth, "auth", envOr(getenv, envAuth, defaultAuth), "the data server's /autentica URL (env "+envAuth+")")
	fs.IntVar(&c.clients, "clients", 10, "number of concurrent clients")
	fs.IntVar(&c.ops, "ops", 6, "calls per client")
	fs.IntVar(&c.accounts, "accounts", 10, "the accounts that exist are 1..accounts (as the data server's --accounts)")
	fs.Int64Var(seed, "seed", -1, "random seed (default: from the clock; printed so a run can be repeated)")
	fs.DurationVar(&c.timeout, "timeout", client.DefaultTimeout, "bound of each HTTP call")
	fs.BoolVar(&c.checkTotal, "check-total", true, "check that the total of the accounts moved by exactly the deposits minus the withdrawals")
	return fs
}

func demoUsage() string {
	var c demoConfig
	var servers string
	var seed int64
	fs := newDemoFlagSet(&c, &servers, &seed, func(string) string { return "" })
	return fmt.Sprintf("usage: bank demo [flags]\n\n%s\n\nflags:\n%s\nexamples:\n  bank demo\n  bank demo --seed 42 --clients 20\n  bank demo --servers http://10.0.0.7:5001,http://10.0.0.8:5001 --auth http://10.0.0.6:5000/autentica\n",
		demoDescription, describeFlags(fs))
}

// parseDemo parses the command line of "bank demo".
func parseDemo(args []string, getenv func(string) string) (demoConfig, error) {
	var c demoConfig
	var servers string
	var seed int64
	fs := newDemoFlagSet(&c, &servers, &seed, getenv)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return c, err
	}
	if len(pos) > 0 {
		return c, usagef("demo takes no arguments, got %q", pos)
	}
	for _, s := range strings.Split(servers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.servers = append(c.servers, s)
		}
	}
	switch {
	case len(c.servers) == 0:
		return c, usagef("--servers: need at least one business server")
	case c.clients < 1:
		return c, usagef("--clients %d: need at least one client", c.clients)
	case c.ops < 1:
		return c, usagef("--ops %d: need at least one call per client", c.ops)
	case c.accounts < 1:
		return c, usagef("--accounts %d: need at least one account", c.accounts)
	case c.timeout < 0:
		return c, usagef("--timeout %v: must not be negative", c.timeout)
	case seed < -1:
		return c, usagef("--seed %d: must not be negative", seed)
	}
	if seed >= 0 {
		c.seed, c.seedSet = uint64(seed), true
	}
	return c, nil
}

// demoClient is one simulated client: a business server and a token.
type demoClient struct {
	n      int
	server string
	token  string
	valid  bool
	calls  []demoCall
}

// demoCall is one planned call and the kinds of answer it may get: nil
// for success, else a sentinel of package client.
type demoCall struct {
	op     string
	args   []int64
	expect []error
}

var errSuccess error // nil in expect lists: success

// planDemo draws the clients and their calls from the seed.
func planDemo(c demoConfig, seed uint64) []*demoClient {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	invalidTokens := []string{"ba0g", "xxxx", "BA0F", "0000"}
	clients := make([]*demoClient, c.clients)
	anyInvalid := false
	for i := range clients {
		dc := &demoClient{n: i + 1, server: c.servers[i%len(c.servers)], valid: true}
		// The first client is always valid, and at least one is not.
		if i > 0 && (rng.IntN(4) == 0 || (!anyInvalid && i == c.clients-1)) {
			dc.valid = false
			anyInvalid = true
			dc.token = invalidTokens[rng.IntN(len(invalidTokens))]
		} else {
			dc.token = auth.DefaultClientTokens[rng.IntN(len(auth.DefaultClientTokens))]
		}
		for range c.ops {
			dc.calls = append(dc.calls, planCall(rng, c.accounts, dc.valid))
		}
		clients[i] = dc
	}
	return clients
}

// planCall draws one call: mostly valid, sometimes on a missing account,
// with a negative amount, or a transfer to the same account.
func planCall(rng *rand.Rand, accounts int, validToken bool) demoCall {
	account := func() (int64, bool) {
		if rng.IntN(6) == 0 {
			return int64(accounts + 1 + rng.IntN(1000)), false
		}
		return int64(1 + rng.IntN(accounts)), true
	}
	value := func() (int64, bool) {
		if rng.IntN(10) == 0 {
			return -int64(1 + rng.IntN(100)), false
		}
		return int64(1 + rng.IntN(1500)), true
	}
	var call demoCall
	var kinds []error // the refusals that apply
	mayFail := false  // insufficient funds possible
	switch rng.IntN(4) {
	case 0, 1:
		call.op = "deposito"
		if rng.IntN(2) == 0 {
			call.op = "saque"
			mayFail = true
		}
		a, okA := account()
		v, okV := value()
		call.args = []int64{a, v}
		if !okA {
			kinds = append(kinds, client.ErrNotFound)
		}
		if !okV {
			kinds = append(kinds, client.ErrInvalidValue)
		}
	case 2:
		call.op = "saldo"
		a, okA := account()
		call.args = []int64{a}
		if !okA {
			kinds = append(kinds, client.ErrNotFound)
		}
	case 3:
		call.op = "transferencia"
		mayFail = true
		o, okO := account()
		d, okD := account()
		if rng.IntN(8) == 0 {
			d, okD = o, okO
		}
		v, okV := value()
		call.args = []int64{o, d, v}
		if !okO || !okD {
			kinds = append(kinds, client.ErrNotFound)
		}
		if !okV {
			kinds = append(kinds, client.ErrInvalidValue)
		}
		if o == d {
			kinds = append(kinds, client.ErrSameAccount)
		}
	}
	switch {
	case !validToken:
		// The client authenticates before its first call: the data server
		// refuses the token whatever the call.
		call.expect = []error{client.ErrUnauthorized}
	case len(kinds) > 0:
		// When several things are wrong, the server may report any of them.
		call.expect = kinds
	default:
		call.expect = []error{errSuccess, client.ErrLocked}
		if mayFail {
			call.expect = append(call.expect, client.ErrInsufficientFunds)
		}
	}
	return call
}

// expectText describes the kinds of answer a call may get.
func expectText(kinds []error) string {
	var names []string
	for _, k := range kinds {
		if k == errSuccess {
			names = append(names, "success")
			continue
		}
		names = append(names, sentinelName(k))
	}
	return strings.Join(names, " or ")
}

func sentinelName(err error) string {
	switch err {
	case client.ErrUnauthorized:
		return "UNAUTHORIZED"
	case client.ErrLocked:
		return "LOCKED_ACCOUNT"
	case client.ErrNotFound:
		return "NOT_FOUND"
	case client.ErrInvalidValue:
		return "INVALID_VALUE"
	case client.ErrInsufficientFunds:
		return "INSUFFICIENT_FUNDS"
	case client.ErrSameAccount:
		return "SAME_ACCOUNT"
	case client.ErrUnavailable:
		return "UNAVAILABLE"
	}
	return err.Error()
}

// demoTally counts the outcomes of the calls.
type demoTally struct {
	mu         sync.Mutex
	calls      int
	succeeded  int
	refused    int // refused as expected
	unexpected int
	netDeposit int64 // succeeded deposits minus succeeded withdrawals
}

func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := parseDemo(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, demoUsage())
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "bank demo: %v\nrun \"bank help demo\" for usage\n", err)
		return exitUsage
	}
	if !cfg.seedSet {
		cfg.seed = uint64(time.Now().UnixNano()) & (1<<63 - 1)
	}
	return demo(ctx, cfg, stdout, stderr)
}

// demo runs the demonstration; it returns the exit status.
func demo(ctx context.Context, cfg demoConfig, stdout, stderr io.Writer) int {
	plan := planDemo(cfg, cfg.seed)
	var outMu sync.Mutex
	printf := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(stdout, format, args...)
	}
	printf("demo: seed %d (repeat with --seed %d): %d clients, %d calls each, over %s\n",
		cfg.seed, cfg.seed, cfg.clients, cfg.ops, strings.Join(cfg.servers, ", "))

	// Every client is built before any starts, so that a bad URL stops
	// the demo before it has begun.
	clients := make([]*client.Client, len(plan))
	for i, dc := range plan {
		c, err := client.New(dc.server, cfg.auth, dc.token, client.WithTimeout(cfg.timeout),
			client.WithClientID(fmt.Sprintf("demo-client-%d", dc.n)))
		if err != nil {
			fmt.Fprintf(stderr, "bank demo: %v\n", err)
			return exitUsage
		}
		clients[i] = c
	}
	var before int64
	if cfg.checkTotal {
		total, err := demoTotal(ctx, cfg)
		if err != nil {
			fmt.Fprintf(stderr, "bank demo: reading the balances before: %v\n", err)
			return exitFail
		}
		before = total
		printf("demo: total of accounts 1..%d before: %d\n", cfg.accounts, before)
	}

	var tally demoTally
	var wg sync.WaitGroup
	for i, dc := range plan {
		c := clients[i]
		validity := "valid"
		if !dc.valid {
			validity = "invalid"
		}
		label := fmt.Sprintf("client %2d [%s, token %s (%s)]", dc.n, dc.server, dc.token, validity)
		wg.Go(func() {
			for _, call := range dc.calls {
				if ctx.Err() != nil {
					return
				}
				line, delta, err := demoCallDo(ctx, c, call)
				ok, verdict := judge(call, err)
				answer := line
				if err != nil {
					answer = err.Error()
				}
				printf("%s %s %s -> %s  [%s]\n", label, call.op, joinInts(call.args), answer, verdict)
				tally.mu.Lock()
				tally.calls++
				switch {
				case !ok:
					tally.unexpected++
				case err == nil:
					tally.succeeded++
					tally.netDeposit += delta
				default:
					tally.refused++
				}
				tally.mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		fmt.Fprintf(stderr, "bank demo: interrupted\n")
		return exitFail
	}

	failed := tally.unexpected > 0
	printf("demo: %d calls: %d succeeded, %d refused as expected, %d unexpected answers\n",
		tally.calls, tally.succeeded, tally.refused, tally.unexpected)
	if cfg.checkTotal {
		after, err := demoTotal(ctx, cfg)
		if err != nil {
			fmt.Fprintf(stderr, "bank demo: reading the balances after: %v\n", err)
			return exitFail
		}
		want := before + tally.netDeposit
		verdict := "ok"
		if after != want {
			verdict = "WRONG: money appeared or vanished (or another client used the bank meanwhile)"
			failed = true
		}
		printf("demo: total after: %d; expected %d + %d (deposits - withdrawals) = %d: %s\n",
			after, before, tally.netDeposit, want, verdict)
	}
	if failed {
		fmt.Fprintln(stderr, "bank demo: FAILED: some answers were not of the expected kind (marked UNEXPECTED above)")
		return exitFail
	}
	printf("demo: OK: every answer was of the expected kind\n")
	return exitOK
}

// demoCallDo performs one call; delta is what it added to the bank's total.
func demoCallDo(ctx context.Context, c *client.Client, call demoCall) (line string, delta int64, err error) {
	line, err = doOp(ctx, c, call.op, call.args)
	if err != nil {
		return "", 0, err
	}
	// The answer must be about the call that was made.
	switch call.op {
	case "deposito", "saque":
		var conta, valor, saldo int64
		if _, serr := fmt.Sscanf(line, call.op+" conta=%d valor=%d saldo=%d", &conta, &valor, &saldo); serr != nil ||
			conta != call.args[0] || valor != call.args[1] || saldo < 0 {
			return line, 0, fmt.Errorf("answer does not match the call: %s", line)
		}
		if call.op == "deposito" {
			return line, valor, nil
		}
		return line, -valor, nil
	case "saldo":
		var conta, saldo int64
		if _, serr := fmt.Sscanf(line, "saldo conta=%d saldo=%d", &conta, &saldo); serr != nil || saldo < 0 {
			return line, 0, fmt.Errorf("impossible balance: %s", line)
		}
	case "transferencia":
		var o, d, v, so, sd int64
		if _, serr := fmt.Sscanf(line, "transferencia conta_orig=%d conta_dest=%d valor=%d saldo_orig=%d saldo_dest=%d", &o, &d, &v, &so, &sd); serr != nil ||
			o != call.args[0] || d != call.args[1] || v != call.args[2] || so < 0 || sd < 0 {
			return line, 0, fmt.Errorf("answer does not match the call: %s", line)
		}
	}
	return line, 0, nil
}

// judge says whether err is one of the kinds call expects.
func judge(call demoCall, err error) (bool, string) {
	for _, k := range call.expect {
		if (k == errSuccess && err == nil) || (k != errSuccess && err != nil && errors.Is(err, k)) {
			return true, "ok"
		}
	}
	return false, "UNEXPECTED: wanted " + expectText(call.expect)
}

// demoTotal sums the balances of accounts 1..accounts through the first
// business server, with the original client's default token.
func demoTotal(ctx context.Context, cfg demoConfig) (int64, error) {
	c, err := client.New(cfg.servers[0], cfg.auth, defaultToken, client.WithTimeout(cfg.timeout), client.WithClientID("demo-audit"))
	if err != nil {
		return 0, err
	}
	var total int64
	for a := int64(1); a <= int64(cfg.accounts); a++ {
		s, err := c.Saldo(ctx, a)
		if err != nil {
			return 0, err
		}
		total += s
	}
	return total, nil
}

func joinInts(v []int64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, " ")
}
