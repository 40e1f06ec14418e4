package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bank/gobank/http/client"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseOp(t *testing.T) {
	noEnv := envMap(nil)
	env := envMap(map[string]string{envServer: "http://env:1", envAuth: "http://env:2/autentica", envToken: "4c0e"})
	tests := []struct {
		name    string
		op      string
		args    []string
		env     func(string) string
		want    opArgs
		wantErr string // "" ok, "help", or a substring of the usage error
	}{
		{name: "defaults", op: "deposito", args: []string{"2", "5000"}, env: noEnv,
			want: opArgs{op: "deposito", args: []int64{2, 5000}, server: defaultServer, auth: defaultAuth, token: defaultToken, timeout: 10 * time.Second, retries: 2}},
		{name: "environment", op: "saldo", args: []string{"7"}, env: env,
			want: opArgs{op: "saldo", args: []int64{7}, server: "http://env:1", auth: "http://env:2/autentica", token: "4c0e", timeout: 10 * time.Second, retries: 2}},
		{name: "flags override environment", op: "saldo", args: []string{"--server", "http://f:1", "--token=zz", "7"}, env: env,
			want: opArgs{op: "saldo", args: []int64{7}, server: "http://f:1", auth: "http://env:2/autentica", token: "zz", timeout: 10 * time.Second, retries: 2}},
		{name: "flags after positionals", op: "saque", args: []string{"1", "1000", "--server", "http://x:5003", "-timeout", "3s"}, env: noEnv,
			want: opArgs{op: "saque", args: []int64{1, 1000}, server: "http://x:5003", auth: defaultAuth, token: defaultToken, timeout: 3 * time.Second, retries: 2}},
		{name: "flags between positionals", op: "transferencia", args: []string{"2", "--auth", "http://a/autentica", "1", "2000"}, env: noEnv,
			want: opArgs{op: "transferencia", args: []int64{2, 1, 2000}, server: defaultServer, auth: "http://a/autentica", token: defaultToken, timeout: 10 * time.Second, retries: 2}},
		{name: "negative value is an argument", op: "deposito", args: []string{"2", "-5"}, env: noEnv,
			want: opArgs{op: "deposito", args: []int64{2, -5}, server: defaultServer, auth: defaultAuth, token: defaultToken, timeout: 10 * time.Second, retries: 2}},
		{name: "after --", op: "deposito", args: []string{"--token", "t", "--", "2", "5"}, env: noEnv,
			want: opArgs{op: "deposito", args: []int64{2, 5}, server: defaultServer, auth: defaultAuth, token: "t", timeout: 10 * time.Second, retries: 2}},
		{name: "retries, key and failover servers", op: "transferencia",
			args: []string{"1", "2", "3", "--retries", "5", "--key", "order-77", "--server", "http://a:1,http://b:2"}, env: noEnv,
			want: opArgs{op: "transferencia", args: []int64{1, 2, 3}, server: "http://a:1,http://b:2", auth: defaultAuth, token: defaultToken,
				timeout: 10 * time.Second, retries: 5, key: "order-77"}},
		{name: "no retries", op: "saque", args: []string{"1", "2", "--retries=0"}, env: noEnv,
			want: opArgs{op: "saque", args: []int64{1, 2}, server: defaultServer, auth: defaultAuth, token: defaultToken, timeout: 10 * time.Second}},
		{name: "negative retries", op: "saque", args: []string{"1", "2", "--retries", "-1"}, env: noEnv, wantErr: "--retries -1: must not be negative"},
		{name: "key too long", op: "deposito", args: []string{"1", "2", "--key", strings.Repeat("k", 129)}, env: noEnv, wantErr: "--key: want 1 to 128 printable ASCII"},
		{name: "key not printable", op: "deposito", args: []string{"1", "2", "--key", "a\tb"}, env: noEnv, wantErr: "--key: want 1 to 128 printable ASCII"},
		{name: "no key on saldo", op: "saldo", args: []string{"1", "--key", "k"}, env: noEnv, wantErr: "flag provided but not defined: -key"},
		{name: "empty server list", op: "saldo", args: []string{"1", "--server", " , "}, env: noEnv, wantErr: "--server: empty"},
		{name: "too few", op: "deposito", args: []string{"2"}, env: noEnv, wantErr: "needs 2 argument(s), CONTA VALOR; got 1"},
		{name: "too many", op: "saldo", args: []string{"2", "3"}, env: noEnv, wantErr: "needs 1 argument(s)"},
		{name: "not a number", op: "saque", args: []string{"dois", "5"}, env: noEnv, wantErr: `CONTA must be an integer, got "dois"`},
		{name: "not an integer", op: "transferencia", args: []string{"1", "2", "1.5"}, env: noEnv, wantErr: `VALOR must be an integer, got "1.5"`},
		{name: "unknown flag", op: "saldo", args: []string{"1", "--bogus"}, env: noEnv, wantErr: "flag provided but not defined: -bogus"},
		{name: "flag without value", op: "saldo", args: []string{"1", "--server"}, env: noEnv, wantErr: "flag needs an argument: -server"},
		{name: "bad timeout", op: "saldo", args: []string{"1", "--timeout", "soon"}, env: noEnv, wantErr: "invalid value"},
		{name: "negative timeout", op: "saldo", args: []string{"1", "--timeout", "-1s"}, env: noEnv, wantErr: "must not be negative"},
		{name: "help", op: "saldo", args: []string{"1", "--help"}, env: noEnv, wantErr: "help"},
		{name: "short help", op: "deposito", args: []string{"-h"}, env: noEnv, wantErr: "help"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOp(tt.op, tt.args, tt.env)
			switch {
			case tt.wantErr == "help":
				if !errors.Is(err, flag.ErrHelp) {
					t.Fatalf("error = %v, want flag.ErrHelp", err)
				}
			case tt.wantErr != "":
				var ue *usageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want a usage error containing %q", err, tt.wantErr)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("parseOp = %+v, want %+v", got, tt.want)
				}
			}
		})
	}
}

