//go:build unix

package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckMalformedHistory: the reproduction, run as the real
// command. A deposit that returned before it was invoked used to make
// "bank check" panic (exit 2, as for a wrong command line); it is a
// malformed history: exit 1 and the line at fault.
func TestCheckMalformedHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	history := `{"type":"header","version":1,"start":"x","target":"business","accounts":2,"groups":0,"initial":[100,100]}` + "\n" +
		`{"type":"op","client":0,"op":"deposito","a":1,"amount":10,"call":50,"ret":20,"result":"ok","saldo":110}` + "\n" +
		`{"type":"snapshot","client":-1,"call":60,"ret":70,"result":"ok","saldos":[110,100]}` + "\n"
	if err := os.WriteFile(path, []byte(history), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runBank(t, testEnv(t.TempDir()), "check", path)
	if code != exitFail || stdout != "" || stderr != "bank check: "+path+": line 2: ret 20 is before call 50\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 and the line at fault", code, stdout, stderr)
	}
}

// TestCheckCoversBenchAccounts: a correct run over 5 of a data server's 20
// accounts passes "bank check", and the same history with a balance of a
// covered account altered in a snapshot fails. Real processes: a data
// server holding 20 accounts, a business server, "bank bench --accounts 5
// --history" with snapshots, "bank check".
func TestCheckCoversBenchAccounts(t *testing.T) {
	dir := t.TempDir()
	var secret [16]byte
	_, _ = rand.Read(secret[:])
	env := testEnv(t.TempDir(), "BANK_SERVER_TOKEN="+hex.EncodeToString(secret[:]))
	data := startServer(t, env, "dataserver", "--host", "127.0.0.1", "--port", "0", "--in-memory", "--accounts", "20",
		"--log", filepath.Join(dir, "data_server.log"))
	business := startServer(t, env, "businessserver", data.url, "0", "--host", "127.0.0.1",
		"--log", filepath.Join(dir, "business_server.log"))

	path := filepath.Join(dir, "h.jsonl")
	code, stdout, stderr := runBank(t, env, "bench", "--servers", business.url, "--data-server", data.url,
		"--accounts", "5", "--workers", "4", "--duration", "1s", "--history", path, "--snapshot-every", "50ms", "--quiet")
	if code != exitOK {
		t.Fatalf("bank bench: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = runBank(t, env, "check", path)
	if code != exitOK {
		t.Fatalf("bank check of a correct run: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	outputHas(t, stdout, "5 accounts (1..5)", "bank             PASS", "linearizability  PASS")

	// One unit more in account 3 of the last successful snapshot.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	altered := -1
	for i := len(lines) - 1; i > 0 && altered < 0; i-- {
		var e map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &e); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if e["type"] != "snapshot" || e["result"] != "ok" {
			continue
		}
		saldos := e["saldos"].([]any)
		if len(saldos) != 5 {
			t.Fatalf("line %d: a snapshot of %d balances, want the 5 covered: %s", i+1, len(saldos), lines[i])
		}
		saldos[2] = saldos[2].(float64) + 1
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		lines[i], altered = string(b), i
	}
	if altered < 0 {
		t.Fatalf("no successful snapshot in the history:\n%s", raw)
	}
	bad := filepath.Join(dir, "altered.jsonl")
	if err := os.WriteFile(bad, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runBank(t, env, "check", bad)
	if code != exitFail {
		t.Fatalf("bank check of an altered history: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	outputHas(t, stdout, "bank             FAIL", "money created", "linearizability  FAIL")
}

// outputHas checks that "bank check" printed every one of wants.
func outputHas(t *testing.T, stdout string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(stdout, want) {
			t.Errorf("bank check's output lacks %q:\n%s", want, stdout)
		}
	}
}
