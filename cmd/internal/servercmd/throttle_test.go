package servercmd

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestThrottledLogs(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(newThrottled(slog.NewTextHandler(&buf, nil), 10*time.Second)).With("component", "protoactor")
	t0 := time.Now()
	emit := func(at time.Duration, msg string) {
		r := slog.NewRecord(t0.Add(at), slog.LevelError, msg, 0)
		if err := logger.Handler().Handle(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	emit(0, "Bad connection")                    // passed
	emit(500*time.Millisecond, "Bad connection") // held
	emit(time.Second, "Bad connection")          // held
	emit(time.Second, "Other")                   // another message: passed
	emit(11*time.Second, "Bad connection")       // a period later: passed, with the count
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[2], "Bad connection") || !strings.Contains(lines[2], "repeats_held_back=2") || !strings.Contains(lines[2], "component=protoactor") {
		t.Errorf("third line %q: want the message again with repeats_held_back=2 and the logger's attributes", lines[2])
	}
	if strings.Contains(lines[0], "repeats_held_back") {
		t.Errorf("first line %q reports repeats", lines[0])
	}
}
