package loadgen

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func noEnv(string) string { return "" }

func TestCommandShortRunAgainstRealBank(t *testing.T) {
	_, urls := startBank(t)
	var stdout, stderr bytes.Buffer
	err := command(t.Context(), []string{"--servers", strings.Join(urls, ","), "--duration", "500ms", "--workers", "8",
		"--dist", "zipf:0.99"}, noEnv, &stdout, &stderr)
	if err != nil {
		t.Fatalf("exit with %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"p50 ", "p90 ", "p99 ", "p99.9 ", "max ", "throughput", "ok/s", "total/s",
		"outcome", "deposito", "saque", "transferencia", "saldo", "conservation: PASS", "before 10000"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr.String(), "requests") || !strings.Contains(stderr.String(), "req/s") {
		t.Errorf("no progress line on stderr: %q", stderr.String())
	}
	t.Logf("sample table:\n%s", out)
}

func TestCommandFailsWhenMoneyIsCreated(t *testing.T) {
	bank := newFakeBank(10, 1000)
	bank.depositFactor = 2
	url := serve(t, bank.handle)
	var stdout, stderr bytes.Buffer
	err := command(t.Context(), []string{"--servers", url, "--duration", "200ms", "--workers", "2", "--quiet"}, noEnv, &stdout, &stderr)
	if !errors.Is(err, ErrConservation) || errors.Is(err, ErrUsage) {
		t.Fatalf("err = %v; want the conservation failure", err)
	}
	if !strings.Contains(stdout.String(), "conservation: FAIL") || !strings.Contains(err.Error(), "money created") {
		t.Errorf("err %v; table:\n%s", err, stdout.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("--quiet printed progress: %q", stderr.String())
	}

	// --no-check: the same broken bank, exit status 0 and no check.
	stdout.Reset()
	err = command(t.Context(), []string{"--servers", url, "--requests", "20", "--workers", "2", "--quiet", "--no-check"}, noEnv, &stdout, &stderr)
	if err != nil || !strings.Contains(stdout.String(), "conservation: not checked") {
		t.Errorf("--no-check: err %v, table:\n%s", err, stdout.String())
	}
}

func TestCommandJSON(t *testing.T) {
	_, urls := startBank(t)
	var stdout, stderr bytes.Buffer
	err := command(t.Context(), []string{"--json", "--quiet", "--rate", "300", "--duration", "300ms", "--seed", "5"},
		func(k string) string {
			if k == EnvServers {
				return strings.Join(urls, ",")
			}
			return ""
		}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(stdout.Bytes(), &raw); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, stdout.String())
	}
	for _, k := range []string{"target", "mode", "servers", "workers", "rate", "max_inflight", "accounts", "dist", "mix",
		"amount_min", "amount_max", "seed", "timeout_ms", "interrupted", "duration_s", "requests", "ok", "errors",
		"unknown", "dropped", "throughput_ok", "throughput_total", "latency_us", "outcomes", "ops", "conservation"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	var nested struct {
		Latency      map[string]json.RawMessage            `json:"latency_us"`
		Ops          map[string]map[string]json.RawMessage `json:"ops"`
		Conservation map[string]json.RawMessage            `json:"conservation"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &nested); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"min", "mean", "p50", "p90", "p99", "p99_9", "max"} {
		if _, ok := nested.Latency[k]; !ok {
			t.Errorf("latency_us lacks %q", k)
		}
	}
	for _, k := range []string{"requests", "ok", "dropped"} {
		if _, ok := nested.Ops["deposito"][k]; !ok {
			t.Errorf("ops.deposito lacks %q", k)
		}
	}
	for _, k := range []string{"before", "after", "deposited", "withdrawn", "unknown_deposit", "unknown_withdraw",
		"unknown_transfers", "min_after", "max_after", "negative_accounts", "ok", "reason"} {
		if _, ok := nested.Conservation[k]; !ok {
			t.Errorf("conservation lacks %q", k)
		}
	}

	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, n := range rep.Outcomes {
		sum += n
	}
	switch {
	case rep.Mode != "open" || rep.Rate != 300 || rep.Seed != 5 || len(rep.Servers) != 2:
		t.Errorf("settings not echoed: %+v", rep)
	case rep.Requests == 0 || sum != rep.Requests || rep.OK+rep.Errors != rep.Requests:
		t.Errorf("requests %d, ok %d, errors %d, outcomes %v", rep.Requests, rep.OK, rep.Errors, rep.Outcomes)
	case rep.Latency.P50 <= 0 || rep.Latency.P50 > rep.Latency.P99 || rep.Latency.P99 > rep.Latency.Max:
		t.Errorf("latency %+v", rep.Latency)
	case rep.Conservation == nil || !rep.Conservation.OK:
		t.Errorf("conservation %+v", rep.Conservation)
	}
}

func TestCommandUsage(t *testing.T) {
	// No credential file either: the data target must find no credential.
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--mix", "foo=1"}, `unknown op "foo"`},
		{[]string{"--mix", "saldo"}, "want OP=WEIGHT"},
		{[]string{"--mix", "getSaldo=1"}, "not served by the business target"},
		{[]string{"--dist", "zipf:0"}, "(0, 100]"},
		{[]string{"--dist", "hot:0:0.5"}, "K must be a positive integer"},
		{[]string{"--dist", "hot:10:0.5"}, "K must be in 1..9"},
		{[]string{"--amount", "0..5"}, "1 <= MIN <= MAX"},
		{[]string{"--workers", "0"}, "--workers 0"},
		{[]string{"--max-inflight", "0"}, "--max-inflight 0"},
		{[]string{"--duration", "0s"}, "--duration must be positive"},
		{[]string{"--timeout", "-1s"}, "--timeout must be positive"},
		{[]string{"--target", "cache"}, "want business or data"},
		{[]string{"--accounts", "1", "--mix", "transferencia=1"}, "two distinct accounts"},
		{[]string{"--servers", " , "}, "--servers is empty"},
		{[]string{"--servers", "ftp://x"}, "scheme must be http"},
		{[]string{"--bogus"}, "flag provided but not defined"},
		{[]string{"--workers", "many"}, "invalid value"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--target", "data", "--servers", "http://127.0.0.1:1"}, "needs the server credential"},
		{[]string{"--batch", "0"}, "--batch 0: want 1 to 8190"},
		{[]string{"--batch", "8191"}, "--batch 8191: want 1 to 8190"},
		{[]string{"--batch", "-3"}, "want 1 to 8190"},
		{[]string{"--batch", "2", "--history", "h.jsonl"}, "--batch 2 with --history"},
		{[]string{"--batch", "2", "--target", "data", "--token", "t"}, "business target only"},
		{[]string{"--batch", "2", "--mix", "deposito=1,saque=1"}, "no transferencia to batch"},
	} {
		var stdout, stderr bytes.Buffer
		err := command(t.Context(), tc.args, noEnv, &stdout, &stderr)
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v; want a usage error containing %q", tc.args, err, tc.want)
		}
	}
}

func TestCommandHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		var stdout, stderr bytes.Buffer
		if err := command(t.Context(), []string{arg}, noEnv, &stdout, &stderr); err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		help := stdout.String()
		for _, want := range []string{"-target", "-servers", "-token", "-workers", "-duration", "-requests", "-rate",
			"-max-inflight", "-mix", "-amount", "-accounts", "-dist", "-seed", "-timeout", "-no-check", "-unknown-5xx",
			"-settle", "-json", "-quiet", "-batch", "POST /transferencias", "BANK_SERVERS", "BANK_TOKEN", "BANK_SERVER_TOKEN",
			"bank bench --servers http://localhost:5001,http://localhost:5002 --workers 64 --duration 10s",
			"bank bench --rate 2000 --duration 30s --dist zipf:0.99", "zipf:S", "hot:K:P", "Exit status", "p99_9"} {
			if !strings.Contains(help, want) {
				t.Errorf("%s: help lacks %q", arg, want)
			}
		}
	}
}

// TestCommandBatch runs batches against a real bank: the table says so and
// counts their transfers; the conservation check passes.
func TestCommandBatch(t *testing.T) {
	_, urls := startBank(t)
	var stdout, stderr bytes.Buffer
	err := command(t.Context(), []string{"--servers", strings.Join(urls, ","), "--duration", "500ms", "--workers", "4",
		"--mix", "transferencia=3,deposito=1,saque=1", "--batch", "8", "--quiet"}, noEnv, &stdout, &stderr)
	if err != nil {
		t.Fatalf("exit with %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"a batch of 8 transfers", "transfers  ", " batches of 8", "applied/s", "sent/s",
		"batch latency", "per batch of 8", "p99.9 ", "conservation: PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	t.Logf("sample table:\n%s", out)
}

// TestCommandBatchJSON: the batches' counts add up, in the open loop.
func TestCommandBatchJSON(t *testing.T) {
	_, urls := startBank(t)
	var stdout, stderr bytes.Buffer
	err := command(t.Context(), []string{"--servers", strings.Join(urls, ","), "--json", "--quiet", "--rate", "200",
		"--duration", "400ms", "--batch", "5", "--amount", "100..600"}, noEnv, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(stdout.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	var b map[string]json.RawMessage
	if err := json.Unmarshal(raw["batches"], &b); err != nil {
		t.Fatalf("batches: %v in %s", err, stdout.String())
	}
	for _, k := range []string{"size", "requests", "ok", "transfers", "applied", "refused", "throughput_applied",
		"throughput_transfers", "latency_us"} {
		if _, ok := b[k]; !ok {
			t.Errorf("batches lacks %q", k)
		}
	}
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	bs := rep.Batches
	var refused int64
	for _, n := range bs.Refused {
		refused += n
	}
	switch {
	case rep.Batch != 5 || bs.Size != 5:
		t.Errorf("batch %d, size %d", rep.Batch, bs.Size)
	case bs.Requests == 0 || bs.Requests != rep.Ops["transferencia"].Requests || bs.Transfers != 5*bs.Requests:
		t.Errorf("batches %+v, ops %+v", bs, rep.Ops)
	case bs.OK != rep.Ops["transferencia"].OK || bs.Applied+refused != 5*bs.OK:
		t.Errorf("batches %+v: applied %d + refused %d, want 5 × %d answered", bs, bs.Applied, refused, bs.OK)
	case bs.Latency.P50 <= 0 || bs.Latency.P50 > bs.Latency.Max || bs.ThroughputTransfers <= 0:
		t.Errorf("batches %+v", bs)
	case rep.Conservation == nil || !rep.Conservation.OK:
		t.Errorf("conservation %+v", rep.Conservation)
	}
	for name := range bs.Refused {
		if name != "INSUFFICIENT_FUNDS" {
			t.Errorf("refusals %v: want insufficient funds only", bs.Refused)
		}
	}

	// Without --batch: no batches in the report.
	stdout.Reset()
	if err := command(t.Context(), []string{"--servers", urls[0], "--json", "--quiet", "--requests", "20", "--workers", "2"},
		noEnv, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	raw = nil
	if err := json.Unmarshal(stdout.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if string(raw["batch"]) != "1" || raw["batches"] != nil {
		t.Errorf("without --batch: batch %s, batches %s", raw["batch"], raw["batches"])
	}
}
