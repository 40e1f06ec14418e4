package servercmd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bank/gobank/http/freeport"
)

// TestBusinessDataURLs: several data servers are given as a
// comma-separated DATA_URL or with --data, once each; either way a data
// server that is down is failed over to the next. Bad combinations are
// usage errors.
func TestBusinessDataURLs(t *testing.T) {
	t.Setenv("BANK_SERVER_TOKEN", "")
	dir := t.TempDir()
	secret := filepath.Join(dir, "server-token")
	dctx, dstop := context.WithCancel(t.Context())
	dout, ddone := newLines(), make(chan error, 1)
	go func() {
		ddone <- Data(dctx, []string{"--host", "127.0.0.1", "--port", "0", "--log", filepath.Join(dir, "data.log"),
			"--server-token-file", secret, "--in-memory"}, io.Discard, dout)
	}()
	dataURL := dout.waitURL(t)
	defer func() {
		dstop()
		if err := <-ddone; err != nil {
			t.Errorf("data server: %v", err)
		}
	}()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + addr // nobody listens there

	for _, tc := range []struct {
		name  string
		args  []string
		usage bool
	}{
		{"one DATA_URL", []string{dataURL, "0"}, false},
		{"comma-separated, first down", []string{down + "," + dataURL, "0"}, false},
		{"--data twice, first down", []string{"--data", down, "--data", dataURL, "0"}, false},
		{"--data with a list", []string{"--data", down + "," + dataURL, "0"}, false},
		{"--data and a DATA_URL", []string{"--data", dataURL, dataURL, "0"}, true},
		{"empty DATA_URL", []string{",", "0"}, true},
		{"one bad among several", []string{dataURL + ",localhost:5000", "0"}, true},
		{"empty --data", []string{"--data", " ", "0"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--host", "127.0.0.1", "--log", filepath.Join(dir, "biz.log"), "--server-token-file", secret}, tc.args...)
			if tc.usage {
				var stderr bytes.Buffer
				if err := Business(t.Context(), args, io.Discard, &stderr); !errors.Is(err, ErrUsage) {
					t.Fatalf("error %v, want ErrUsage (%s)", err, stderr.String())
				}
				return
			}
			ctx, stop := context.WithCancel(t.Context())
			out, done := newLines(), make(chan error, 1)
			go func() { done <- Business(ctx, args, io.Discard, out) }()
			bizURL := out.waitURL(t)
			if status, body := get(t, bizURL+"/deposito/3/10", "ba0f"); status != 200 || !strings.Contains(body, `"saldo"`) {
				t.Errorf("deposit: %d %s", status, body)
			}
			stop()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("business server: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("business server did not stop")
			}
		})
	}
}

// TestBusinessDefaultsDoNotWarn: a business server started with no flags
// logs no warning (its default lease follows --lock-wait and
// --data-timeout), while a lease the user chose too short is warned about.
func TestBusinessDefaultsDoNotWarn(t *testing.T) {
	t.Setenv("BANK_SERVER_TOKEN", "defaults-test-credential")
	t.Setenv("GOBANK_TEST_PAUSE_AT", "")
	t.Setenv("GOBANK_TEST_CRASH_AT", "")
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		warn bool
	}{
		{"no flags", nil, false},
		{"a longer wait, the lease unset", []string{"--lock-wait", "10s", "--data-timeout", "3s"}, false},
		{"a long enough lease chosen", []string{"--lock-ttl", "10s"}, false},
		{"no lease asked", []string{"--lock-ttl", "0"}, false},
		{"a short lease chosen", []string{"--lock-ttl", "1s"}, true},
		{"a lease chosen, then a longer wait", []string{"--lock-ttl", "7s", "--lock-wait", "5s"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A cancelled context: the server starts, logs its startup
			// lines and shuts down at once.
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			args := append([]string{"--host", "127.0.0.1", "--log", filepath.Join(dir, "business.log")}, tc.args...)
			args = append(args, "http://127.0.0.1:5000", "0")
			var stderr bytes.Buffer
			if err := Business(ctx, args, io.Discard, &stderr); err != nil {
				t.Fatalf("refused: %v\n%s", err, stderr.String())
			}
			out := stderr.String()
			if !strings.Contains(out, "listening on") {
				t.Fatalf("the server did not start:\n%s", out)
			}
			warned := strings.Contains(out, "level=WARN")
			short := strings.Contains(out, "--lock-ttl is short")
			switch {
			case tc.warn && !short:
				t.Errorf("no warning about the short lease:\n%s", out)
			case !tc.warn && warned:
				t.Errorf("a warning:\n%s", out)
			}
		})
	}
}
