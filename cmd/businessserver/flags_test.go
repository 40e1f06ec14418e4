package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bank/gobank/cmd/internal/servercmd"
)

// TestLockFlags: the lock flags and the test-only pause variable accept
// their documented values and refuse others with a usage error that names
// the problem.
func TestLockFlags(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("BANK_SERVER_TOKEN", "flags-test-credential")
	tests := []struct {
		name    string
		args    []string
		pauseAt string
		bad     string // "" when accepted; else a part of the message
	}{
		{"defaults", nil, "", ""},
		{"every mode and order", []string{"--lock-mode", "fail-fast", "--lock-order", "request"}, "", ""},
		{"retry", []string{"--lock-mode", "retry", "--lock-wait", "100ms", "--lock-ttl", "3s"}, "", ""},
		{"no ttl asked", []string{"--lock-ttl", "0"}, "", ""},
		{"pause at locked", nil, "locked", ""},
		{"unknown mode", []string{"--lock-mode", "spin"}, "", `--lock-mode "spin"`},
		{"mode in capitals", []string{"--lock-mode", "WAIT"}, "", `--lock-mode "WAIT"`},
		{"unknown order", []string{"--lock-order", "descending"}, "", `--lock-order "descending"`},
		{"zero wait", []string{"--lock-wait", "0s"}, "", "--lock-wait 0s"},
		{"negative wait", []string{"--lock-wait", "-1s"}, "", "--lock-wait -1s"},
		{"negative ttl", []string{"--lock-ttl", "-1s"}, "", "--lock-ttl -1s"},
		{"not a duration", []string{"--lock-ttl", "5"}, "", "invalid value"},
		{"old flag", []string{"--lock-retry", "2s"}, "", "lock-retry"},
		{"unknown pause stage", nil, "sometime", "GOBANK_TEST_PAUSE_AT"},
		{"no coalescing", []string{"--coalesce", "0"}, "", ""},
		{"coalescing's default under another mode", []string{"--lock-mode", "wait-die"}, "", ""},
		{"coalescing chosen under another mode", []string{"--lock-mode", "occ", "--coalesce", "8"}, "", "--coalesce 8 needs --lock-mode wait"},
		{"negative coalescing", []string{"--coalesce", "-1"}, "", "--coalesce -1"},
		{"coalescing beyond a batch", []string{"--coalesce", "8191"}, "", "--coalesce 8191"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOBANK_TEST_PAUSE_AT", tt.pauseAt)
			// A cancelled context: an accepted command line starts the
			// server and shuts it down at once.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			args := append([]string{"--host", "127.0.0.1", "--log", filepath.Join(dir, "business.log")}, tt.args...)
			args = append(args, "http://127.0.0.1:5000", "0")
			var stderr bytes.Buffer
			err := servercmd.Business(ctx, args, io.Discard, &stderr)
			if tt.bad == "" {
				if err != nil {
					t.Fatalf("refused: %v\n%s", err, stderr.String())
				}
				return
			}
			if !errors.Is(err, servercmd.ErrUsage) {
				t.Fatalf("error %v, want a usage error", err)
			}
			if !strings.Contains(stderr.String(), tt.bad) || !strings.Contains(stderr.String(), "usage:") {
				t.Errorf("usage output lacks %q:\n%s", tt.bad, stderr.String())
			}
		})
	}
}

// TestHelpLockFlags: --help documents the lock flags, and not the
// test-only pause variable.
func TestHelpLockFlags(t *testing.T) {
	var stderr bytes.Buffer
	if err := servercmd.Business(context.Background(), []string{"--help"}, io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	help := stderr.String()
	for _, want := range []string{"-lock-mode", "-lock-order", "-lock-wait", "-lock-ttl", "wait", "retry", "fail-fast",
		"ascending", "request"} {
		if !strings.Contains(help, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	if strings.Contains(help, "GOBANK_TEST_PAUSE_AT") || strings.Contains(help, "lock-retry") {
		t.Errorf("--help mentions the test-only variable or the old flag:\n%s", help)
	}
}
