package soak

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFileTail: a server that did not start is reported with the end of
// its output, whole when short.
func TestFileTail(t *testing.T) {
	dir := t.TempDir()
	long := filepath.Join(dir, "long.out")
	body := strings.Repeat("a", 3000) + "panic: the reason"
	if err := os.WriteFile(long, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short.out")
	if err := os.WriteFile(short, []byte("listening on\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := fileTail(long, 2048); got != body[len(body)-2048:] {
		t.Errorf("fileTail(long) = %d bytes ending %q, want its last 2048", len(got), got[max(0, len(got)-20):])
	}
	if got := fileTail(short, 2048); got != "listening on\n" {
		t.Errorf("fileTail(short) = %q, want the whole file", got)
	}
	if got := fileTail(filepath.Join(dir, "none.out"), 2048); !strings.Contains(got, "no such file") {
		t.Errorf("fileTail(a missing file) = %q, want the error", got)
	}
}
