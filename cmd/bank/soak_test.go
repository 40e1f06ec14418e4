package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bank/gobank/benchmarks/soak"
)

func TestSoakUsage(t *testing.T) {
	var out, errb strings.Builder
	if code := run(context.Background(), []string{"soak", "--help"}, func(string) string { return "" }, &out, &errb); code != exitOK {
		t.Fatalf("soak --help: exit %d", code)
	}
	for _, want := range []string{"--max-rss-growth", "--max-goroutine-growth", "--seed", "--faults", "--nodes", "SIGSTOP", "Exit status"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("soak --help lacks %q", want)
		}
	}
	for _, k := range soak.FaultNames() {
		if !strings.Contains(out.String(), "\n  "+k+" ") {
			t.Errorf("soak --help does not describe %s", k)
		}
	}
	// Moved here from the schedule's TestPlannedFaultString (package
	// soak), which cannot see the command's help.
	if !strings.Contains(soakUsage(), string(soak.FaultLateWrites)) {
		t.Error("bank help soak does not describe late-writes")
	}
	for _, args := range [][]string{{"--round", "5s"}, {"--duration", "1s"}, {"--max-rss-growth", "lots"}, {"extra"},
		{"--seed", "-1"}, {"--seed", "x"}, {"--nodes", "0"}, {"--faults", "bogus"}, {"--faults", "part-pg"}} {
		if code := run(context.Background(), append([]string{"soak"}, args...), func(string) string { return "" }, &out, &errb); code != exitUsage {
			t.Errorf("soak %q: exit %d, want %d", args, code, exitUsage)
		}
	}
}

// runSoakBinary runs the bank binary's soak with args and returns its
// stdout; the test fails if it does not pass.
func runSoakBinary(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	bin := bankBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"soak"}, args...)...)
	cmd.Env = testEnv(t.TempDir())
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := stdout.String()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatalf("bank soak: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	t.Logf("bank soak output:\n%s", out)
	return out
}

// checkSoakOutput checks the schedule printed against the seed's and a
// round line with PASS verdicts per round.
func checkSoakOutput(t *testing.T, out string, seed uint64, rounds int, round time.Duration, nodes int, kinds []soak.FaultKind) {
	t.Helper()
	for _, f := range soak.Plan(seed, rounds, round, nodes, kinds) {
		if line := fmt.Sprintf("\n  round %d: %v\n", f.Round, f); !strings.Contains(out, line) {
			t.Errorf("the printed schedule lacks %q: not the seed's", strings.TrimSpace(line))
		}
		re := regexp.MustCompile(fmt.Sprintf(`(?m)^round %d/%d .* ops \d+ ok \d+ unknown \d+ +fault: %s +bank PASS .* linearizable PASS .*conservation PASS$`, f.Round, rounds, f.Kind))
		if !re.MatchString(out) {
			t.Errorf("no round line for round %d (%s) with PASS verdicts", f.Round, f.Kind)
		}
	}
	for _, want := range []string{"links (fault-injecting proxies):", "client->biz1", "biz2->", "memory table", "RSS start", "soak: PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	table := regexp.MustCompile(`(?m)^  (data|m\d|biz1|biz2) +\d+->\d+ +\S+ +\S+ +\S+ +\d+ +\d+ +[+-]\d+ .*PASS`)
	if n := len(table.FindAllString(out, -1)); n != nodes+2 {
		t.Errorf("want %d rows of the memory table, got %d", nodes+2, n)
	}
}

// TestSoakEndToEnd runs a short soak of the single-server bank with a
// fixed seed: process faults and network faults through the proxies, one
// per round, each round's history checked; the schedule it prints is the
// one the seed gives here.
func TestSoakEndToEnd(t *testing.T) {
	kinds := []soak.FaultKind{soak.FaultKillBiz, soak.FaultKillData, soak.FaultStopBiz, soak.FaultLateWrites, soak.FaultDropAns}
	var names []string
	for _, k := range kinds {
		names = append(names, string(k))
	}
	out := runSoakBinary(t, 3*time.Minute, "--seed", "1", "--duration", "30s", "--round", "6s", "--workers", "8",
		"--faults", strings.Join(names, ","))
	checkSoakOutput(t, out, 1, 5, 6*time.Second, 1, kinds)
}

// TestSoakClusterEndToEnd is the same with two members over a private
// PostgreSQL server, one member cut from PostgreSQL and one killed.
func TestSoakClusterEndToEnd(t *testing.T) {
	kinds := []soak.FaultKind{soak.FaultKillData, soak.FaultPartPG}
	out := runSoakBinary(t, 3*time.Minute, "--seed", "2", "--nodes", "2", "--duration", "12s", "--round", "6s", "--workers", "8",
		"--faults", "kill-data,part-pg")
	checkSoakOutput(t, out, 2, 2, 6*time.Second, 2, kinds)
	if !strings.Contains(out, "m1->pg") || !strings.Contains(out, "m2->pg") {
		t.Error("no member -> PostgreSQL links listed")
	}
}
