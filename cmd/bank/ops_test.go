package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/client"
	"github.com/bank/gobank/http/dataserver/dataservertest"
)

// testBank is a data server and three business servers, in process.
type testBank struct {
	data     *dataservertest.Server
	business []*businesstest.Server
	auth     string
}

func startTestBank(t *testing.T) *testBank {
	t.Helper()
	b := &testBank{data: dataservertest.Start(t, dataservertest.Options{})}
	for range 3 {
		b.business = append(b.business, businesstest.Start(t, b.data, businesstest.Options{}))
	}
	b.auth = b.data.URL + "/autentica"
	return b
}

func (b *testBank) servers() string {
	var urls []string
	for _, s := range b.business {
		urls = append(urls, s.URL)
	}
	return strings.Join(urls, ",")
}

// runCmd runs bank in process.
func runCmd(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, envMap(env), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestOperationsInProcess(t *testing.T) {
	b := startTestBank(t)
	flags := func(i int) []string { return []string{"--server", b.business[i].URL, "--auth", b.auth} }
	tests := []struct {
		name       string
		env        map[string]string
		args       []string
		code       int
		wantStdout string
		wantStderr string
	}{
		{"deposito", nil, append([]string{"deposito", "2", "5000"}, flags(0)...), 0, "deposito conta=2 valor=5000 saldo=6000\n", ""},
		{"transferencia, flags first", nil, append(flags(1), "transferencia", "2", "1", "2000"), 0,
			"transferencia conta_orig=2 conta_dest=1 valor=2000 saldo_orig=4000 saldo_dest=3000\n", ""},
		{"saque", nil, append([]string{"saque", "1"}, append(flags(2), "1000")...), 0, "saque conta=1 valor=1000 saldo=2000\n", ""},
		{"saldo from the environment", map[string]string{envServer: b.business[0].URL, envAuth: b.auth, envToken: "8d69"},
			[]string{"saldo", "2"}, 0, "saldo conta=2 saldo=4000\n", ""},
		{"insufficient funds", nil, append([]string{"saque", "1", "999999"}, flags(0)...), 1, "",
			"bank: saque 1 999999: insufficient funds; nothing changed (INSUFFICIENT_FUNDS, HTTP 409)\n"},
		{"same account", nil, append([]string{"transferencia", "1", "1", "5"}, flags(0)...), 1, "", "SAME_ACCOUNT, HTTP 400"},
		{"missing account", nil, append([]string{"saldo", "99"}, flags(0)...), 1, "", "NOT_FOUND, HTTP 404"},
		{"negative value", nil, append([]string{"deposito", "1", "-5"}, flags(0)...), 1, "", "INVALID_VALUE, HTTP 404"},
		{"invalid token", nil, append([]string{"saldo", "1", "--token", "nope"}, flags(0)...), 1, "", "bank: autentica: "},
		{"unreachable server", nil, []string{"saldo", "1", "--server", b.business[0].URL, "--auth", "http://127.0.0.1:1/autentica"}, 1, "", "UNAVAILABLE"},
		{"unreachable business servers: the key is printed", nil, []string{"deposito", "1", "5", "--server", "http://127.0.0.1:1,http://127.0.0.1:2",
			"--auth", b.auth, "--retries", "1", "--key", "k-42"}, 1, "", "repeat it with --key k-42 "},
		{"deposito with a key, once", nil, append([]string{"deposito", "3", "5", "--key", "k-1"}, flags(0)...), 0, "deposito conta=3 valor=5 saldo=1005\n", ""},
		{"the same key again, through another server", nil, append([]string{"deposito", "3", "5", "--key", "k-1"}, flags(1)...), 0, "deposito conta=3 valor=5 saldo=1005\n", ""},
		{"the same key, another operation", nil, append([]string{"saque", "3", "5", "--key", "k-1"}, flags(2)...), 1, "", "KEY_REUSED, HTTP 422"},
		{"failover", nil, []string{"saldo", "3", "--server", "http://127.0.0.1:1," + b.business[2].URL, "--auth", b.auth}, 0, "saldo conta=3 saldo=1005\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, tt.env, tt.args...)
			if code != tt.code || stdout != tt.wantStdout || !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("bank %s: exit %d, stdout %q, stderr %q; want %d, %q, %q",
					strings.Join(tt.args, " "), code, stdout, stderr, tt.code, tt.wantStdout, tt.wantStderr)
			}
			if tt.code == 0 && stderr != "" {
				t.Errorf("stderr on success: %q", stderr)
			}
		})
	}
	if strings.Contains(fmt.Sprint(runCmd(t, nil, append([]string{"saldo", "1", "--token", "nope"}, flags(0)...)...)), "nope") {
		t.Error("an error message shows the token")
	}
}

