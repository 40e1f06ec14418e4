package main

import (
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestSizeBound(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		bound         string
		before, after int64
		exceeded      bool
	}{
		{"64MiB", 30 * mib, 30 * mib, false},
		{"64MiB", 30 * mib, 94 * mib, false}, // exactly the bound
		{"64MiB", 30 * mib, 94*mib + 1, true},
		{"64MiB", 30 * mib, 10 * mib, false}, // shrinking
		{"50%", 40 * mib, 60 * mib, false},
		{"50%", 40 * mib, 60*mib + 1, true},
		{"10%", 100, 111, true},
		{"1048576", 0, mib, false},
		{"1048576", 0, mib + 1, true},
		{"1KiB", 0, 1025, true},
	} {
		b, err := parseSizeBound(tc.bound)
		if err != nil {
			t.Fatalf("parseSizeBound(%q): %v", tc.bound, err)
		}
		if got := b.exceeded(tc.before, tc.after); got != tc.exceeded {
			t.Errorf("%s: %d -> %d: exceeded = %v, want %v", tc.bound, tc.before, tc.after, got, tc.exceeded)
		}
	}
	for _, bad := range []string{"", "x", "-1MiB", "0", "0%", "-5%", "12XB", "NaN%"} {
		if _, err := parseSizeBound(bad); err == nil {
			t.Errorf("parseSizeBound(%q): no error", bad)
		}
	}
}

func TestGoroutineBound(t *testing.T) {
	for _, tc := range []struct {
		max, before, after int64
		exceeded           bool
	}{
		{200, 30, 30, false},
		{200, 30, 230, false},
		{200, 30, 231, true},
		{0, 30, 31, true},
		{0, 30, 29, false},
	} {
		if got := goroutinesExceeded(tc.max, tc.before, tc.after); got != tc.exceeded {
			t.Errorf("max %d: %d -> %d: exceeded = %v, want %v", tc.max, tc.before, tc.after, got, tc.exceeded)
		}
	}
}

func TestSoakUsage(t *testing.T) {
	var out, errb strings.Builder
	if code := run(context.Background(), []string{"soak", "--help"}, func(string) string { return "" }, &out, &errb); code != exitOK {
		t.Fatalf("soak --help: exit %d", code)
	}
	for _, want := range []string{"--max-rss-growth", "--max-goroutine-growth", "SIGSTOP", "Exit status"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("soak --help lacks %q", want)
		}
	}
	for _, args := range [][]string{{"--round", "1s"}, {"--duration", "1s"}, {"--max-rss-growth", "lots"}, {"extra"}} {
		if code := run(context.Background(), append([]string{"soak"}, args...), func(string) string { return "" }, &out, &errb); code != exitUsage {
			t.Errorf("soak %q: exit %d, want %d", args, code, exitUsage)
		}
	}
}

func TestSoakEndToEnd(t *testing.T) {
	bin := bankBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "soak", "--duration", "12s", "--round", "4s", "--workers", "8")
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
	round := regexp.MustCompile(`(?m)^round (\d)/3 .* ops \d+ ok \d+ unknown \d+ .*fault: .* bank PASS .* linearizable PASS `)
	if n := len(round.FindAllString(out, -1)); n != 3 {
		t.Errorf("want 3 round lines with PASS verdicts, got %d", n)
	}
	for _, want := range []string{"kill -9 + restart biz1", "kill -9 + restart data", "SIGSTOP biz2", "memory table", "RSS start", "soak: PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	table := regexp.MustCompile(`(?m)^  (data|biz1|biz2) +\d+->\d+ +\S+ +\S+ +\S+ +\d+ +\d+ +[+-]\d+ .*PASS`)
	if n := len(table.FindAllString(out, -1)); n != 3 {
		t.Errorf("want 3 rows of the memory table, got %d", n)
	}
}
