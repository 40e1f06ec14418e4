package loadgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bank/gobank/benchmarks/check"
)

func TestRegroup(t *testing.T) {
	for _, c := range []struct{ accounts, groups int }{{10, 2}, {10, 3}, {7, 3}, {4, 2}} {
		for g := range c.groups {
			lo, hi := groupBounds(g, c.accounts, c.groups)
			for a := int64(1); a <= int64(c.accounts); a++ {
				for b := int64(1); b <= int64(c.accounts); b++ {
					p := planned{op: opTransferencia, a: a, b: b}
					regroup(&p, g, c.accounts, c.groups)
					if p.a < lo || p.a > hi || p.b < lo || p.b > hi || p.a == p.b {
						t.Fatalf("%+v: group %d (%d..%d) got %d→%d", c, g, lo, hi, p.a, p.b)
					}
					if gg, _, _ := GroupOf(p.a, c.accounts, c.groups); gg != g {
						t.Fatalf("GroupOf(%d) = %d, want %d", p.a, gg, g)
					}
				}
			}
		}
	}
}

// TestCommandHistory records a short run with snapshots, over 6 of the
// data server's 10 accounts, checks the format of every line, and that
// both checkers pass it: the history covers accounts 1..6 only.
func TestCommandHistory(t *testing.T) {
	data, urls := startBank(t)
	path := filepath.Join(t.TempDir(), "h.jsonl")
	env := func(k string) string {
		if k == "BANK_SERVER_TOKEN" {
			return data.ServerToken
		}
		return ""
	}
	var stdout, stderr bytes.Buffer
	err := command(t.Context(), []string{"--servers", strings.Join(urls, ","), "--duration", "300ms", "--workers", "4",
		"--quiet", "--history", path, "--snapshot-every", "20ms", "--data-server", data.URL, "--groups", "2", "--accounts", "6"}, env, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s%s", err, stdout.String(), stderr.String())
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	counts := map[string]int{}
	for i := 0; sc.Scan(); i++ {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d: %v: %s", i+1, err, sc.Bytes())
		}
		typ, _ := m["type"].(string)
		counts[typ]++
		switch {
		case i == 0 && (typ != "header" || m["version"] != float64(2) || m["groups"] != float64(2) || len(m["initial"].([]any)) != 6 ||
			!reflect.DeepEqual(m["covers"], []any{float64(1), float64(6)})):
			t.Fatalf("header: %s", sc.Bytes())
		case typ == "op" || typ == "snapshot":
			if m["call"].(float64) > m["ret"].(float64) || m["result"] == nil {
				t.Fatalf("line %d: %s", i+1, sc.Bytes())
			}
			if typ == "op" && m["op"] == "transferencia" {
				ga, _, _ := GroupOf(int64(m["a"].(float64)), 6, 2)
				gb, _, _ := GroupOf(int64(m["b"].(float64)), 6, 2)
				if ga != gb {
					t.Fatalf("transfer across groups: %s", sc.Bytes())
				}
			}
			if typ == "snapshot" && m["result"] == "ok" && len(m["saldos"].([]any)) != 6 {
				t.Fatalf("snapshot: %s", sc.Bytes())
			}
		}
	}
	if counts["header"] != 1 || counts["op"] < 10 || counts["snapshot"] < 3 {
		t.Fatalf("counts %v", counts)
	}
	h, err := check.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []check.Result{check.Bank(h), check.Linearizable(h, check.LinearOptions{Timeout: time.Minute})} {
		if !r.OK {
			t.Errorf("%s: %s %+v", r.Name, r.Verdict(), r)
		}
	}
}

func TestCommandHistoryUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--snapshot-every", "1s"},
		{"--history", "x", "--target", "data", "--token", "t"},
	} {
		var stdout, stderr bytes.Buffer
		if err := command(t.Context(), args, noEnv, &stdout, &stderr); !errors.Is(err, ErrUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}
