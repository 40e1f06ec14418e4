package servercmd

import (
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