func TestParseUp(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    upConfig
		wantErr string
	}{
		{name: "defaults", args: nil, want: upConfig{host: "127.0.0.1", dataPort: 5000, businessPorts: []int{5001, 5002, 5003}, dir: ".", readyTimeout: 30 * time.Second, stopTimeout: 15 * time.Second, nodes: 1, clusterPort: 7000, uiPort: 5100}},
		{name: "all flags", args: []string{"--data-port", "6000", "--business-ports", "6001, 6002", "--dir=/tmp/x", "--host", "0.0.0.0", "--ready-timeout", "5s", "--stop-timeout", "2s"},
			want: upConfig{host: "0.0.0.0", dataPort: 6000, businessPorts: []int{6001, 6002}, dir: "/tmp/x", readyTimeout: 5 * time.Second, stopTimeout: 2 * time.Second, nodes: 1, clusterPort: 8000, uiPort: 5100}},
		{name: "cluster", args: []string{"--nodes", "3", "--cluster-port", "9000"},
			want: upConfig{host: "127.0.0.1", dataPort: 5000, businessPorts: []int{5001, 5002, 5003}, dir: ".", readyTimeout: 30 * time.Second, stopTimeout: 15 * time.Second, nodes: 3, clusterPort: 9000, uiPort: 5100}},
		{name: "live view off", args: []string{"--ui-port", "0"},
			want: upConfig{host: "127.0.0.1", dataPort: 5000, businessPorts: []int{5001, 5002, 5003}, dir: ".", readyTimeout: 30 * time.Second, stopTimeout: 15 * time.Second, nodes: 1, clusterPort: 7000}},
		{name: "live view on a business port", args: []string{"--ui-port", "5002"}, wantErr: "port 5002 given twice"},
		{name: "second member's live view on a business port", args: []string{"--nodes", "2", "--ui-port", "5000"}, wantErr: "port 5000 given twice"},
		{name: "no nodes", args: []string{"--nodes", "0"}, wantErr: "--nodes 0: want 1 to 9"},
		{name: "cluster over etcd", args: []string{"--nodes", "2", "--etcd", "http://127.0.0.1:2379", "--cluster-port", "4001"},
			want: upConfig{host: "127.0.0.1", dataPort: 5000, businessPorts: []int{5001, 5002, 5003}, dir: ".", readyTimeout: 30 * time.Second, stopTimeout: 15 * time.Second, nodes: 2, clusterPort: 4001, uiPort: 5100, etcd: "http://127.0.0.1:2379"}},
		{name: "health port on a business port", args: []string{"--nodes", "2", "--cluster-port", "4001"}, wantErr: "port 5001 given twice"},
		{name: "etcd without a cluster", args: []string{"--etcd", "http://127.0.0.1:2379"}, wantErr: "--etcd is for a cluster"},
		{name: "member on a business port", args: []string{"--nodes", "2", "--business-ports", "5010"}, wantErr: "port 5010 given twice"},
		{name: "cluster port taken", args: []string{"--nodes", "2", "--cluster-port", "5001"}, wantErr: "port 5001 given twice"},
		{name: "argument", args: []string{"now"}, wantErr: "up takes no arguments"},
		{name: "bad data port", args: []string{"--data-port", "70000"}, wantErr: "--data-port 70000: not a TCP port"},
		{name: "port zero", args: []string{"--business-ports", "0"}, wantErr: "not a TCP port"},
		{name: "bad business port", args: []string{"--business-ports", "5001,x"}, wantErr: `"x" is not a port number`},
		{name: "duplicate port", args: []string{"--business-ports", "5001,5000"}, wantErr: "port 5000 given twice"},
		{name: "no business port", args: []string{"--business-ports", ","}, wantErr: "need at least one port"},
		{name: "empty dir", args: []string{"--dir", ""}, wantErr: "--dir: empty"},
		{name: "zero timeout", args: []string{"--stop-timeout", "0s"}, wantErr: "must be positive"},
		{name: "help", args: []string{"--help"}, wantErr: "help"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseUp(tt.args)
			switch {
			case tt.wantErr == "help":
				if !errors.Is(err, flag.ErrHelp) {
					t.Fatalf("error = %v, want flag.ErrHelp", err)
				}
			case tt.wantErr != "":
				var ue *usageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want a usage error containing %q", err, tt.wantErr)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("parseUp = %+v, want %+v", got, tt.want)
				}
			}
		})
	}
}

