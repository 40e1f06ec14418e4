package launch

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

func TestLineWriter(t *testing.T) {
	var out bytes.Buffer
	lw := &LineWriter{Mu: new(sync.Mutex), W: &out, Prefix: "[x] "}
	for _, p := range []string{"one\ntw", "o\n", "", "three\nfour", "\nfi", "ve"} {
		if n, err := lw.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	lw.Flush()
	want := "[x] one\n[x] two\n[x] three\n[x] four\n[x] five\n"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
	out.Reset()
	long := strings.Repeat("z", MaxLine+10)
	lw.Write([]byte(long))
	if got := out.String(); got != "[x] "+long+"\n" {
		t.Errorf("a line longer than MaxLine was not written out: %d bytes", len(got))
	}
}

// The servers' "listening on" lines, as slog's text handler prints them,
// give their URL; the debug server's and other lines do not.
func TestListeningURL(t *testing.T) {
	for line, want := range map[string]string{
		`time=2025-01-01T00:00:00Z level=INFO msg="listening on http://127.0.0.1:5000"`:     "http://127.0.0.1:5000",
		`time=2025-01-01T00:00:00Z level=INFO msg="listening on http://[::1]:41234"` + "\n": "http://[::1]:41234",
		"listening on http://127.0.0.1:1 and more":                                          "http://127.0.0.1:1",
	} {
		if got, ok := ListeningURL(line); !ok || got != want {
			t.Errorf("ListeningURL(%q) = %q, %v; want %q", line, got, ok, want)
		}
	}
	for _, line := range []string{
		`level=INFO msg="debug server (pprof, metrics) listening on http://127.0.0.1:6060"`,
		`level=INFO msg="proxy listening on 127.0.0.1:9"`,
		"",
	} {
		if got, ok := ListeningURL(line); ok {
			t.Errorf("ListeningURL(%q) = %q, true; want none", line, got)
		}
	}
}