func TestDemoInProcess(t *testing.T) {
	b := startTestBank(t)
	for _, seed := range []string{"1", "2", "3"} {
		code, stdout, stderr := runCmd(t, nil, "demo", "--servers", b.servers(), "--auth", b.auth, "--seed", seed)
		if code != 0 {
			t.Fatalf("demo --seed %s: exit %d\nstdout:\n%s\nstderr:\n%s", seed, code, stdout, stderr)
		}
		for _, want := range []string{"demo: seed " + seed, "(invalid)] ", "UNAUTHORIZED", "-> deposito conta=", "demo: OK", ": ok\n"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("demo --seed %s: stdout does not contain %q:\n%s", seed, want, stdout)
			}
		}
		if n := strings.Count(stdout, " -> "); n != 60 {
			t.Errorf("demo printed %d calls, want 60", n)
		}
		for i, s := range b.business {
			if !strings.Contains(stdout, "["+s.URL+",") {
				t.Errorf("no client used business server %d", i)
			}
		}
	}
	// Money is conserved across all the runs: the demo's own check, and
	// the data server's view agree.
	balances, holders := b.data.Balances(t)
	for i, h := range holders {
		if h != "" {
			t.Errorf("account %d left locked by %q", i+1, h)
		}
		if balances[i] < 0 {
			t.Errorf("account %d: negative balance %d", i+1, balances[i])
		}
	}
}

// The demo fails when the answers are not of the expected kind: here every
// business server is down.
func TestDemoFailsOnUnexpectedAnswers(t *testing.T) {
	b := startTestBank(t)
	code, stdout, stderr := runCmd(t, nil, "demo", "--servers", "http://127.0.0.1:1", "--auth", b.auth, "--seed", "1", "--check-total=false", "--clients", "2", "--ops", "3")
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "UNEXPECTED") || !strings.Contains(stderr, "FAILED") {
		t.Errorf("the failure is not reported:\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
}

func TestJudge(t *testing.T) {
	call := demoCall{expect: []error{errSuccess, client.ErrLocked}}
	if ok, _ := judge(call, nil); !ok {
		t.Error("success not accepted")
	}
	if ok, v := judge(call, fmt.Errorf("boom")); ok || !strings.Contains(v, "wanted success or LOCKED_ACCOUNT") {
		t.Errorf("unexpected error accepted, or verdict %q", v)
	}
}

// The test-only crash hook refuses a stage that does not exist, naming the
// variable (a typo must not leave a test without its crash).
func TestCrashAtUnknownStage(t *testing.T) {
	t.Setenv("GOBANK_TEST_CRASH_AT", "sometime")
	t.Setenv("BANK_SERVER_TOKEN", "x")
	code, _, stderr := runCmd(t, nil, "businessserver", "http://127.0.0.1:1", "0", "--host", "127.0.0.1", "--log", "-")
	if code != exitUsage || !strings.Contains(stderr, "GOBANK_TEST_CRASH_AT") || !strings.Contains(stderr, "after-commit") {
		t.Errorf("exit %d, stderr %q; want a usage error naming the variable and the stages", code, stderr)
	}
}