func TestParseDemo(t *testing.T) {
	env := envMap(map[string]string{envAuth: "http://env:5000/autentica"})
	tests := []struct {
		name    string
		args    []string
		want    demoConfig
		wantErr string
	}{
		{name: "defaults", args: nil, want: demoConfig{
			servers: []string{"http://localhost:5001", "http://localhost:5002", "http://localhost:5003"},
			auth:    "http://env:5000/autentica", clients: 10, ops: 6, accounts: 10, timeout: 10 * time.Second, checkTotal: true}},
		{name: "flags", args: []string{"--servers", "http://a:1, http://b:2", "--auth", "http://c/autentica", "--clients", "3", "--seed", "42", "--ops=2", "--accounts", "5", "--check-total=false"},
			want: demoConfig{servers: []string{"http://a:1", "http://b:2"}, auth: "http://c/autentica", clients: 3, ops: 2, accounts: 5,
				seed: 42, seedSet: true, timeout: 10 * time.Second}},
		{name: "seed zero", args: []string{"--seed", "0"}, want: demoConfig{
			servers: []string{"http://localhost:5001", "http://localhost:5002", "http://localhost:5003"},
			auth:    "http://env:5000/autentica", clients: 10, ops: 6, accounts: 10, seedSet: true, timeout: 10 * time.Second, checkTotal: true}},
		{name: "no servers", args: []string{"--servers", " , "}, wantErr: "need at least one business server"},
		{name: "no clients", args: []string{"--clients", "0"}, wantErr: "need at least one client"},
		{name: "no ops", args: []string{"--ops", "0"}, wantErr: "need at least one call"},
		{name: "negative seed", args: []string{"--seed", "-5"}, wantErr: "must not be negative"},
		{name: "argument", args: []string{"x"}, wantErr: "demo takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDemo(tt.args, env)
			if tt.wantErr != "" {
				var ue *usageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want a usage error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseDemo = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestHoistOp(t *testing.T) {
	tests := []struct{ in, want []string }{
		{[]string{"saldo", "2"}, []string{"saldo", "2"}},
		{[]string{"--server", "u", "saldo", "2"}, []string{"saldo", "--server", "u", "2"}},
		{[]string{"--token=t", "-auth", "a", "saque", "1", "2"}, []string{"saque", "--token=t", "-auth", "a", "1", "2"}},
		{[]string{"--token", "saldo", "deposito", "1", "2"}, []string{"deposito", "--token", "saldo", "1", "2"}},
		{[]string{"--help"}, []string{"--help"}},
		{[]string{"--server", "u", "up"}, []string{"--server", "u", "up"}},
		{[]string{"--bogus", "x", "saldo"}, []string{"--bogus", "x", "saldo"}},
		{[]string{"--key", "k", "--retries", "3", "saque", "1", "2"}, []string{"saque", "--key", "k", "--retries", "3", "1", "2"}},
	}
	for _, tt := range tests {
		if got := hoistOp(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("hoistOp(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseInterleavedBoolFlag(t *testing.T) {
	fs := newFlagSet("x")
	v := fs.Bool("v", false, "")
	s := fs.String("s", "", "")
	pos, err := parseInterleaved(fs, []string{"a", "-v", "b", "--s", "-7", "c", "-"})
	if err != nil {
		t.Fatal(err)
	}
	if !*v || *s != "-7" || !reflect.DeepEqual(pos, []string{"a", "b", "c", "-"}) {
		t.Errorf("v=%v s=%q positional=%q", *v, *s, pos)
	}
}

func TestRunDispatch(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		code       int
		wantStdout string
		wantStderr string
	}{
		{"no arguments", nil, exitUsage, "", "usage:"},
		{"unknown command", []string{"depositar", "1", "2"}, exitUsage, "", `unknown command "depositar"`},
		{"help", []string{"help"}, exitOK, "bank up [flags]", ""},
		{"--help", []string{"--help"}, exitOK, "bank transferencia ORIG DEST VALOR", ""},
		{"-h", []string{"-h"}, exitOK, "Exit status", ""},
		{"help of an operation", []string{"help", "saque"}, exitOK, "usage: bank saque CONTA VALOR [flags]", ""},
		{"help of up", []string{"help", "up"}, exitOK, "-business-ports", ""},
		{"help of demo", []string{"help", "demo"}, exitOK, "-seed", ""},
		{"help of dataserver", []string{"help", "dataserver"}, exitOK, "-allow-client-tokens", ""},
		{"help of businessserver", []string{"help", "businessserver"}, exitOK, "DATA_URL", ""},
		{"help of an unknown command", []string{"help", "nope"}, exitUsage, "", `unknown command "nope"`},
		{"operation --help", []string{"transferencia", "--help"}, exitOK, "ORIG DEST VALOR", ""},
		{"up --help", []string{"up", "-h"}, exitOK, "usage: bank up", ""},
		{"demo --help", []string{"demo", "--help"}, exitOK, "usage: bank demo", ""},
		{"operation usage error", []string{"saldo"}, exitUsage, "", "bank saldo: saldo needs 1 argument(s)"},
		{"operation bad URL", []string{"saldo", "1", "--server", "ftp://x"}, exitUsage, "", "scheme must be http or https"},
		{"up usage error", []string{"up", "--data-port", "x"}, exitUsage, "", "bank up: invalid value"},
		{"demo usage error", []string{"demo", "--clients", "-1"}, exitUsage, "", "bank demo: --clients -1"},
		{"dataserver usage error", []string{"dataserver", "extra"}, exitUsage, "", "takes no arguments"},
		{"businessserver usage error", []string{"businessserver"}, exitUsage, "", "DATA_URL"},
		{"help of bench", []string{"help", "bench"}, exitOK, "--max-inflight", ""},
		{"bench usage error", []string{"bench", "--dist", "pareto"}, exitUsage, "", "pareto"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, envMap(nil), &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout does not contain %q:\n%s", tt.wantStdout, stdout.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr does not contain %q:\n%s", tt.wantStderr, stderr.String())
			}
			if tt.wantStdout == "" && stdout.Len() > 0 {
				t.Errorf("unexpected stdout:\n%s", stdout.String())
			}
		})
	}
}

// The main usage names every command.
func TestMainUsageNamesEveryCommand(t *testing.T) {
	for _, cmd := range []string{"deposito", "saque", "saldo", "transferencia", "up", "demo", "dataserver", "businessserver", "help"} {
		if !strings.Contains(mainUsage, "bank "+cmd) {
			t.Errorf("the usage does not mention %q", cmd)
		}
	}
}

func TestDialHost(t *testing.T) {
	for in, want := range map[string]string{"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1", "10.1.2.3": "10.1.2.3", "localhost": "localhost"} {
		if got := dialHost(in); got != want {
			t.Errorf("dialHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPlanDemo(t *testing.T) {
	cfg := demoConfig{servers: []string{"a", "b", "c"}, clients: 10, ops: 6, accounts: 10}
	p1, p2 := planDemo(cfg, 7), planDemo(cfg, 7)
	if !reflect.DeepEqual(p1, p2) {
		t.Error("the same seed gave different plans")
	}
	if reflect.DeepEqual(p1, planDemo(cfg, 8)) {
		t.Error("different seeds gave the same plan")
	}
	for seed := range uint64(50) {
		plan := planDemo(cfg, seed)
		valid, invalid := 0, 0
		servers := map[string]bool{}
		for i, c := range plan {
			servers[c.server] = true
			if c.valid {
				valid++
			} else {
				invalid++
			}
			if len(c.calls) != cfg.ops {
				t.Fatalf("seed %d: client %d has %d calls", seed, i, len(c.calls))
			}
			for _, call := range c.calls {
				if len(call.expect) == 0 || len(call.args) != len(opArgNames[call.op]) {
					t.Fatalf("seed %d: bad call %+v", seed, call)
				}
				if !c.valid && !reflect.DeepEqual(call.expect, []error{client.ErrUnauthorized}) {
					t.Fatalf("seed %d: invalid token expects %v", seed, call.expect)
				}
			}
		}
		if valid == 0 || invalid == 0 || len(servers) != 3 || !plan[0].valid {
			t.Errorf("seed %d: %d valid, %d invalid clients over %d servers", seed, valid, invalid, len(servers))
		}
	}
}
