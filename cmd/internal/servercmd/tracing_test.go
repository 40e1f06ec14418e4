package servercmd

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// TestTracingExporterRefused: an OTEL_TRACES_EXPORTER the servers do not
// know stops them at startup with an error naming the variable, instead of
// running untraced.
func TestTracingExporterRefused(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "carrier-pigeon")
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	for name, run := range map[string]func() error{
		"data": func() error {
			return Data(t.Context(), []string{"--server-token-file", secret, "--in-memory", "--host", "127.0.0.1", "--port", "0",
				"--log", filepath.Join(dir, "data.log")}, io.Discard, io.Discard)
		},
		"business": func() error {
			return Business(t.Context(), []string{"--server-token-file", secret, "--host", "127.0.0.1",
				"--log", filepath.Join(dir, "business.log"), "http://127.0.0.1:1", "0"}, io.Discard, io.Discard)
		},
	} {
		err := run()
		if err == nil || !strings.Contains(err.Error(), `OTEL_TRACES_EXPORTER="carrier-pigeon"`) {
			t.Errorf("%s: error %v, want one naming OTEL_TRACES_EXPORTER", name, err)
		}
	}
}

func TestSetupTracing(t *testing.T) {
	for _, tc := range []struct {
		exporter string
		on       bool
		fails    bool
	}{{"", false, false}, {"none", false, false}, {"console", true, false}, {"otlp", true, false}, {"carrier-pigeon", false, true}} {
		t.Run("OTEL_TRACES_EXPORTER="+tc.exporter, func(t *testing.T) {
			t.Setenv("OTEL_TRACES_EXPORTER", tc.exporter)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1") // never reached: nothing is exported
			t.Setenv("OTEL_SERVICE_NAME", "")
			tp, shutdown, err := SetupTracing(context.Background(), "svc")
			if (err != nil) != tc.fails {
				t.Fatalf("err = %v, want failure %v", err, tc.fails)
			}
			if shutdown == nil {
				t.Fatal("nil shutdown")
			}
			defer func() { _ = shutdown(context.Background()) }()
			if (tp != nil) != tc.on {
				t.Fatalf("provider %v, want tracing on: %v", tp, tc.on)
			}
		})
	}
}
