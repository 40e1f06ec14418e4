package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckCommand(t *testing.T) {
	const header = `{"type":"header","version":1,"start":"2026-11-27T00:00:00Z","target":"business","accounts":2,"groups":0,"initial":[1000,1000]}`
	dir := t.TempDir()
	good := filepath.Join(dir, "good.jsonl")
	bad := filepath.Join(dir, "bad.jsonl")
	write := func(path string, lines ...string) {
		if err := os.WriteFile(path, []byte(header+"\n"+strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(good,
		`{"type":"op","client":0,"op":"deposito","a":1,"amount":10,"call":0,"ret":10,"result":"ok","saldo":1010}`,
		`{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":[1010,1000]}`)
	// The snapshot misses an acknowledged deposit: money lost, and a stale read.
	write(bad,
		`{"type":"op","client":0,"op":"deposito","a":1,"amount":10,"call":0,"ret":10,"result":"ok","saldo":1010}`,
		`{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":[1000,1000]}`)

	env := func(string) string { return "" }
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"check", good}, env, &stdout, &stderr); code != exitOK {
		t.Fatalf("good history: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{"1 operations, 1 snapshots", "bank             PASS", "linearizability  PASS", "entries checked in"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
	stdout.Reset()
	if code := run(t.Context(), []string{"check", bad}, env, &stdout, &stderr); code != exitFail {
		t.Fatalf("bad history: exit %d\n%s", code, stdout.String())
	}
	out := stdout.String()
	for _, want := range []string{"bank             FAIL", "money destroyed", "linearizability  FAIL", "visualization: " + bad + ".html", "line 3:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(bad + ".html"); err != nil {
		t.Fatal(err)
	}
	if code := run(t.Context(), []string{"check"}, env, &stdout, &stderr); code != exitUsage {
		t.Fatalf("no file: exit %d", code)
	}

	// A version 1 history of a run over 2 of a data server's 4 accounts:
	// its snapshot lists all 4; accounts 1..2 are judged, and it says so.
	old := filepath.Join(dir, "old.jsonl")
	write(old,
		`{"type":"op","client":0,"op":"deposito","a":1,"amount":10,"call":0,"ret":10,"result":"ok","saldo":1010}`,
		`{"type":"snapshot","client":-1,"call":20,"ret":30,"result":"ok","saldos":[1010,1000,5,7]}`)
	stdout.Reset()
	if code := run(t.Context(), []string{"check", old}, env, &stdout, &stderr); code != exitOK {
		t.Fatalf("version 1 history of a larger bank: exit %d\n%s", code, stdout.String())
	}
	if want := "note: 1 snapshot(s) of this version 1 history list more accounts than the 2 it covers: only accounts 1..2 are judged"; !strings.Contains(stdout.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, stdout.String())
	}
}
